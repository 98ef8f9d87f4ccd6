"""The outbox: claiming pushes under a lease, and recording what became of them.

A claim moves one due push to ``in_flight`` with this worker's lease and commits *before* the
pusher calls the vendor. Due means: ``queued`` and past its ``next_attempt_at``; ``uncertain``
and past its settle time; or ``in_flight`` with an expired lease (its worker died). Only one
worker can win a row: on PostgreSQL the candidate is selected ``FOR UPDATE SKIP LOCKED`` (others
skip it and take the next), on SQLite the claim runs under the database's write lock (``BEGIN
IMMEDIATE``); both then update with the claimable condition repeated, so a row that changed
meanwhile is not taken. Every outcome is written only while the worker still holds its lease
(``lease_owner`` matches and the row is ``in_flight``): a worker that lost its lease to another
(it stalled beyond the lease) writes nothing, and the new holder settles the push by marker.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

from syncd.errors import SyncdError
from syncd.payments._db import open_review, writing
from syncd.payments.queries import stored_invoice, target_invoice, unverified_effect
from syncd.store.tables import payment_allocations, payment_pushes, payments

SETTLING = ("in_flight", "uncertain")  # may have reached the vendor: settle by marker first


@dataclass(frozen=True)
class Policy:
    """How hard and how often the pusher tries (``[payments]`` in the config)."""

    max_attempts: int = 8
    lease: dt.timedelta = dt.timedelta(minutes=5)
    retry_base: dt.timedelta = dt.timedelta(seconds=30)
    retry_cap: dt.timedelta = dt.timedelta(hours=6)
    settle_after: dt.timedelta = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Claim:
    """A push this worker holds; ``previous`` is its status before the claim. A deposit push
    has a ``payout_id`` and neither an allocation nor an invoice."""

    id: int
    payment_id: int
    connection: str
    kind: str
    previous: str
    attempts: int
    key: str
    marker: str
    invoice_external_id: str | None
    allocation_id: int | None
    external_id: str | None
    lease_expires_at: dt.datetime
    payout_id: int | None = None
    last_error: str | None = None

    @property
    def must_settle(self) -> bool:
        """It may have reached the vendor already: search for the marker before sending."""
        return self.previous in SETTLING

    @property
    def fresh(self) -> bool:
        """Never attempted before this claim: the only pushes a batch may carry, so that a
        batch's ``requestid`` (a digest of its keys) is never sent for a second attempt."""
        return (
            self.kind == "push"
            and self.previous == "queued"
            and self.attempts == 1
            and self.last_error is None
        )


def _due(now: dt.datetime) -> ColumnElement[bool]:
    c = payment_pushes.c
    not_waiting = or_(c.next_attempt_at.is_(None), c.next_attempt_at <= now)
    return or_(
        and_(c.status == "queued", not_waiting),
        and_(
            c.status == "uncertain",
            not_waiting,
            or_(c.lease_expires_at.is_(None), c.lease_expires_at <= now),
        ),
        and_(c.status == "in_flight", c.lease_expires_at <= now),
    )


def claim_next(
    engine: Engine,
    *,
    owner: str,
    now: dt.datetime,
    lease: dt.timedelta,
    connections: Collection[str],
    skip: Collection[int] = (),
) -> Claim | None:
    """Claim the oldest due push of one of ``connections`` (not one of ``skip``: a pass handles
    each push once), or None when nothing is due."""
    if not connections:
        return None
    c = payment_pushes.c
    where = and_(_due(now), c.connection.in_(sorted(connections)))
    if skip:
        where = and_(where, c.id.not_in(sorted(skip)))
    with writing(engine) as conn:
        query = select(payment_pushes).where(where).order_by(c.id).limit(1)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        row = conn.execute(query).first()
        if row is None:
            return None
        values: dict[str, Any] = {
            "status": "in_flight",
            "lease_owner": owner,
            "lease_expires_at": now + lease,
            "attempts": row.attempts + 1,
            "updated_at": now,
        }
        if row.status == "queued" and row.kind != "deposit":
            values["balance_before"] = _balance_before(
                conn, row.connection, row.invoice_external_id
            )
        won = conn.execute(update(payment_pushes).where(and_(c.id == row.id, where)).values(values))
        if won.rowcount != 1:
            return None
        return _claim(row, now + lease)


def claim_batch(
    engine: Engine,
    *,
    owner: str,
    now: dt.datetime,
    lease: dt.timedelta,
    connection: str,
    limit: int,
    skip: Collection[int] = (),
) -> list[Claim]:
    """Claim up to ``limit`` more payment pushes of ``connection`` for one batch request: only
    queued pushes never attempted (``Claim.fresh``), oldest first, each with its own lease, all
    committed ``in_flight`` before anything is sent, exactly as ``claim_next`` does one."""
    if limit < 1:
        return []
    c = payment_pushes.c
    where = and_(
        c.status == "queued",
        c.kind == "push",
        c.attempts == 0,
        c.last_error.is_(None),
        or_(c.next_attempt_at.is_(None), c.next_attempt_at <= now),
        c.connection == connection,
    )
    if skip:
        where = and_(where, c.id.not_in(sorted(skip)))
    claims: list[Claim] = []
    with writing(engine) as conn:
        query = select(payment_pushes).where(where).order_by(c.id).limit(limit)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        for row in conn.execute(query).all():
            values = {
                "status": "in_flight",
                "lease_owner": owner,
                "lease_expires_at": now + lease,
                "attempts": row.attempts + 1,
                "updated_at": now,
                "balance_before": _balance_before(conn, row.connection, row.invoice_external_id),
            }
            won = conn.execute(
                update(payment_pushes).where(and_(c.id == row.id, where)).values(values)
            )
            if won.rowcount == 1:
                claims.append(_claim(row, now + lease))
    return claims


def _claim(row: Any, lease_expires_at: dt.datetime) -> Claim:
    return Claim(
        id=row.id,
        payment_id=row.payment_id,
        connection=row.connection,
        kind=row.kind,
        previous=row.status,
        attempts=row.attempts + 1,
        key=row.idempotency_key,
        marker=row.marker,
        invoice_external_id=row.invoice_external_id,
        allocation_id=row.allocation_id,
        external_id=row.external_id,
        lease_expires_at=lease_expires_at,
        payout_id=row.payout_id,
        last_error=row.last_error,
    )


def _balance_before(conn: Connection, connection: str, external_id: str) -> Decimal | None:
    """The target's balance as syncd expects it just before this push: the stored balance moved
    by syncd's own pushes that a pull has not confirmed yet (see ``verify``)."""
    invoice = stored_invoice(conn, connection, external_id)
    if invoice is None:
        return None
    return invoice.balance + unverified_effect(conn, connection, external_id)


def finish(engine: Engine, claim: Claim, owner: str, now: dt.datetime, **values: Any) -> bool:
    """Write an outcome while still holding the lease; False (nothing written) if it was lost."""
    with writing(engine) as conn:
        return _finish(conn, claim, owner, now, values)


def _finish(
    conn: Connection, claim: Claim, owner: str, now: dt.datetime, values: Mapping[str, Any]
) -> bool:
    c = payment_pushes.c
    done = conn.execute(
        update(payment_pushes)
        .where(and_(c.id == claim.id, c.lease_owner == owner, c.status == "in_flight"))
        .values({"lease_owner": None, "lease_expires_at": None, "updated_at": now, **values})
    )
    return done.rowcount == 1


def finish_many(
    engine: Engine,
    outcomes: Sequence[tuple[Claim, Mapping[str, Any]]],
    owner: str,
    now: dt.datetime,
) -> int:
    """Write the outcomes of one batch in one transaction, each only where this worker still
    holds the lease; returns how many were written."""
    with writing(engine) as conn:
        return sum(1 for claim, values in outcomes if _finish(conn, claim, owner, now, values))


def finish_with_review(
    engine: Engine,
    claim: Claim,
    owner: str,
    now: dt.datetime,
    review: Mapping[str, Any],
    **values: Any,
) -> bool:
    """An outcome a person must see (a dead push): the row and its review item commit together."""
    with writing(engine) as conn:
        if not _finish(conn, claim, owner, now, values):
            return False
        open_review(conn, now=now, connection=claim.connection, **review)
        return True


def renew(engine: Engine, claim: Claim, owner: str, now: dt.datetime, lease: dt.timedelta) -> bool:
    """Extend the lease before a send that follows a slow settlement; False if it was lost."""
    c = payment_pushes.c
    with writing(engine) as conn:
        done = conn.execute(
            update(payment_pushes)
            .where(and_(c.id == claim.id, c.lease_owner == owner, c.status == "in_flight"))
            .values(lease_expires_at=now + lease, updated_at=now)
        )
        return done.rowcount == 1


def backoff(attempts: int, policy: Policy, rng: random.Random) -> dt.timedelta:
    """Exponential from ``retry_base``, capped at ``retry_cap``, with jitter in [50 %, 100 %]."""
    base = policy.retry_base.total_seconds() * 2 ** max(attempts - 1, 0)
    capped = min(base, policy.retry_cap.total_seconds())
    return dt.timedelta(seconds=capped * (0.5 + rng.random() / 2))


# -- waiting pushes ------------------------------------------------------------------------------


def promote_waiting(engine: Engine, *, now: dt.datetime) -> int:
    """Queue the waiting pushes whose target invoice has synced in; return how many.

    A target invoice that cannot take the payment (void, another currency) makes the push dead
    with a review item, rather than letting the vendor refuse it later.
    """
    promoted = 0
    with writing(engine) as conn:
        rows = conn.execute(
            select(
                payment_pushes.c.id,
                payment_pushes.c.connection,
                payment_allocations.c.invoice_number,
                payments.c.currency,
            )
            .join(payment_allocations, payment_allocations.c.id == payment_pushes.c.allocation_id)
            .join(payments, payments.c.id == payment_pushes.c.payment_id)
            .where(payment_pushes.c.status == "waiting")
        ).all()
        for row in rows:
            target = target_invoice(conn, row.connection, row.invoice_number)
            if target is None:
                continue
            problem = _target_problem(target.status, target.currency, row.currency)
            values: dict[str, Any] = {"invoice_external_id": target.external_id, "updated_at": now}
            if problem:
                values |= {"status": "dead", "last_error": problem}
                open_review(
                    conn,
                    kind="payment_push_dead",
                    subject=f"push {row.id}",
                    reason=f"invoice {row.invoice_number} in {row.connection} {problem}",
                    now=now,
                    connection=row.connection,
                    detail={"push_id": row.id, "invoice_number": row.invoice_number},
                )
            else:
                values["status"] = "queued"
                promoted += 1
            conn.execute(
                update(payment_pushes)
                .where(and_(payment_pushes.c.id == row.id, payment_pushes.c.status == "waiting"))
                .values(values)
            )
    return promoted


def _target_problem(status: str, currency: str, payment_currency: str) -> str:
    if status in ("void", "deleted", "draft"):
        return f"is {status}: the payment was not pushed there"
    if currency != payment_currency:
        return f"is in {currency}, the payment in {payment_currency}: it was not pushed there"
    return ""


# -- what a person does: retry, cancel -----------------------------------------------------------


class PushRefused(SyncdError):
    """A person asked for something this push's state does not allow; the message says why."""


def retry_push(engine: Engine, push_id: int, *, now: dt.datetime) -> str:
    """Make a push due now. A dead push restarts with a marker search (``uncertain``), so even a
    push that someone believes failed is never sent twice. Returns the new status."""
    with writing(engine) as conn:
        row = _push(conn, push_id)
        if row.status in ("done", "cancelled", "waiting"):
            raise PushRefused(f"push {push_id} is {row.status}: nothing to retry")
        if row.status == "in_flight":
            raise PushRefused(
                f"push {push_id} is in flight (lease until {row.lease_expires_at:%Y-%m-%d %H:%M} "
                "UTC); it is settled when the lease ends"
            )
        status = "uncertain" if row.status == "dead" else row.status
        conn.execute(
            update(payment_pushes)
            .where(payment_pushes.c.id == push_id)
            .values(status=status, attempts=0, next_attempt_at=now, updated_at=now)
        )
        return str(status)


def cancel_push(engine: Engine, push_id: int, *, now: dt.datetime, reason: str) -> None:
    """Never push this one. Refused while it may have reached the vendor (settle it first)."""
    with writing(engine) as conn:
        row = _push(conn, push_id)
        if row.status in SETTLING:
            raise PushRefused(
                f"push {push_id} is {row.status}: it may have reached {row.connection}; let it "
                f"settle (`syncd push retry {push_id}` makes it due now), then decide"
            )
        if row.status == "done":
            if row.kind == "deposit":
                raise PushRefused(
                    f"push {push_id} is done: the deposit is in {row.connection} (id "
                    f"{row.external_id}); remove it there by hand if it must go"
                )
            hint = "`syncd payments reverse`" if row.kind == "push" else "nothing"
            raise PushRefused(f"push {push_id} is done; to undo a payment use {hint}")
        if row.status == "cancelled":
            return
        conn.execute(
            update(payment_pushes)
            .where(payment_pushes.c.id == push_id)
            .values(status="cancelled", last_error=reason, updated_at=now)
        )


def _push(conn: Connection, push_id: int) -> Any:
    row = conn.execute(select(payment_pushes).where(payment_pushes.c.id == push_id)).first()
    if row is None:
        raise PushRefused(f"no push {push_id}")
    return row


__all__ = [
    "SETTLING",
    "Claim",
    "Policy",
    "PushRefused",
    "backoff",
    "cancel_push",
    "claim_batch",
    "claim_next",
    "finish",
    "finish_many",
    "finish_with_review",
    "promote_waiting",
    "renew",
    "retry_push",
]
