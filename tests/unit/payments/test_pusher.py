"""The pusher's state machine against an in-memory target: every path ends exactly once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from syncd.connector import PaymentPush, PushAccounts
from syncd.errors import AuthError, RateLimited, RetriableError, SkippableError
from syncd.model import PaymentMethod
from syncd.payments.ledger import NewPayment, Recorded, record_payment, reverse_payment
from syncd.payments.outbox import claim_next
from syncd.payments.pusher import Pusher
from syncd.store.tables import payment_pushes, review_items
from syncd.testing import FakeClock, FakeConnector, FakePaymentsConnector, FakeSettings

AddInvoice = Callable[..., None]
MakePusher = Callable[..., Pusher]


@pytest.fixture
def payment(engine: Engine, add_invoice: AddInvoice, clock: FakeClock) -> int:
    add_invoice("qb", "Q1", "1001", customer="QC9")
    done = record_payment(
        engine,
        NewPayment(
            amount=Decimal("40.00"),
            fee=Decimal("1.20"),
            received_at=clock.now(),
            invoice_number="1001",
            reference="ch_1",
            memo="May",
        ),
        ["qb"],
        now=clock.now(),
    )
    assert isinstance(done, Recorded)
    return done.payment_id


def rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(payment_pushes).order_by(payment_pushes.c.id)))


def reviews(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [r.kind for r in conn.execute(select(review_items).order_by(review_items.c.id))]


def test_a_push_goes_out_once_with_its_marker(
    engine: Engine, payment: int, make_pusher: MakePusher, target: FakePaymentsConnector
) -> None:
    pusher = make_pusher()
    result = pusher.run_pass()
    assert result.ok and result.counts["done"] == 1
    [row] = rows(engine)
    assert (row.status, row.settled_by, row.attempts) == ("done", "send", 1)
    [(vendor_id, sent)] = target.payments.items()
    assert row.external_id == vendor_id and sent["marker"] == row.marker
    assert sent["invoice"] == "Q1" and sent["amount"] == Decimal("40.00")
    assert pusher.run_pass().summary() == "nothing due"
    assert target.calls == [("push", row.marker)]


def test_the_push_carries_what_the_target_needs(
    engine: Engine, payment: int, clock: FakeClock
) -> None:
    seen = []

    class Recording(FakePaymentsConnector):
        def push_payment(self, push: Any) -> Any:
            seen.append(push)
            return super().push_payment(push)

    accounts = PushAccounts("Undeposited Funds", "Card", "Merchant Fees")
    Pusher(
        engine,
        targets={"qb": accounts},
        connector_for=lambda _: Recording(),
        clock=clock,
    ).run_pass()
    [push] = seen
    assert (push.customer_external_id, push.fee, push.reference, push.memo) == (
        "QC9",
        Decimal("1.20"),
        "ch_1",
        "May",
    )
    assert push.accounts == accounts and push.key.startswith("syncd-")


def test_a_lost_answer_is_settled_by_marker_never_resent(
    engine: Engine,
    payment: int,
    make_pusher: MakePusher,
    target: FakePaymentsConnector,
    clock: FakeClock,
) -> None:
    target.script = ["lost"]
    pusher = make_pusher()
    first = pusher.run_pass()
    assert first.counts["uncertain"] == 1 and not first.ok
    assert pusher.run_pass().summary() == "nothing due"  # settle_after has not passed
    clock.advance(61)
    assert pusher.run_pass().counts["settled"] == 1
    [row] = rows(engine)
    assert (row.status, row.settled_by) == ("done", "marker")
    assert target.landed(row.marker) == 1
    assert [call for call, _ in target.calls] == ["push", "find"]


def test_a_dropped_request_is_sent_again_only_after_a_definite_not_found(
    engine: Engine,
    payment: int,
    make_pusher: MakePusher,
    target: FakePaymentsConnector,
    clock: FakeClock,
) -> None:
    target.script = ["drop"]
    pusher = make_pusher()
    pusher.run_pass()
    clock.advance(61)
    assert pusher.run_pass().counts["done"] == 1
    [row] = rows(engine)
    assert target.landed(row.marker) == 1
    assert [call for call, _ in target.calls] == ["push", "find", "push"]


@pytest.mark.parametrize("landed", [True, False])
def test_a_worker_that_died_after_claiming_is_taken_over_by_marker_search(
    engine: Engine,
    payment: int,
    make_pusher: MakePusher,
    target: FakePaymentsConnector,
    clock: FakeClock,
    landed: bool,
) -> None:
    claim = claim_next(
        engine, owner="dead", now=clock.now(), lease=dt.timedelta(minutes=5), connections={"qb"}
    )
    assert claim is not None
    if landed:  # it sent, then died before committing
        target.push_payment(push_with(claim.marker))
    pusher = make_pusher()
    assert pusher.run_pass().summary() == "nothing due"  # the lease still holds
    clock.advance(301)
    result = pusher.run_pass()
    assert result.counts["settled" if landed else "done"] == 1
    assert target.landed(claim.marker) == 1


def push_with(marker: str) -> PaymentPush:
    """What the dead worker had sent: a push carrying ``marker``."""
    return PaymentPush(
        key="k",
        marker=marker,
        invoice_external_id="Q1",
        customer_external_id="QC9",
        amount=Decimal("40.00"),
        fee=Decimal(0),
        currency="USD",
        method=PaymentMethod.OTHER,
        received_at=dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
    )


def test_transient_failures_back_off_then_die_with_a_review_item(
    engine: Engine,
    payment: int,
    make_pusher: MakePusher,
    target: FakePaymentsConnector,
    clock: FakeClock,
) -> None:
    target.script = [
        RetriableError("503"),
        RateLimited("slow down", retry_after=600),
        RetriableError("x"),
    ]
    pusher = make_pusher()
    assert pusher.run_pass().counts["retrying"] == 1
    [row] = rows(engine)
    assert row.status == "queued" and 15 <= (row.next_attempt_at - clock.now()).seconds <= 30
    clock.advance(31)
    pusher.run_pass()
    [row] = rows(engine)
    assert (row.next_attempt_at - clock.now()).seconds >= 600  # Retry-After wins
    clock.advance(601)
    assert pusher.run_pass().counts["dead"] == 1
    [row] = rows(engine)
    assert row.status == "dead" and "gave up after 3 attempts" in row.last_error
    assert reviews(engine) == ["payment_push_dead"] and not target.payments


def test_a_refusal_is_dead_at_once(
    engine: Engine, payment: int, make_pusher: MakePusher, target: FakePaymentsConnector
) -> None:
    target.script = [SkippableError("The payment amount cannot exceed the invoice balance.")]
    assert make_pusher().run_pass().counts["dead"] == 1
    [row] = rows(engine)
    assert row.status == "dead" and "qb refused it" in row.last_error
    assert reviews(engine) == ["payment_push_dead"]


def test_an_auth_failure_holds_that_connection_only(
    engine: Engine, add_invoice: AddInvoice, make_pusher: MakePusher, clock: FakeClock
) -> None:
    add_invoice("qb", "Q1", "1001")
    add_invoice("xero", "X1", "1001")
    record_payment(
        engine,
        NewPayment(amount=Decimal("5.00"), received_at=clock.now(), invoice_number="1001"),
        ["qb", "xero"],
        now=clock.now(),
    )
    qb, xero = FakePaymentsConnector(), FakePaymentsConnector()
    qb.script = [AuthError("token revoked")]
    result = make_pusher({"qb": qb, "xero": xero}).run_pass()
    assert result.flagged == {"qb": "token revoked"} and result.counts["done"] == 1
    by_connection = {r.connection: r for r in rows(engine)}
    assert by_connection["qb"].status == "queued" and by_connection["qb"].attempts == 0
    assert by_connection["xero"].status == "done"
    assert reviews(engine) == ["payment_connection"]


def test_a_connector_that_cannot_write_payments_is_skipped(
    engine: Engine, payment: int, make_pusher: MakePusher
) -> None:
    reader = FakeConnector(FakeSettings(token="t"), FakePaymentsConnector().context)  # type: ignore[arg-type]
    result = make_pusher({"qb": reader}).run_pass()
    assert "cannot write payments" in result.flagged["qb"]
    assert rows(engine)[0].status == "queued"


def test_a_failing_marker_search_never_sends(
    engine: Engine,
    payment: int,
    make_pusher: MakePusher,
    target: FakePaymentsConnector,
    clock: FakeClock,
) -> None:
    target.script = ["drop"]
    target.find_script = [RetriableError("timeout")] * 3
    pusher = make_pusher()
    pusher.run_pass()
    for _ in range(3):
        clock.advance(3600)
        assert pusher.run_pass().counts["uncertain"] == 1
    [row] = rows(engine)
    assert row.status == "uncertain" and "marker search failed" in row.last_error
    assert [call for call, _ in target.calls] == ["push", "find", "find", "find"]
    assert reviews(engine) == ["payment_push_unsettled"]  # asked once max_attempts was reached
    clock.advance(3600)
    assert pusher.run_pass().counts["done"] == 1 and target.landed(row.marker) == 1


def test_a_payment_reversed_before_it_was_pushed_is_never_sent(
    engine: Engine,
    payment: int,
    make_pusher: MakePusher,
    target: FakePaymentsConnector,
    clock: FakeClock,
) -> None:
    reverse_payment(engine, payment, "refund", now=clock.now())
    assert make_pusher().run_pass().summary() == "nothing due"
    assert rows(engine)[0].status == "cancelled" and not target.calls


def test_reversing_a_pushed_payment_deletes_it_at_the_vendor(
    engine: Engine,
    payment: int,
    make_pusher: MakePusher,
    target: FakePaymentsConnector,
    clock: FakeClock,
) -> None:
    target.invoices["Q1"] = Decimal("100.00")
    pusher = make_pusher()
    pusher.run_pass()
    assert target.invoices["Q1"] == Decimal("60.00")
    reverse_payment(engine, payment, "chargeback", now=clock.now())
    target.reverse_script = ["lost"]
    assert pusher.run_pass().counts["uncertain"] == 1
    clock.advance(61)
    assert pusher.run_pass().counts["settled"] == 1  # the marker is gone: it was reversed
    assert target.invoices["Q1"] == Decimal("100.00") and not target.payments
    assert [(r.kind, r.status) for r in rows(engine)] == [("push", "done"), ("reverse", "done")]


def test_a_reversal_waits_for_an_uncertain_push(
    engine: Engine,
    payment: int,
    make_pusher: MakePusher,
    target: FakePaymentsConnector,
    clock: FakeClock,
) -> None:
    target.script = ["lost"]
    pusher = make_pusher()
    pusher.run_pass()
    reverse_payment(engine, payment, "refund", now=clock.now())
    assert pusher.run_pass().counts["deferred"] == 1
    clock.advance(61)
    result = pusher.run_pass()  # the push settles (found), then its reversal goes out
    assert result.counts["settled"] == 1 and result.counts["done"] == 1
    assert not target.payments
    assert [(r.kind, r.status) for r in rows(engine)] == [("push", "done"), ("reverse", "done")]


def test_a_reversal_of_a_push_that_never_landed_cancels_both(
    engine: Engine,
    payment: int,
    make_pusher: MakePusher,
    target: FakePaymentsConnector,
    clock: FakeClock,
) -> None:
    target.script = ["drop"]
    pusher = make_pusher()
    pusher.run_pass()
    reverse_payment(engine, payment, "refund", now=clock.now())
    clock.advance(61)
    pusher.run_pass()
    clock.advance(61)
    pusher.run_pass()
    assert [(r.kind, r.status) for r in rows(engine)] == [
        ("push", "cancelled"),
        ("reverse", "cancelled"),
    ]
    assert [call for call, _ in target.calls] == ["push", "find"] and not target.payments


def test_a_target_that_cannot_reverse_asks_a_person(
    engine: Engine, payment: int, make_pusher: MakePusher, clock: FakeClock
) -> None:
    class NoReverse(FakePaymentsConnector):
        reverse_payment = None  # type: ignore[assignment]

    plain = NoReverse()
    pusher = make_pusher({"qb": plain})
    pusher.run_pass()
    reverse_payment(engine, payment, "refund", now=clock.now())
    assert pusher.run_pass().counts["dead"] == 1
    assert "cannot reverse payments" in rows(engine)[1].last_error
