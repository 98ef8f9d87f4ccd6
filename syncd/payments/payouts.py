"""Payouts: what a card processor paid out together, and the deposit that books each one.

A processor pays customers' card payments out to the merchant's bank later, grouped, less its
fee. A target that books deposits (``syncd.connector.BooksDeposits``: QuickBooks Online with a
``deposit_bank_account``) records that as the vendor's practice has it: the payments gross in
Undeposited Funds (their pushes), then one Deposit of those payments plus a negative fee line, so
the deposit equals what reached the bank (research/accounting-apis.md 1.6).

- ``record_payout`` (``syncd payouts record``, the CSV import): a person or a processor's report
  groups payments into one payout with its total fee. Recording a reference twice is a no-op.
- ``prepare_deposits`` (each push pass): under ``[payments] deposits = "per_payment"`` (the
  default) a card payment with a fee in no recorded payout gets a payout of its own once its
  pushes are done (net = gross - fee); every payout gets one ``deposit`` push per target that
  books deposits, ``waiting`` until each of its payments' pushes there is done, then ``queued``.
- ``deposit_plan``: the deposit's lines (the target's payment ids and amounts), or why it must
  wait, or why it can never be booked as recorded (a payment reversed, a push cancelled).

A payment is paid out once: it belongs to one payout at most, and a payout's deposit push is
unique per target, with a deterministic key and marker (``keys.deposit_names``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Float, and_, cast, exists, insert, select, update
from sqlalchemy.engine import Connection, Engine

from syncd.connector import DepositLine
from syncd.currency import has_valid_precision
from syncd.errors import SyncdError
from syncd.model import PaymentStatus
from syncd.payments._db import open_review, writing
from syncd.payments.allocation import ZERO
from syncd.payments.keys import deposit_names
from syncd.payments.ledger import LEDGER
from syncd.store.tables import (
    payment_allocations,
    payment_pushes,
    payments,
    payout_payments,
    payouts,
)

# A deposit push in one of these states may reach, or has reached, the vendor: its payments
# stay in its payout. Waiting, dead (the vendor has nothing) and cancelled ones do not.
LIVE_DEPOSIT = ("queued", "in_flight", "uncertain", "done")
PER_PAYMENT = "per_payment"
PER_PAYOUT = "per_payout"


class PayoutRefused(SyncdError):
    """The payout cannot be recorded as given; the message says why. Nothing was stored."""


@dataclass(frozen=True)
class NewPayout:
    """A payout as a person or a processor's report states it: payments by syncd id or by their
    processor reference, and the total fee kept."""

    reference: str
    fee: Decimal
    paid_at: dt.datetime
    payment_ids: tuple[int, ...] = ()
    payment_references: tuple[str, ...] = ()
    memo: str | None = None


@dataclass(frozen=True)
class PayoutRecorded:
    payout_id: int
    reference: str
    currency: str
    amount: Decimal
    fee: Decimal
    payment_ids: tuple[int, ...]
    moved: tuple[int, ...] = ()  # payments taken out of a deposit of their own never sent

    @property
    def net(self) -> Decimal:
        return self.amount - self.fee


@dataclass(frozen=True)
class PayoutDuplicate:
    payout_id: int
    reference: str


@dataclass(frozen=True)
class DepositPlan:
    """A payout's deposit in one target: its lines when it can be booked now; else why it must
    wait (``waiting``) or why it never can as recorded (``blocked``)."""

    lines: tuple[DepositLine, ...] = ()
    waiting: str | None = None
    blocked: str | None = None

    @property
    def ready(self) -> bool:
        return bool(self.lines) and self.waiting is None and self.blocked is None


def record_payout(
    engine: Engine, new: NewPayout, *, now: dt.datetime
) -> PayoutRecorded | PayoutDuplicate:
    """Check and record one payout, or raise ``PayoutRefused`` (nothing stored).

    Runs under the ledger lock, as the push pass's ``prepare_deposits`` does, so a payment
    cannot get a deposit of its own while it is being grouped.
    """
    reference = new.reference.strip()
    if not reference:
        raise PayoutRefused("give the payout's reference (the processor's payout id)")
    if len(reference) > 200:
        raise PayoutRefused("the payout reference is longer than 200 characters")
    if new.fee < 0:
        raise PayoutRefused(f"fee {new.fee} is negative; give the fee the processor kept")
    with writing(engine, LEDGER) as conn:
        ids = _payment_ids(conn, new)
        existing = conn.execute(select(payouts).where(payouts.c.reference == reference)).first()
        if existing is not None:
            return _same_payout(conn, existing, ids, new.fee)
        rows = _payment_rows(conn, ids)
        currencies = sorted({row.currency for row in rows})
        if len(currencies) > 1:
            raise PayoutRefused(
                f"the payments are in {', '.join(currencies)}: a payout is in one currency"
            )
        currency = currencies[0]
        if not has_valid_precision(new.fee, currency):
            raise PayoutRefused(f"fee {new.fee} has more decimals than {currency} allows")
        amount = sum((paid_out(row) for row in rows), ZERO)
        if new.fee >= amount:
            raise PayoutRefused(
                f"the fee {new.fee} is not less than the payments' total {amount} {currency}: a "
                "payout pays out more than the fee it keeps"
            )
        movable = _movable(conn, ids)
        payout_id = _insert_payout(
            conn,
            reference=reference,
            currency=currency,
            amount=amount,
            fee=new.fee,
            paid_at=new.paid_at,
            memo=new.memo,
            now=now,
        )
        for payment_id in ids:
            if payment_id in movable:
                _move(conn, payment_id, movable[payment_id], payout_id, reference, now)
            else:
                conn.execute(
                    insert(payout_payments).values(
                        payout_id=payout_id, payment_id=payment_id, created_at=now
                    )
                )
        return PayoutRecorded(
            payout_id, reference, currency, amount, new.fee, ids, tuple(sorted(movable))
        )


def paid_out(row: Any) -> Decimal:
    """What a payment moves to the bank in a deposit: what it applied to invoices (customer
    credit kept in syncd is not pushed, so no deposit can move it yet)."""
    amount: Decimal = row.amount
    return amount - (row.credit or ZERO)


def _payment_ids(conn: Connection, new: NewPayout) -> tuple[int, ...]:
    ids = list(new.payment_ids)
    for ref in new.payment_references:
        found = conn.execute(select(payments.c.id).where(payments.c.reference == ref)).scalar()
        if found is None:
            raise PayoutRefused(f"no payment has the reference {ref!r}")
        ids.append(int(found))
    if not ids:
        raise PayoutRefused("name the payments the payout paid out")
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise PayoutRefused(f"payment {twice[0]} is named twice")
    return tuple(sorted(ids))


def _same_payout(
    conn: Connection, existing: Any, ids: tuple[int, ...], fee: Decimal
) -> PayoutDuplicate:
    members = tuple(
        sorted(
            conn.execute(
                select(payout_payments.c.payment_id).where(
                    payout_payments.c.payout_id == existing.id
                )
            ).scalars()
        )
    )
    if members == ids and existing.fee == fee:
        return PayoutDuplicate(int(existing.id), existing.reference)
    listed = ", ".join(str(i) for i in members) or "none"
    raise PayoutRefused(
        f"payout {existing.reference} is already recorded (payout {existing.id}: payments "
        f"{listed}, fee {existing.fee}) and differs from this one"
    )


def _payment_rows(conn: Connection, ids: Sequence[int]) -> list[Any]:
    rows = {r.id: r for r in conn.execute(select(payments).where(payments.c.id.in_(ids)))}
    for payment_id in ids:
        row = rows.get(payment_id)
        if row is None:
            raise PayoutRefused(f"no payment {payment_id}")
        if row.status == PaymentStatus.REVERSED.value:
            raise PayoutRefused(f"payment {payment_id} is reversed: it was not paid out")
    return [rows[i] for i in ids]


def _movable(conn: Connection, ids: Sequence[int]) -> dict[int, int]:
    """Payments already in a payout that may move to the new one ({payment: old payout}): out of
    a payout of their own whose deposits never reached, nor will reach, a vendor, or out of a
    recorded payout whose deposits were all cancelled."""
    movable: dict[int, int] = {}
    rows = conn.execute(
        select(payout_payments.c.payment_id, payouts)
        .join(payouts, payouts.c.id == payout_payments.c.payout_id)
        .where(payout_payments.c.payment_id.in_(ids))
    ).all()
    for row in rows:
        if row.reference is not None and not _abandoned(conn, row.id):
            raise PayoutRefused(f"payment {row.payment_id} is already in payout {row.reference}")
        live = conn.execute(
            select(payment_pushes.c.id, payment_pushes.c.connection, payment_pushes.c.status)
            .where(
                and_(
                    payment_pushes.c.payout_id == row.id,
                    payment_pushes.c.status.in_(LIVE_DEPOSIT),
                )
            )
            .order_by(payment_pushes.c.id)
        ).first()
        if live is not None:
            raise PayoutRefused(
                f"payment {row.payment_id} already has a deposit of its own: push {live.id} to "
                f"{live.connection} is {live.status}. A payment is deposited once; record the "
                "payout without it (its fee is booked with it)"
            )
        movable[int(row.payment_id)] = int(row.id)
    return movable


def _abandoned(conn: Connection, payout_id: int) -> bool:
    """A recorded payout whose every deposit was cancelled (a payment in it was reversed, or a
    person took it in hand): its other payments may be recorded in another payout."""
    statuses = set(
        conn.execute(
            select(payment_pushes.c.status).where(payment_pushes.c.payout_id == payout_id)
        ).scalars()
    )
    return statuses == {"cancelled"}


def _move(
    conn: Connection, payment_id: int, old: int, new: int, reference: str, now: dt.datetime
) -> None:
    conn.execute(
        update(payout_payments)
        .where(payout_payments.c.payment_id == payment_id)
        .values(payout_id=new, created_at=now)
    )
    conn.execute(
        update(payment_pushes)
        .where(
            and_(
                payment_pushes.c.payout_id == old,
                payment_pushes.c.status.in_(("waiting", "dead")),
            )
        )
        .values(
            status="cancelled",
            last_error=f"payment {payment_id} moved to payout {reference}",
            updated_at=now,
        )
    )
    left = conn.execute(
        select(payment_pushes.c.id).where(
            and_(payment_pushes.c.payout_id == old, payment_pushes.c.status.in_(LIVE_DEPOSIT))
        )
    ).first()
    if left is not None:  # claimed or retried meanwhile (PostgreSQL): leave everything as it was
        raise PayoutRefused(f"payment {payment_id}'s own deposit changed meanwhile; try again")


def _insert_payout(
    conn: Connection,
    *,
    reference: str | None,
    currency: str,
    amount: Decimal,
    fee: Decimal,
    paid_at: dt.datetime,
    memo: str | None,
    now: dt.datetime,
) -> int:
    key = conn.execute(
        insert(payouts).values(
            reference=reference,
            currency=currency,
            amount=amount,
            fee=fee,
            paid_at=paid_at,
            memo=memo,
            created_at=now,
        )
    ).inserted_primary_key
    assert key is not None
    return int(key[0])


# -- the push pass's side ------------------------------------------------------------------------


def prepare_deposits(
    engine: Engine, targets: Sequence[str], *, mode: str = PER_PAYMENT, now: dt.datetime
) -> int:
    """Make the deposit pushes due in ``targets`` (connections that book deposits) and queue the
    ones whose payments are all pushed there; return how many were queued."""
    if not targets:
        return 0
    with writing(engine, LEDGER) as conn:
        if mode == PER_PAYMENT:
            _own_payouts(conn, targets, now)
        for target in targets:
            _deposit_pushes(conn, target, now)
        return _promote(conn, targets, now)


def _own_payouts(conn: Connection, targets: Sequence[str], now: dt.datetime) -> None:
    """A payout of its own for each card payment with a fee that is in no payout, once its
    pushes to one of ``targets`` are all done: the default when nobody groups payments."""
    rows = conn.execute(
        select(payments).where(
            and_(
                payments.c.status == PaymentStatus.APPLIED.value,
                cast(payments.c.fee, Float) > 0,  # a quick filter; exact below (text on SQLite)
                ~exists().where(payout_payments.c.payment_id == payments.c.id),
            )
        )
    ).all()
    for row in rows:
        if row.fee <= 0 or not any(_pushed(conn, row.id, target) for target in targets):
            continue
        payout_id = _insert_payout(
            conn,
            reference=None,
            currency=row.currency,
            amount=paid_out(row),
            fee=row.fee,
            paid_at=row.received_at,
            memo=None,
            now=now,
        )
        conn.execute(
            insert(payout_payments).values(payout_id=payout_id, payment_id=row.id, created_at=now)
        )


def _pushed(conn: Connection, payment_id: int, connection: str) -> bool:
    statuses = conn.execute(
        select(payment_pushes.c.status).where(
            and_(
                payment_pushes.c.payment_id == payment_id,
                payment_pushes.c.connection == connection,
                payment_pushes.c.kind == "push",
            )
        )
    ).scalars()
    found = list(statuses)
    return bool(found) and all(status == "done" for status in found)


def _deposit_pushes(conn: Connection, target: str, now: dt.datetime) -> None:
    """One ``deposit`` push (waiting) for each payout that has none in ``target`` yet."""
    missing = conn.execute(
        select(payouts).where(
            ~exists().where(
                and_(
                    payment_pushes.c.payout_id == payouts.c.id,
                    payment_pushes.c.connection == target,
                )
            )
        )
    ).all()
    for payout in missing:
        first = conn.execute(
            select(payout_payments.c.payment_id)
            .where(payout_payments.c.payout_id == payout.id)
            .order_by(payout_payments.c.payment_id)
            .limit(1)
        ).scalar()
        if first is None:
            continue  # its payment moved to a recorded payout
        names = deposit_names(payout.id, payout.created_at, target)
        conn.execute(
            insert(payment_pushes).values(
                payment_id=first,
                connection=target,
                idempotency_key=names.key,
                marker=names.marker,
                kind="deposit",
                payout_id=payout.id,
                status="waiting",
                attempts=0,
                created_at=now,
                updated_at=now,
            )
        )


def _promote(conn: Connection, targets: Sequence[str], now: dt.datetime) -> int:
    queued = 0
    rows = conn.execute(
        select(payment_pushes).where(
            and_(
                payment_pushes.c.kind == "deposit",
                payment_pushes.c.status == "waiting",
                payment_pushes.c.connection.in_(targets),
            )
        )
    ).all()
    for row in rows:
        plan = deposit_plan(conn, row.payout_id, row.connection)
        where = and_(payment_pushes.c.id == row.id, payment_pushes.c.status == "waiting")
        if plan.ready:
            conn.execute(
                update(payment_pushes)
                .where(where)
                .values(status="queued", last_error=None, next_attempt_at=None, updated_at=now)
            )
            queued += 1
        elif plan.blocked:
            conn.execute(
                update(payment_pushes)
                .where(where)
                .values(status="dead", last_error=plan.blocked, updated_at=now)
            )
            open_review(conn, now=now, connection=row.connection, **dead_deposit(row, plan.blocked))
        elif plan.waiting != row.last_error:
            conn.execute(
                update(payment_pushes).where(where).values(last_error=plan.waiting, updated_at=now)
            )
    return queued


def deposit_plan(conn: Connection, payout_id: int, connection: str) -> DepositPlan:
    """What the deposit of payout ``payout_id`` in ``connection`` holds, if it can be booked."""
    members = conn.execute(
        select(payments)
        .join(payout_payments, payout_payments.c.payment_id == payments.c.id)
        .where(payout_payments.c.payout_id == payout_id)
        .order_by(payments.c.id)
    ).all()
    if not members:
        return DepositPlan(blocked="no payment is left in the payout")
    lines: list[DepositLine] = []
    waiting: str | None = None
    for payment in members:
        if payment.status == PaymentStatus.REVERSED.value:
            return DepositPlan(blocked=f"payment {payment.id} in it was reversed")
        if payment.status == PaymentStatus.UNAPPLIED.value:
            waiting = waiting or f"payment {payment.id} is held as unapplied"
            continue
        pushes = conn.execute(
            select(payment_pushes, payment_allocations.c.amount)
            .join(payment_allocations, payment_allocations.c.id == payment_pushes.c.allocation_id)
            .where(
                and_(
                    payment_pushes.c.payment_id == payment.id,
                    payment_pushes.c.connection == connection,
                    payment_pushes.c.kind == "push",
                )
            )
            .order_by(payment_pushes.c.id)
        ).all()
        if not pushes:
            return DepositPlan(
                blocked=f"payment {payment.id} was never queued for {connection} (it was not a "
                "payment target when the payment was recorded)"
            )
        for push in pushes:
            if push.status == "cancelled":
                return DepositPlan(
                    blocked=f"push {push.id} of payment {payment.id} to {connection} was "
                    "cancelled: a person took that payment in hand"
                )
            if push.status != "done" or push.external_id is None:
                waiting = waiting or (
                    f"waiting for push {push.id} of payment {payment.id} ({push.status})"
                )
            else:
                lines.append(DepositLine(str(push.external_id), push.amount))
    if waiting:
        return DepositPlan(waiting=waiting)
    return DepositPlan(lines=tuple(lines))


def dead_deposit(row: Any, reason: str) -> dict[str, Any]:
    """The review item of a deposit that will not be booked (``open_review`` keywords)."""
    return {
        "kind": "payment_push_dead",
        "subject": f"push {row.id}",
        "reason": f"the deposit of payout {row.payout_id} was not booked in {row.connection}: "
        f"{reason}. Book it there by hand (then `syncd push cancel {row.id}`), or fix the cause "
        f"and `syncd push retry {row.id}`",
        "detail": {"push_id": row.id, "payout_id": row.payout_id},
    }


def deposit_memo(conn: Connection, payout_id: int) -> str:
    """The deposit's note at the vendor (our marker follows it): which payout, which payments."""
    payout = conn.execute(select(payouts).where(payouts.c.id == payout_id)).one()
    members = conn.execute(
        select(payments.c.id, payments.c.reference)
        .join(payout_payments, payout_payments.c.payment_id == payments.c.id)
        .where(payout_payments.c.payout_id == payout_id)
        .order_by(payments.c.id)
    ).all()
    paid = ", ".join(f"{m.id}" + (f" ({m.reference})" if m.reference else "") for m in members)
    head = f"Payout {payout.reference}" if payout.reference else "Card payout"
    text = f"{head}: syncd payment(s) {paid}; fee {payout.fee} {payout.currency}"
    return f"{text}. {payout.memo}" if payout.memo else text


__all__ = [
    "LIVE_DEPOSIT",
    "PER_PAYMENT",
    "PER_PAYOUT",
    "DepositPlan",
    "NewPayout",
    "PayoutDuplicate",
    "PayoutRecorded",
    "PayoutRefused",
    "dead_deposit",
    "deposit_memo",
    "deposit_plan",
    "paid_out",
    "prepare_deposits",
    "record_payout",
]
