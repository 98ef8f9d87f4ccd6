"""Verification after a pull: pushes that show are confirmed, the others become review items."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from syncd.payments.ledger import NewPayment, PaymentRefused, Recorded, record_payment
from syncd.payments.pusher import Pusher
from syncd.payments.verify import after_pull, verify_connection
from syncd.store.tables import payment_pushes, review_items
from syncd.testing import FakeClock, FakePaymentsConnector

AddInvoice = Callable[..., None]
SetInvoice = Callable[..., None]


def pay(engine: Engine, clock: FakeClock, amount: str, reference: str) -> int:
    done = record_payment(
        engine,
        NewPayment(
            amount=Decimal(amount),
            received_at=clock.now(),
            invoice_number="1001",
            reference=reference,
        ),
        ["qb"],
        now=clock.now(),
    )
    assert isinstance(done, Recorded)
    return done.payment_id


def verified(engine: Engine) -> list[str | None]:
    with engine.connect() as conn:
        return [
            r.verified for r in conn.execute(select(payment_pushes).order_by(payment_pushes.c.id))
        ]


def reasons(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [r.detail["reason"] for r in conn.execute(select(review_items))]


@pytest.fixture
def pushed(
    engine: Engine,
    add_invoice: AddInvoice,
    make_pusher: Callable[..., Pusher],
    clock: FakeClock,
) -> Callable[..., None]:
    """Record and push payments of the given amounts to a 100.00 invoice in qb."""
    add_invoice("qb", "Q1", "1001")

    def run(*amounts: str) -> None:
        for i, amount in enumerate(amounts):
            pay(engine, clock, amount, f"ref-{amount}-{i}-{clock.now():%H%M%S}")
        make_pusher().run_pass()
        clock.advance(10)

    return run


def test_a_pull_showing_the_payments_confirms_them(
    engine: Engine, pushed: Callable[..., None], set_invoice: SetInvoice, clock: FakeClock
) -> None:
    pushed("30.00", "20.00")
    set_invoice("qb", "Q1", balance=Decimal("50.00"))
    assert verify_connection(engine, "qb", pull_started_at=clock.now(), now=clock.now()) == (2, [])
    assert verified(engine) == ["ok", "ok"] and reasons(engine) == []
    # confirmed payments are now part of the balance: 50.00 is open, not 0.00
    assert isinstance(pay(engine, clock, "50.00", "last"), int)


def test_a_pull_that_started_before_the_push_proves_nothing(
    engine: Engine, pushed: Callable[..., None], clock: FakeClock
) -> None:
    before = clock.now()
    pushed("30.00")
    assert verify_connection(engine, "qb", pull_started_at=before, now=clock.now()) == (0, [])
    assert verified(engine) == [None]


@pytest.mark.parametrize(
    ("balance", "status", "fragment"),
    [
        ("40.00", "partially_paid", "may also have been recorded by hand"),
        ("100.00", "open", "not (fully) there"),
        ("85.00", "partially_paid", "not (fully) there"),
        ("70.00", "void", "is void although syncd pushed payment(s) 1"),
    ],
)
def test_a_mismatch_becomes_a_review_item_never_a_push(
    engine: Engine,
    pushed: Callable[..., None],
    set_invoice: SetInvoice,
    clock: FakeClock,
    target: FakePaymentsConnector,
    make_pusher: Callable[..., Pusher],
    balance: str,
    status: str,
    fragment: str,
) -> None:
    pushed("30.00")
    set_invoice("qb", "Q1", balance=Decimal(balance), status=status)
    checked, subjects = verify_connection(
        engine, "qb", pull_started_at=clock.now(), now=clock.now()
    )
    assert (checked, subjects) == (1, ["invoice 1001 in qb"])
    assert verified(engine) == ["mismatch"]
    [reason] = reasons(engine)
    assert (fragment in reason and "syncd pushes nothing again" in reason) or "is void" in reason
    verify_connection(engine, "qb", pull_started_at=clock.now(), now=clock.now())
    assert len(reasons(engine)) == 1  # asked once
    make_pusher().run_pass()
    assert len(target.calls) == 1  # the one push; nothing re-sent


def test_a_mismatch_put_right_by_a_person_turns_ok_without_asking_again(
    engine: Engine, pushed: Callable[..., None], set_invoice: SetInvoice, clock: FakeClock
) -> None:
    pushed("30.00")
    set_invoice("qb", "Q1", balance=Decimal("40.00"))  # also recorded by hand
    verify_connection(engine, "qb", pull_started_at=clock.now(), now=clock.now())
    assert verified(engine) == ["mismatch"]
    set_invoice("qb", "Q1", balance=Decimal("70.00"))  # the duplicate was deleted there
    assert verify_connection(engine, "qb", pull_started_at=clock.now(), now=clock.now()) == (1, [])
    assert verified(engine) == ["ok"] and len(reasons(engine)) == 1


def test_after_pull_applies_held_payments_and_queues_waiting_pushes(
    engine: Engine, add_invoice: AddInvoice, clock: FakeClock
) -> None:
    held = record_payment(
        engine,
        NewPayment(
            amount=Decimal("10.00"),
            currency="USD",
            received_at=clock.now(),
            invoice_number="2002",
            memo="wire for 2002",
        ),
        ["qb"],
        now=clock.now(),
    )
    assert isinstance(held, Recorded) and held.status == "unapplied"
    add_invoice("qb", "Q2", "2002")
    done = after_pull(engine, ["qb"], "qb", pull_started_at=clock.now(), now=clock.now())
    assert done.applied == [held.payment_id]
    with engine.connect() as conn:
        assert conn.execute(select(payment_pushes.c.status)).scalar_one() == "queued"


def test_unconfirmed_pushes_keep_their_amount_taken(
    engine: Engine, pushed: Callable[..., None], set_invoice: SetInvoice, clock: FakeClock
) -> None:
    """A done push the pull does not show yet still counts against the invoice."""
    pushed("60.00")
    with pytest.raises(PaymentRefused, match=r"40\.00 USD still open"):
        pay(engine, clock, "60.00", "second")
    set_invoice("qb", "Q1", balance=Decimal("40.00"))
    verify_connection(engine, "qb", pull_started_at=clock.now(), now=clock.now())
    with pytest.raises(PaymentRefused, match=r"40\.00 USD still open"):
        pay(engine, clock, "60.00", "third")
