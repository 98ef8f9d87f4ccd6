"""The ledger on a real store (SQLite and PostgreSQL): one transaction, or nothing at all."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from syncd.model import PaymentMethod
from syncd.payments.allocation import Line
from syncd.payments.ledger import (
    Duplicate,
    NewPayment,
    PaymentRefused,
    Recorded,
    apply_held,
    apply_held_payments,
    record_payment,
    reverse_payment,
)
from syncd.store.tables import (
    payment_allocations,
    payment_pushes,
    payments,
    review_items,
)

T0 = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)
AddInvoice = Callable[..., None]


def new(amount: str = "40.00", number: str | None = "1001", **over: Any) -> NewPayment:
    values: dict[str, Any] = {
        "amount": Decimal(amount),
        "received_at": T0,
        "invoice_number": number,
        "method": PaymentMethod.CARD,
    }
    values.update(over)
    return NewPayment(**values)


def counts(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (payments, payment_allocations, payment_pushes)
        )


def pushes(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(payment_pushes).order_by(payment_pushes.c.id)))


@pytest.fixture
def seeded(engine: Engine, add_invoice: AddInvoice) -> Engine:
    add_invoice("cw", "11", "1001")
    add_invoice("qb", "Q11", "1001")
    return engine


def test_recording_queues_one_push_per_target_in_one_transaction(seeded: Engine) -> None:
    done = record_payment(seeded, new(reference="ch_1"), ["cw", "qb"], now=T0)
    assert isinstance(done, Recorded) and done.status == "applied" and done.currency == "USD"
    assert done.lines == (("1001", Decimal("40.00")),)
    rows = pushes(seeded)
    assert [(r.connection, r.status, r.invoice_external_id, r.kind) for r in rows] == [
        ("cw", "queued", "11", "push"),
        ("qb", "queued", "Q11", "push"),
    ]
    assert len({r.idempotency_key for r in rows}) == 2 and all(r.marker for r in rows)


def test_same_reference_twice_is_a_no_op(seeded: Engine) -> None:
    first = record_payment(seeded, new(reference="ch_1"), ["qb"], now=T0)
    before = counts(seeded)
    again = record_payment(seeded, new("99.00", reference="ch_1"), ["qb"], now=T0)
    assert isinstance(first, Recorded)
    assert again == Duplicate(payment_id=first.payment_id, reference="ch_1")
    assert counts(seeded) == before


@pytest.mark.parametrize(
    ("payment", "fragment"),
    [
        (new("12.345"), "amount 12.345 has more decimals than USD allows"),
        (new("0"), "amount must be positive"),
        (new("-5.00"), "amount must be positive"),
        (new("10.00", currency="EUR"), "the payment is in EUR but invoice 1001 is in USD"),
        (new("10.00", number="9999"), "invoice 9999 is not in the store"),
        (new("100.01"), "more than the 100.00 USD still open"),
        (new("10.00", fee=Decimal("10.00")), "fee 10.00 is not less than the amount"),
        (new("10.00", number=None), "name the invoice it pays, or give a memo"),
        (new("10.00", customer="Globex"), "belongs to Acme Ltd, not to Globex"),
    ],
)
def test_bad_input_is_refused_and_nothing_changes(
    seeded: Engine, payment: NewPayment, fragment: str
) -> None:
    before = counts(seeded)
    with pytest.raises(PaymentRefused, match=re.escape(fragment)):
        record_payment(seeded, payment, ["qb"], now=T0)
    assert counts(seeded) == before


def test_void_invoice_is_refused(engine: Engine, add_invoice: AddInvoice) -> None:
    add_invoice("cw", "12", "1002", status="void")
    with pytest.raises(PaymentRefused, match="invoice 1002 is void in cw"):
        record_payment(engine, new(number="1002"), ["cw"], now=T0)
    assert counts(engine) == (0, 0, 0)


def test_two_quick_payments_cannot_overpay(seeded: Engine) -> None:
    record_payment(seeded, new("60.00", reference="a"), ["qb"], now=T0)
    with pytest.raises(PaymentRefused, match=r"40\.00 USD still open"):
        record_payment(seeded, new("60.00", reference="b"), ["qb"], now=T0)
    assert isinstance(record_payment(seeded, new("40.00", reference="c"), ["qb"], now=T0), Recorded)


def test_concurrent_recordings_never_overpay(seeded: Engine) -> None:
    """Eight threads pay 30.00 each on a 100.00 invoice at once: exactly three get in."""
    results: list[object] = []
    barrier = threading.Barrier(8)

    def one(i: int) -> None:
        barrier.wait()
        try:
            results.append(record_payment(seeded, new("30.00", reference=f"r{i}"), ["qb"], now=T0))
        except PaymentRefused as exc:
            results.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(isinstance(r, Recorded) for r in results) == 3
    with seeded.connect() as conn:
        total = sum(conn.execute(select(payment_allocations.c.amount)).scalars(), Decimal(0))
    assert total == Decimal("90.00")


def test_overpayment_kept_as_credit(seeded: Engine) -> None:
    done = record_payment(seeded, new("130.00", allow_credit=True), ["qb"], now=T0)
    assert isinstance(done, Recorded)
    assert done.lines == (("1001", Decimal("100.00")),) and done.credit == Decimal("30.00")


def test_explicit_allocation_queues_a_push_per_invoice_and_target(
    seeded: Engine, add_invoice: AddInvoice
) -> None:
    add_invoice("qb", "Q12", "1002", "50.00")
    lines = (Line("1001", Decimal("60.00")), Line("1002", Decimal("50.00")))
    done = record_payment(seeded, new("110.00", number=None, allocations=lines), ["qb"], now=T0)
    assert isinstance(done, Recorded) and len(done.pushes) == 2
    assert [r.invoice_external_id for r in pushes(seeded)] == ["Q11", "Q12"]


def test_a_target_without_the_invoice_waits_for_it(engine: Engine, add_invoice: AddInvoice) -> None:
    add_invoice("cw", "11", "1001")
    record_payment(engine, new(), ["cw", "qb"], now=T0)
    assert [(r.connection, r.status) for r in pushes(engine)] == [
        ("cw", "queued"),
        ("qb", "waiting"),
    ]


def test_unknown_invoice_is_held_then_applied_when_it_syncs_in(
    engine: Engine, add_invoice: AddInvoice
) -> None:
    held = record_payment(engine, new(memo="INV 1001 per e-mail", currency="USD"), ["qb"], now=T0)
    assert isinstance(held, Recorded) and held.status == "unapplied" and not held.pushes
    assert apply_held_payments(engine, ["qb"], now=T0) == []
    add_invoice("qb", "Q11", "1001")
    [outcome] = apply_held_payments(engine, ["qb"], now=T0)
    assert outcome.applied and outcome.pushes[0].status == "queued"
    assert apply_held_payments(engine, ["qb"], now=T0) == []  # once only


def test_held_payment_for_another_customer_asks_a_person(
    engine: Engine, add_invoice: AddInvoice
) -> None:
    record_payment(engine, new(memo="m", currency="USD", customer="Globex"), ["qb"], now=T0)
    add_invoice("qb", "Q11", "1001")
    [outcome] = apply_held_payments(engine, ["qb"], now=T0)
    assert not outcome.applied and "not to Globex" in (outcome.reason or "")
    apply_held_payments(engine, ["qb"], now=T0)  # the same reason is not asked twice
    with engine.connect() as conn:
        items = conn.execute(select(review_items)).all()
    assert [i.kind for i in items] == ["payment_held"]


def test_a_person_applies_a_memo_only_payment(seeded: Engine) -> None:
    held = record_payment(seeded, new(number=None, memo="cash", currency="USD"), ["qb"], now=T0)
    assert isinstance(held, Recorded) and held.status == "unapplied"
    with pytest.raises(PaymentRefused, match="invoice 7 is not in the store"):
        apply_held(seeded, held.payment_id, ["qb"], now=T0, invoice_number="7", by_person=True)
    outcome = apply_held(
        seeded, held.payment_id, ["qb"], now=T0, invoice_number="1001", by_person=True
    )
    assert outcome is not None and outcome.applied


def test_reversal_cancels_unsent_pushes_and_queues_reversals_of_sent_ones(
    seeded: Engine, set_invoice: Callable[..., None]
) -> None:
    done = record_payment(seeded, new(), ["cw", "qb"], now=T0)
    assert isinstance(done, Recorded)
    with seeded.begin() as conn:
        conn.execute(
            payment_pushes.update()
            .where(payment_pushes.c.connection == "qb")
            .values(status="done", external_id="77")
        )
    later = T0 + dt.timedelta(hours=1)
    reversal = reverse_payment(seeded, done.payment_id, "chargeback", now=later)
    assert reversal.queued == ("qb",) and reversal.cancelled == 1
    rows = pushes(seeded)
    assert [(r.connection, r.kind, r.status) for r in rows] == [
        ("cw", "push", "cancelled"),
        ("qb", "push", "done"),
        ("qb", "reverse", "queued"),
    ]
    assert reverse_payment(seeded, done.payment_id, "again", now=later).already
    # the reversed payment no longer takes any of the invoice
    set_invoice("qb", "Q11", balance=Decimal("100.00"))
    assert isinstance(record_payment(seeded, new("100.00"), ["qb"], now=later), Recorded)
