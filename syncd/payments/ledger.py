"""The payments ledger: record a payment and queue its pushes in one transaction.

Every write here runs under the ledger lock (``writing(engine, LEDGER)``): the checks that decide
(is this reference new? how much of the invoice is still open?) and the rows they allow commit
together, so two payments recorded at the same instant cannot both take the last open amount,
and a reference recorded twice is found the second time. A refused payment changes nothing.

Pushes are queued per (allocation, target connection): ``queued`` when the target already has
the invoice, ``waiting`` when it does not yet (it is never guessed; see ``outbox.promote``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Insert, and_, insert, select, update
from sqlalchemy.engine import Connection, Engine, Row

from syncd.config.models import Settings
from syncd.errors import SyncdError
from syncd.model import Payment, PaymentMethod, PaymentStatus
from syncd.payments._db import open_review, writing
from syncd.payments.allocation import (
    ZERO,
    Applied,
    Held,
    Line,
    PaymentRequest,
    Refused,
    decide,
    invoice_currency,
)
from syncd.payments.keys import push_names
from syncd.payments.queries import invoice_copies, invoice_rows, target_invoice
from syncd.store.tables import payment_allocations, payment_pushes, payments, payout_payments

LEDGER = "payments-ledger"


class PaymentRefused(SyncdError):
    """The payment cannot be recorded as given; the message says why. Nothing was stored."""


@dataclass(frozen=True)
class NewPayment:
    """A payment as a person, a CSV row or the API states it, before any check."""

    amount: Decimal
    received_at: dt.datetime
    currency: str | None = None  # None: the invoice's
    fee: Decimal = ZERO
    method: PaymentMethod = PaymentMethod.OTHER
    reference: str | None = None
    invoice_number: str | None = None
    allocations: tuple[Line, ...] = ()  # explicit NUMBER=AMOUNT lines instead of one invoice
    memo: str | None = None
    customer: str | None = None
    allow_credit: bool = False


@dataclass(frozen=True)
class QueuedPush:
    connection: str
    invoice_number: str
    status: str  # queued | waiting


@dataclass(frozen=True)
class Recorded:
    payment_id: int
    status: str  # applied | unapplied
    currency: str
    lines: tuple[tuple[str, Decimal], ...] = ()
    credit: Decimal = ZERO
    pushes: tuple[QueuedPush, ...] = ()
    held_because: str | None = None


@dataclass(frozen=True)
class Duplicate:
    payment_id: int
    reference: str


@dataclass(frozen=True)
class Reversal:
    payment_id: int
    already: bool = False
    queued: tuple[str, ...] = ()  # connections a reversal push was queued for
    cancelled: int = 0  # pushes that had not been sent, now never will be


@dataclass(frozen=True)
class HeldOutcome:
    payment_id: int
    applied: bool
    reason: str | None = None
    pushes: tuple[QueuedPush, ...] = field(default_factory=tuple)


def payment_targets(settings: Settings) -> list[str]:
    """The connections configured to receive payments (``receives_payments = true``)."""
    return sorted(name for name, c in settings.connections.items() if c.receives_payments)


def record_payment(
    engine: Engine, new: NewPayment, targets: Sequence[str], *, now: dt.datetime
) -> Recorded | Duplicate:
    """Check and record ``new`` with its pushes, or raise ``PaymentRefused`` (nothing stored)."""
    with writing(engine, LEDGER) as conn:
        if new.reference:
            existing = conn.execute(
                select(payments.c.id).where(payments.c.reference == new.reference)
            ).scalar()
            if existing is not None:
                return Duplicate(payment_id=int(existing), reference=new.reference)
        lines = new.allocations or (
            (Line(new.invoice_number),) if new.invoice_number is not None else ()
        )
        if not lines and not new.memo:
            raise PaymentRefused("name the invoice it pays, or give a memo to hold it as unapplied")
        copies = invoice_copies(conn, {line.invoice_number for line in lines})
        currency = new.currency or (
            invoice_currency(lines[0].invoice_number, copies) if lines else None
        )
        if currency is None:
            where = (
                f"invoice {lines[0].invoice_number} is not in the store" if lines else "no invoice"
            )
            raise PaymentRefused(f"give the payment's currency ({where} to take it from)")
        payment = _validated(new, currency)
        request = PaymentRequest(
            amount=payment.amount,
            currency=currency,
            lines=lines,
            memo=payment.memo,
            customer=new.customer,
            allow_credit=new.allow_credit,
        )
        decision = decide(request, copies)
        if isinstance(decision, Refused):
            raise PaymentRefused(decision.reason)
        status = PaymentStatus.UNAPPLIED if isinstance(decision, Held) else PaymentStatus.APPLIED
        payment_id = _new_id(
            conn,
            insert(payments).values(
                reference=payment.reference,
                invoice_number=lines[0].invoice_number if len(lines) == 1 else None,
                memo=payment.memo,
                amount=payment.amount,
                fee=payment.fee,
                currency=currency,
                method=payment.method.value,
                status=status.value,
                received_at=payment.received_at,
                created_at=now,
                customer=new.customer,
                credit=decision.credit if isinstance(decision, Applied) else None,
                allow_credit=new.allow_credit,
                hold_reason=decision.reason if isinstance(decision, Held) else None,
            ),
        )
        if isinstance(decision, Held):
            return Recorded(payment_id, status.value, currency, held_because=decision.reason)
        pushes = _allocate(conn, payment_id, now, decision.lines, targets, now)
        return Recorded(payment_id, status.value, currency, decision.lines, decision.credit, pushes)


def _new_id(conn: Connection, statement: Insert) -> int:
    key = conn.execute(statement).inserted_primary_key
    assert key is not None
    return int(key[0])


def _validated(new: NewPayment, currency: str) -> Payment:
    try:
        return Payment(
            amount=new.amount,
            currency=currency,
            fee=new.fee,
            method=new.method,
            reference=new.reference or None,
            invoice_number=new.invoice_number,
            memo=new.memo or None,
            received_at=new.received_at,
        )
    except ValidationError as exc:
        reasons = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise PaymentRefused(reasons) from None


def _allocate(
    conn: Connection,
    payment_id: int,
    created_at: dt.datetime,
    lines: Sequence[tuple[str, Decimal]],
    targets: Sequence[str],
    now: dt.datetime,
) -> tuple[QueuedPush, ...]:
    queued: list[QueuedPush] = []
    for number, amount in lines:
        allocation_id = _new_id(
            conn,
            insert(payment_allocations).values(
                payment_id=payment_id, invoice_number=number, amount=amount, created_at=now
            ),
        )
        for target in targets:
            queued.append(
                queue_push(
                    conn,
                    payment_id=payment_id,
                    created_at=created_at,
                    allocation_id=allocation_id,
                    invoice_number=number,
                    connection=target,
                    kind="push",
                    now=now,
                )
            )
    return tuple(queued)


def queue_push(
    conn: Connection,
    *,
    payment_id: int,
    created_at: dt.datetime,
    allocation_id: int,
    invoice_number: str,
    connection: str,
    kind: str,
    now: dt.datetime,
    invoice_external_id: str | None = None,
) -> QueuedPush:
    """Insert one outbox row with its deterministic key and marker."""
    if invoice_external_id is None:
        target = target_invoice(conn, connection, invoice_number)
        invoice_external_id = target.external_id if target else None
    names = push_names(payment_id, created_at, connection, invoice_number, kind)
    status = "queued" if invoice_external_id is not None else "waiting"
    conn.execute(
        insert(payment_pushes).values(
            payment_id=payment_id,
            connection=connection,
            idempotency_key=names.key,
            marker=names.marker,
            kind=kind,
            allocation_id=allocation_id,
            invoice_external_id=invoice_external_id,
            status=status,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
    )
    return QueuedPush(connection, invoice_number, status)


# -- held (unapplied) payments -------------------------------------------------------------------


def apply_held_payments(
    engine: Engine, targets: Sequence[str], *, now: dt.datetime
) -> list[HeldOutcome]:
    """Apply every held payment whose invoice number is now in the store (after a pull)."""
    with engine.connect() as conn:
        held = conn.execute(
            select(payments.c.id, payments.c.invoice_number).where(
                and_(
                    payments.c.status == PaymentStatus.UNAPPLIED.value,
                    payments.c.invoice_number.is_not(None),
                )
            )
        ).all()
        ready = [row.id for row in held if invoice_rows(conn, row.invoice_number)]
    outcomes = []
    for payment_id in ready:
        outcome = apply_held(engine, int(payment_id), targets, now=now)
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes


def apply_held(
    engine: Engine,
    payment_id: int,
    targets: Sequence[str],
    *,
    now: dt.datetime,
    invoice_number: str | None = None,
    by_person: bool = False,
) -> HeldOutcome | None:
    """Try to apply held payment ``payment_id`` (to ``invoice_number`` when a person names one).

    When the invoice turns out unable to take it (another currency, void, no longer enough
    open, another customer's), the payment stays held with the reason, and a review item asks a
    person; ``by_person`` raises ``PaymentRefused`` instead. None: nothing to do.
    """
    with writing(engine, LEDGER) as conn:
        row = conn.execute(select(payments).where(payments.c.id == payment_id)).first()
        if row is None:
            raise PaymentRefused(f"no payment {payment_id}")
        if row.status != PaymentStatus.UNAPPLIED.value:
            if by_person:
                raise PaymentRefused(f"payment {payment_id} is {row.status}, not unapplied")
            return None
        number = invoice_number or row.invoice_number
        if number is None:
            raise PaymentRefused(f"payment {payment_id} names no invoice: give one")
        copies = invoice_copies(conn, {number})
        request = PaymentRequest(
            amount=row.amount,
            currency=row.currency,
            lines=(Line(number),),
            memo=None if by_person else (row.memo or "held"),
            customer=row.customer,
            allow_credit=bool(row.allow_credit),
        )
        decision = decide(request, copies)
        if isinstance(decision, Held):
            return None
        if isinstance(decision, Refused):
            if by_person:
                raise PaymentRefused(decision.reason)
            _still_held(conn, row, decision.reason, now)
            return HeldOutcome(payment_id, applied=False, reason=decision.reason)
        conn.execute(
            update(payments)
            .where(payments.c.id == payment_id)
            .values(
                status=PaymentStatus.APPLIED.value,
                invoice_number=number,
                credit=decision.credit,
                hold_reason=None,
            )
        )
        pushes = _allocate(conn, payment_id, row.created_at, decision.lines, targets, now)
        return HeldOutcome(payment_id, applied=True, pushes=pushes)


def _still_held(conn: Connection, row: Row[Any], reason: str, now: dt.datetime) -> None:
    if row.hold_reason == reason:
        return  # asked already
    conn.execute(update(payments).where(payments.c.id == row.id).values(hold_reason=reason))
    open_review(
        conn,
        kind="payment_held",
        subject=f"payment {row.id}",
        reason=f"held payment cannot be applied: {reason}",
        now=now,
        detail={"payment_id": row.id, "invoice_number": row.invoice_number, "memo": row.memo},
    )


# -- reversals -----------------------------------------------------------------------------------


def reverse_payment(engine: Engine, payment_id: int, reason: str, *, now: dt.datetime) -> Reversal:
    """Mark a payment reversed (refund, chargeback) and undo it wherever it may have landed.

    Pushes never sent (waiting, queued, dead) are cancelled: the pusher also re-checks the
    payment before any send, so a push claimed meanwhile is not sent either. Pushes done, or in
    flight and possibly landed, get a reversal push through the same outbox.
    """
    if not reason.strip():
        raise PaymentRefused("give the reason for the reversal (refund, chargeback, …)")
    with writing(engine, LEDGER) as conn:
        row = conn.execute(select(payments).where(payments.c.id == payment_id)).first()
        if row is None:
            raise PaymentRefused(f"no payment {payment_id}")
        if row.status == PaymentStatus.REVERSED.value:
            return Reversal(payment_id, already=True)
        conn.execute(
            update(payments)
            .where(payments.c.id == payment_id)
            .values(status=PaymentStatus.REVERSED.value, reversed_at=now, reversal_reason=reason)
        )
        originals = conn.execute(
            select(payment_pushes, payment_allocations.c.invoice_number)
            .join(payment_allocations, payment_allocations.c.id == payment_pushes.c.allocation_id)
            .where(and_(payment_pushes.c.payment_id == payment_id, payment_pushes.c.kind == "push"))
        ).all()
        queued, cancelled = [], 0
        for push in originals:
            if push.status in ("waiting", "queued", "dead"):
                conn.execute(
                    update(payment_pushes)
                    .where(payment_pushes.c.id == push.id)
                    .values(
                        status="cancelled",
                        last_error=f"payment reversed before it was pushed: {reason}",
                        updated_at=now,
                    )
                )
                cancelled += 1
            elif push.status in ("in_flight", "uncertain", "done"):
                queue_push(
                    conn,
                    payment_id=payment_id,
                    created_at=row.created_at,
                    allocation_id=push.allocation_id,
                    invoice_number=push.invoice_number,
                    connection=push.connection,
                    kind="reverse",
                    now=now,
                    invoice_external_id=push.invoice_external_id,
                )
                queued.append(push.connection)
        cancelled += _unbook_deposits(conn, payment_id, reason, now)
        return Reversal(payment_id, queued=tuple(queued), cancelled=cancelled)


def _unbook_deposits(conn: Connection, payment_id: int, reason: str, now: dt.datetime) -> int:
    """A reversed payment leaves its payout: deposits not sent yet are cancelled (the pusher also
    re-reads the payout before any send), and a person is asked about the rest."""
    payout_id = conn.execute(
        select(payout_payments.c.payout_id).where(payout_payments.c.payment_id == payment_id)
    ).scalar()
    if payout_id is None:
        return 0
    deposits = conn.execute(
        select(payment_pushes).where(
            and_(payment_pushes.c.payout_id == payout_id, payment_pushes.c.kind == "deposit")
        )
    ).all()
    others = conn.execute(
        select(payout_payments.c.payment_id).where(
            and_(
                payout_payments.c.payout_id == payout_id,
                payout_payments.c.payment_id != payment_id,
            )
        )
    ).first()
    cancelled = 0
    for deposit in deposits:
        unsent = ("waiting", "queued", "dead")
        done = conn.execute(
            update(payment_pushes)
            .where(and_(payment_pushes.c.id == deposit.id, payment_pushes.c.status.in_(unsent)))
            .values(
                status="cancelled",
                last_error=f"payment {payment_id} was reversed before the deposit: {reason}",
                updated_at=now,
            )
        )
        if done.rowcount == 1:
            cancelled += 1
            if others is None:
                continue  # the payout was this payment alone: nothing else to book
            why = (
                f"payment {payment_id} was reversed, so the deposit of payout {payout_id} was not "
                f"booked in {deposit.connection}: book its other payments by hand, or record "
                "them as a new payout (`syncd payouts record`)"
            )
        elif deposit.status != "cancelled":
            why = (
                f"payment {payment_id} was reversed but the deposit of payout {payout_id} in "
                f"{deposit.connection} holds it or may (push {deposit.id}, vendor id "
                f"{deposit.external_id or 'unknown yet'}): take the payment out of that deposit "
                "by hand (QuickBooks refuses to change a deposited payment, 6540)"
            )
        else:
            continue
        open_review(
            conn,
            kind="payment_deposit",
            subject=f"push {deposit.id}",
            reason=why,
            now=now,
            connection=deposit.connection,
            detail={"push_id": deposit.id, "payout_id": payout_id, "payment_id": payment_id},
        )
    return cancelled


__all__ = [
    "LEDGER",
    "Duplicate",
    "HeldOutcome",
    "NewPayment",
    "PaymentRefused",
    "QueuedPush",
    "Recorded",
    "Reversal",
    "apply_held",
    "apply_held_payments",
    "payment_targets",
    "queue_push",
    "record_payment",
    "reverse_payment",
]
