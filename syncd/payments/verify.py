"""After a pull: apply held payments whose invoice arrived, and check that pushes show up.

A push is *done* when the vendor said it created the payment; it is *verified* when a later pull
of the target invoice shows the balance moved by exactly syncd's payments. The expectation of one
target invoice is the ``balance_before`` of its earliest unverified push (the stored balance,
moved by syncd's earlier unconfirmed pushes, when that push was claimed) plus the effect of every
unverified push (payments lower it, reversals raise it). It is compared only once every such
push was done before the pull started and none is still in flight, so the pull must have seen
them all. A difference never triggers a push: it opens a review item for a person, because it
means the payment was also recorded by hand (lower than expected), was removed or differs (higher),
or the invoice was voided or deleted meanwhile. Mismatched pushes are compared again on later
pulls: once a person has put things right at the vendor, they turn ``ok`` (and count as shown by
the balance again) without a new review item.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Connection, Engine

from syncd.payments._db import open_review, writing
from syncd.payments.allocation import ZERO
from syncd.payments.ledger import LEDGER, apply_held_payments
from syncd.payments.outbox import SETTLING, promote_waiting
from syncd.payments.queries import stored_invoice
from syncd.store.tables import payment_allocations, payment_pushes, sync_runs

log = structlog.get_logger("syncd.payments")


@dataclass
class AfterPull:
    """What the payments side did after one connection's invoices were pulled."""

    applied: list[int] = field(default_factory=list)  # held payments now applied
    still_held: list[int] = field(default_factory=list)  # held, and their invoice refused them
    promoted: int = 0  # waiting pushes now queued
    verified: int = 0
    mismatches: list[str] = field(default_factory=list)  # review item subjects


def after_pull(
    engine: Engine,
    targets: Sequence[str],
    connection: str,
    *,
    pull_started_at: dt.datetime,
    now: dt.datetime,
) -> AfterPull:
    """Call at the end of a successful invoices pull of ``connection``."""
    result = AfterPull()
    for outcome in apply_held_payments(engine, targets, now=now):
        (result.applied if outcome.applied else result.still_held).append(outcome.payment_id)
    result.promoted = promote_waiting(engine, now=now)
    result.verified, result.mismatches = verify_connection(
        engine, connection, pull_started_at=pull_started_at, now=now
    )
    if result.applied or result.promoted or result.verified or result.mismatches:
        log.info(
            "payments_after_pull",
            connection=connection,
            applied=result.applied,
            promoted=result.promoted,
            verified=result.verified,
            mismatches=len(result.mismatches),
        )
    return result


def after_sync(
    engine: Engine, targets: Sequence[str], results: Sequence[Any], *, now: dt.datetime
) -> list[AfterPull]:
    """``after_pull`` for each successful invoices pull among ``results`` (``PullResult``s)."""
    done = []
    for r in results:
        if r.stream != "invoices" or not r.ok:
            continue
        with engine.connect() as conn:
            started = conn.execute(
                select(sync_runs.c.started_at).where(
                    and_(
                        sync_runs.c.run_id == r.run_id,
                        sync_runs.c.connection == r.connection,
                        sync_runs.c.stream == r.stream,
                    )
                )
            ).scalar()
        if started is not None:
            done.append(after_pull(engine, targets, r.connection, pull_started_at=started, now=now))
    return done


def describe(results: Sequence[AfterPull]) -> list[str]:
    """One line per thing the payments side did after a sync, for the command's output."""
    lines = []
    for r in results:
        if r.applied:
            lines.append(f"payments: held payment(s) {_ids(r.applied)} applied")
        if r.still_held:
            lines.append(f"payments: held payment(s) {_ids(r.still_held)} still held (review)")
        if r.promoted:
            lines.append(f"payments: {r.promoted} waiting push(es) queued")
        if r.verified:
            lines.append(f"payments: {r.verified} push(es) checked against the pulled balances")
        lines += [f"payments: mismatch, review item: {subject}" for subject in r.mismatches]
    return lines


def _ids(ids: Sequence[int]) -> str:
    return ", ".join(str(i) for i in ids)


def verify_connection(
    engine: Engine, connection: str, *, pull_started_at: dt.datetime, now: dt.datetime
) -> tuple[int, list[str]]:
    """Compare ``connection``'s done pushes not confirmed yet (or mismatched before) with its
    stored invoice balances; returns (pushes whose verdict changed, new mismatch subjects)."""
    verified, mismatches = 0, []
    with writing(engine, LEDGER) as conn:
        groups: dict[str, list[Any]] = defaultdict(list)
        for row in conn.execute(
            select(
                payment_pushes, payment_allocations.c.amount, payment_allocations.c.invoice_number
            )
            .join(payment_allocations, payment_allocations.c.id == payment_pushes.c.allocation_id)
            .where(
                and_(
                    payment_pushes.c.connection == connection,
                    payment_pushes.c.status == "done",
                    or_(
                        payment_pushes.c.verified.is_(None),
                        payment_pushes.c.verified == "mismatch",  # fixed by hand since?
                    ),
                    payment_pushes.c.invoice_external_id.is_not(None),
                )
            )
        ):
            groups[row.invoice_external_id].append(row)
        for external_id, group in groups.items():
            if any(r.done_at is None or r.done_at >= pull_started_at for r in group):
                continue  # the pull may have read the invoice before the push landed
            if _in_flight(conn, connection, external_id):
                continue
            verdict, reason = _compare(conn, connection, external_id, group)
            conn.execute(
                update(payment_pushes)
                .where(payment_pushes.c.id.in_([r.id for r in group]))
                .values(verified=verdict, updated_at=now)
            )
            verified += sum(1 for r in group if r.verified != verdict)
            news = any(r.verified is None for r in group)
            if verdict == "mismatch" and news:  # asked once; a later match clears it silently
                number = group[0].invoice_number
                subject = f"invoice {number} in {connection}"
                open_review(
                    conn,
                    kind="payment_mismatch",
                    subject=subject,
                    reason=reason,
                    now=now,
                    connection=connection,
                    detail={
                        "invoice_number": number,
                        "invoice_external_id": external_id,
                        "push_ids": [r.id for r in group],
                        "payment_ids": sorted({r.payment_id for r in group}),
                    },
                )
                mismatches.append(subject)
    return verified, mismatches


def _in_flight(conn: Connection, connection: str, external_id: str) -> bool:
    return (
        conn.execute(
            select(payment_pushes.c.id).where(
                and_(
                    payment_pushes.c.connection == connection,
                    payment_pushes.c.invoice_external_id == external_id,
                    payment_pushes.c.status.in_(SETTLING),
                )
            )
        ).first()
        is not None
    )


def _compare(
    conn: Connection, connection: str, external_id: str, group: list[Any]
) -> tuple[str, str]:
    """(verdict, reason): ``ok``, ``mismatch`` with what a person should check, or ``unknown``."""
    number = group[0].invoice_number
    payment_ids = ", ".join(str(i) for i in sorted({r.payment_id for r in group}))
    invoice = stored_invoice(conn, connection, external_id)
    if invoice is None or invoice.deleted or invoice.status in ("void", "deleted"):
        state = "deleted" if invoice is None or invoice.deleted else invoice.status
        return "mismatch", (
            f"invoice {number} in {connection} is {state} although syncd pushed payment(s) "
            f"{payment_ids} to it: check those payments in {connection}"
        )
    earliest = min(group, key=lambda r: (r.done_at, r.id))
    if earliest.balance_before is None:
        return "unknown", ""
    effect = sum((r.amount if r.kind == "reverse" else -r.amount for r in group), ZERO)
    expected: Decimal = earliest.balance_before + effect
    if invoice.balance == expected:
        return "ok", ""
    if invoice.balance < expected:
        why = (
            "the payment may also have been recorded by hand, or another payment or credit was "
            "applied meanwhile"
        )
    else:
        why = f"syncd's payment is not (fully) there: removed in {connection}, or amounts differ"
    return "mismatch", (
        f"invoice {number} in {connection}: balance {invoice.balance}, expected {expected} after "
        f"syncd's payment(s) {payment_ids}; {why}. syncd pushes nothing again: check it there"
    )


__all__ = ["AfterPull", "after_pull", "after_sync", "describe", "verify_connection"]
