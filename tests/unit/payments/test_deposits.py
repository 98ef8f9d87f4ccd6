"""Card fees booked as deposits, against an in-memory target: every path books a payout once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from syncd.connector import PushAccounts
from syncd.errors import RetriableError
from syncd.payments.ledger import NewPayment, Recorded, record_payment, reverse_payment
from syncd.payments.outbox import cancel_push, claim_next, retry_push
from syncd.payments.payouts import PER_PAYOUT, NewPayout, PayoutRecorded, record_payout
from syncd.payments.pusher import Pusher
from syncd.store.tables import payment_pushes, review_items
from syncd.testing import FakeClock, FakePaymentsConnector

from .conftest import POLICY, FakeBooks

AddInvoice = Callable[..., None]
FEES = PushAccounts(fee_account="Merchant Fees")


@pytest.fixture
def books() -> FakeBooks:
    return FakeBooks()


@pytest.fixture
def pusher(engine: Engine, clock: FakeClock, books: FakeBooks) -> Callable[..., Pusher]:
    def make(**kwargs: Any) -> Pusher:
        return Pusher(
            engine,
            targets=kwargs.pop("targets", {"qb": FEES}),
            connector_for=kwargs.pop("connector_for", lambda _: books),
            clock=clock,
            policy=POLICY,
            **kwargs,
        )

    return make


@pytest.fixture
def invoices(add_invoice: AddInvoice) -> None:
    for n in range(1, 5):
        add_invoice("qb", f"Q{n}", f"100{n}", customer="QC9")


def pay(engine: Engine, clock: FakeClock, n: int, amount: str, fee: str = "0", **kw: Any) -> int:
    done = record_payment(
        engine,
        NewPayment(
            amount=Decimal(amount),
            fee=Decimal(fee),
            received_at=clock.now(),
            invoice_number=f"100{n}",
            reference=f"ch_{n}",
        ),
        kw.pop("targets", ["qb"]),
        now=clock.now(),
    )
    assert isinstance(done, Recorded)
    return done.payment_id


def rows(engine: Engine, kind: str | None = None) -> list[Any]:
    with engine.connect() as conn:
        found = conn.execute(select(payment_pushes).order_by(payment_pushes.c.id)).all()
    return [r for r in found if kind is None or r.kind == kind]


def reviews(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(review_items).order_by(review_items.c.id)))


@pytest.mark.usefixtures("invoices")
def test_a_card_payment_with_a_fee_gets_a_deposit_of_its_own(
    engine: Engine, clock: FakeClock, books: FakeBooks, pusher: Callable[..., Pusher]
) -> None:
    pay(engine, clock, 1, "40.00", fee="1.20")
    pay(engine, clock, 2, "25.00")  # no fee: nothing to deposit on its own
    result = pusher().run_pass()
    assert result.ok and result.counts["done"] == 3

    [deposit] = rows(engine, "deposit")
    [(vendor_id, made)] = books.deposits.items()
    assert (deposit.status, deposit.settled_by, deposit.external_id) == ("done", "send", vendor_id)
    first = rows(engine, "push")[0]
    assert [(line.payment_id, line.amount) for line in made["lines"]] == [
        (first.external_id, Decimal("40.00"))
    ]
    assert (made["fee"], made["fee_account"], made["marker"]) == (
        Decimal("1.20"),
        "Merchant Fees",
        deposit.marker,
    )
    assert "ch_1" in made["memo"] and deposit.idempotency_key.startswith("syncd-")
    assert deposit.idempotency_key != first.idempotency_key and deposit.marker != first.marker
    assert pusher().run_pass().summary() == "nothing due"
    assert [c for c, _ in books.calls].count("deposit") == 1


@pytest.mark.usefixtures("invoices")
def test_no_deposit_where_the_target_does_not_book_them(
    engine: Engine, clock: FakeClock, pusher: Callable[..., Pusher]
) -> None:
    pay(engine, clock, 1, "40.00", fee="1.20")
    plain = FakePaymentsConnector()  # ConnectWise-like: payments only, fees not booked
    off = FakeBooks(enabled=False)  # QuickBooks without deposit_bank_account
    for target in (plain, off):
        assert pusher(connector_for=lambda _, t=target: t).run_pass().counts["done"] <= 1
    assert rows(engine, "deposit") == [] and off.deposits == {}


@pytest.mark.usefixtures("invoices")
def test_a_recorded_payout_is_one_deposit_once_all_its_payments_are_pushed(
    engine: Engine,
    clock: FakeClock,
    books: FakeBooks,
    pusher: Callable[..., Pusher],
    add_invoice: AddInvoice,
) -> None:
    a = pay(engine, clock, 1, "40.00", fee="1.20")
    b = pay(engine, clock, 2, "60.00", fee="2.00")
    books.script = [RetriableError("503")]  # the first payment push fails once
    outcome = record_payout(
        engine,
        NewPayout("po_1", Decimal("3.20"), clock.now(), payment_ids=(a, b)),
        now=clock.now(),
    )
    assert isinstance(outcome, PayoutRecorded) and outcome.net == Decimal("96.80")

    first = pusher().run_pass()
    assert (first.counts["done"], first.counts["retrying"]) == (1, 1)
    [deposit] = rows(engine, "deposit")
    assert deposit.status == "waiting" and "waiting for push" in deposit.last_error
    clock.advance(31)
    assert pusher().run_pass().counts["done"] == 2  # the payment, then the deposit
    [made] = books.deposits.values()
    assert sorted(line.amount for line in made["lines"]) == [Decimal("40.00"), Decimal("60.00")]
    assert made["fee"] == Decimal("3.20") and "po_1" in made["memo"]
    assert all(books.deposited(r.external_id) == 1 for r in rows(engine, "push"))


@pytest.mark.usefixtures("invoices")
def test_per_payout_mode_books_only_recorded_payouts(
    engine: Engine, clock: FakeClock, books: FakeBooks, pusher: Callable[..., Pusher]
) -> None:
    a = pay(engine, clock, 1, "40.00", fee="1.20")
    assert pusher(deposits=PER_PAYOUT).run_pass().counts["done"] == 1
    assert books.deposits == {}
    record_payout(
        engine, NewPayout("po_2", Decimal("1.20"), clock.now(), payment_ids=(a,)), now=clock.now()
    )
    assert pusher(deposits=PER_PAYOUT).run_pass().counts["done"] == 1
    assert len(books.deposits) == 1


@pytest.mark.parametrize("step", ["lost", "drop"])
@pytest.mark.usefixtures("invoices")
def test_an_uncertain_deposit_is_settled_by_marker_before_any_resend(
    engine: Engine,
    clock: FakeClock,
    books: FakeBooks,
    pusher: Callable[..., Pusher],
    step: str,
) -> None:
    pay(engine, clock, 1, "40.00", fee="1.20")
    books.deposit_script = [step]
    assert pusher().run_pass().counts["uncertain"] == 1
    assert pusher().run_pass().summary() == "nothing due"  # settle_after has not passed
    clock.advance(61)
    assert pusher().run_pass().counts["settled" if step == "lost" else "done"] == 1
    [deposit] = rows(engine, "deposit")
    assert deposit.status == "done" and len(books.deposits) == 1
    calls = [c for c, _ in books.calls if "deposit" in c]
    assert calls == (
        ["deposit", "find_deposit"] if step == "lost" else ["deposit", "find_deposit", "deposit"]
    )


@pytest.mark.usefixtures("invoices")
def test_a_worker_that_died_holding_a_deposit_is_taken_over_by_marker(
    engine: Engine, clock: FakeClock, books: FakeBooks, pusher: Callable[..., Pusher]
) -> None:
    pay(engine, clock, 1, "40.00", fee="1.20")
    books.deposit_script = [KeyError("a bug")]
    assert pusher().run_pass().counts["error"] == 1  # as if it died: the lease is kept
    [deposit] = rows(engine, "deposit")
    assert deposit.status == "in_flight"
    clock.advance(301)
    assert pusher().run_pass().counts["done"] == 1
    assert [c for c, _ in books.calls if "deposit" in c] == [
        "deposit",
        "find_deposit",
        "deposit",
    ]


@pytest.mark.usefixtures("invoices")
def test_no_fee_account_asks_a_person_and_a_retry_books_it_once(
    engine: Engine, clock: FakeClock, books: FakeBooks, pusher: Callable[..., Pusher]
) -> None:
    pay(engine, clock, 1, "40.00", fee="1.20")
    assert pusher(targets={"qb": PushAccounts()}).run_pass().counts["dead"] == 1
    [deposit] = rows(engine, "deposit")
    assert deposit.status == "dead" and "set fee_account" in deposit.last_error
    assert [r.kind for r in reviews(engine)] == ["payment_push_dead"]
    assert retry_push(engine, deposit.id, now=clock.now()) == "uncertain"
    assert pusher().run_pass().counts["done"] == 1 and len(books.deposits) == 1


@pytest.mark.usefixtures("invoices")
def test_a_reversal_cancels_an_unsent_deposit_and_asks_about_a_booked_one(
    engine: Engine, clock: FakeClock, books: FakeBooks, pusher: Callable[..., Pusher]
) -> None:
    a = pay(engine, clock, 1, "40.00", fee="1.20")
    b = pay(engine, clock, 2, "30.00", fee="1.00")
    c = pay(engine, clock, 3, "20.00", fee="0.80")
    record_payout(
        engine, NewPayout("po_3", Decimal("2.20"), clock.now(), payment_ids=(a, b)), now=clock.now()
    )
    books.script = [RetriableError("503")]  # a's push fails once: po_3's deposit waits
    pusher().run_pass()  # c is pushed and deposited on its own
    reverse_payment(engine, a, "chargeback", now=clock.now())
    reverse_payment(engine, c, "refund", now=clock.now())
    deposits = {r.payout_id: r for r in rows(engine, "deposit")}
    assert [d.status for d in deposits.values()] == ["cancelled", "done"]
    kinds = sorted(r.kind for r in reviews(engine))
    assert kinds.count("payment_deposit") == 2  # the payout's other payment; the booked one
    clock.advance(31)
    pusher().run_pass()
    assert len(books.deposits) == 1  # never the cancelled payout
    # b may now be paid out again, in a new payout
    again = record_payout(
        engine, NewPayout("po_4", Decimal("1.00"), clock.now(), payment_ids=(b,)), now=clock.now()
    )
    assert isinstance(again, PayoutRecorded) and again.moved == (b,)
    pusher().run_pass()
    assert len(books.deposits) == 2


@pytest.mark.usefixtures("invoices")
def test_a_cancelled_payment_push_blocks_its_deposit(
    engine: Engine, clock: FakeClock, books: FakeBooks, pusher: Callable[..., Pusher]
) -> None:
    a = pay(engine, clock, 1, "40.00", fee="1.20")
    b = pay(engine, clock, 2, "30.00", fee="1.00")
    record_payout(
        engine, NewPayout("po_5", Decimal("2.20"), clock.now(), payment_ids=(a, b)), now=clock.now()
    )
    second = rows(engine, "push")[1]
    cancel_push(engine, second.id, now=clock.now(), reason="recorded by hand")
    pusher().run_pass()
    [deposit] = rows(engine, "deposit")
    assert deposit.status == "dead" and "was cancelled" in deposit.last_error
    assert books.deposits == {} and [r.kind for r in reviews(engine)] == ["payment_push_dead"]


@pytest.mark.usefixtures("invoices")
def test_a_claimed_deposit_rereads_its_payout_before_sending(
    engine: Engine, clock: FakeClock, books: FakeBooks, pusher: Callable[..., Pusher]
) -> None:
    a = pay(engine, clock, 1, "40.00", fee="1.20")
    books.deposit_script = [RetriableError("503")]
    pusher().run_pass()  # payment done, deposit queued again after a definite failure
    reverse_payment(engine, a, "chargeback", now=clock.now())
    [deposit] = rows(engine, "deposit")
    assert deposit.status == "cancelled"
    # a worker claiming it anyway (the reversal raced the claim) finds it blocked
    with engine.begin() as conn:
        conn.execute(
            payment_pushes.update()
            .where(payment_pushes.c.id == deposit.id)
            .values(status="queued", next_attempt_at=None)
        )
    claim = claim_next(
        engine, owner="w", now=clock.now(), lease=dt.timedelta(minutes=5), connections={"qb"}
    )
    assert claim is not None and claim.kind == "deposit"
    clock.advance(301)
    assert pusher().run_pass().counts["dead"] == 1
    assert books.deposits == {}
