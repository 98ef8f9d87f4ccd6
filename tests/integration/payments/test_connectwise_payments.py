"""Payments through the real ConnectWise connector and its sandbox, over loopback HTTP.

In one process, on SQLite and PostgreSQL: a sync pulls the invoices, the ledger records
payments, the pusher writes them, faults on the vendor make outcomes uncertain, the marker
settles them, a reversal deletes the payment and the next pull verifies the balances.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from connectors.connectwise import ConnectWiseConnector, ConnectWiseSettings
from connectors.connectwise.sandbox import ConnectWiseSandbox
from syncd.config.models import ConnectionSettings
from syncd.connector import ConnectorContext, PaymentPush, PushAccounts, PushReceipt, Stream
from syncd.model import PaymentMethod
from syncd.payments.ledger import NewPayment, Recorded, record_payment, reverse_payment
from syncd.payments.outbox import Policy
from syncd.payments.pusher import Pusher
from syncd.payments.verify import after_pull
from syncd.ratelimit import REGISTRY
from syncd.sandbox import Fault
from syncd.store.tables import payment_pushes, review_items
from syncd.sync import pull_stream
from syncd.testing import FakeClock

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
POST = "POST /finance/invoices/{id:int}/payments"
DELETE = "DELETE /finance/invoices/{id:int}/payments/{payment_id:int}"
POLICY = Policy(settle_after=dt.timedelta(seconds=60), lease=dt.timedelta(minutes=5))


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    REGISTRY.clear()
    yield
    REGISTRY.clear()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def cw(clock: FakeClock) -> Iterator[ConnectWiseSandbox]:
    with ConnectWiseSandbox(seed=11, companies=6, invoices=20, clock=clock) as sandbox:
        yield sandbox
        assert sandbox.server.errors == []


@pytest.fixture
def connector(cw: ConnectWiseSandbox, clock: FakeClock) -> Iterator[ConnectWiseConnector]:
    settings = ConnectWiseSettings(
        base_url=cw.base_url,
        company_id=cw.company_id,
        public_key=cw.public_key,
        private_key=cw.private_key,
        client_id=cw.client_id,
    )
    built = ConnectWiseConnector(settings, ConnectorContext(connection="cw", clock=clock))
    yield built
    built.close()


class World:
    """The store, the sandbox and the clock, with the few moves a test makes."""

    def __init__(
        self,
        engine: Engine,
        cw: ConnectWiseSandbox,
        connector: ConnectWiseConnector,
        clock: FakeClock,
    ) -> None:
        self.engine, self.cw, self.connector, self.clock = engine, cw, connector, clock
        self.pusher = Pusher(
            engine,
            targets={"cw": PushAccounts()},
            connector_for=lambda _: connector,
            clock=clock,
            policy=POLICY,
        )

    def pull(self) -> None:
        """Pull invoices, then do what the sync command does for payments."""
        started = self.clock.now()
        settings = ConnectionSettings(name="cw", connector="connectwise")
        result = pull_stream(
            self.engine, settings, self.connector, Stream.INVOICES, clock=self.clock
        )
        assert result.ok, result.error
        after_pull(self.engine, ["cw"], "cw", pull_started_at=started, now=self.clock.now())
        self.clock.advance(5)

    def open_invoice(self, skip: int = 0) -> dict[str, Any]:
        candidates = [
            i
            for i in self.cw.all_invoices()
            if i["type"] != "CreditMemo"
            and i["balance"] >= 50
            and i["payments"] == 0
            and i["currency"]["currencyCode"] == "USD"
        ]
        return candidates[skip]

    def pay(self, invoice: dict[str, Any], amount: str, reference: str) -> int:
        done = record_payment(
            self.engine,
            NewPayment(
                amount=Decimal(amount),
                received_at=self.clock.now(),
                invoice_number=invoice["invoiceNumber"],
                reference=reference,
            ),
            ["cw"],
            now=self.clock.now(),
        )
        assert isinstance(done, Recorded) and done.status == "applied"
        return done.payment_id

    def push(self) -> Any:
        result = self.pusher.run_pass()
        self.clock.advance(61)
        return result

    def pushes(self) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(payment_pushes).order_by(payment_pushes.c.id)))

    def reviews(self) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(review_items).order_by(review_items.c.id)))

    def ours(self, invoice: dict[str, Any], marker: str) -> list[dict[str, Any]]:
        return [p for p in self.cw.payments(invoice["id"]) if p["appliedBy"] == marker]


@pytest.fixture
def world(
    engine: Engine, cw: ConnectWiseSandbox, connector: ConnectWiseConnector, clock: FakeClock
) -> World:
    w = World(engine, cw, connector, clock)
    w.pull()
    return w


def test_push_verify_reverse_round_trip(world: World) -> None:
    invoice = world.open_invoice()
    before = Decimal(str(invoice["balance"]))
    world.pay(invoice, "12.34", "ch_1")
    assert world.push().counts["done"] == 1
    [row] = world.pushes()
    [landed] = world.ours(invoice, row.marker)
    assert str(landed["id"]) == row.external_id and Decimal(str(landed["amount"])) == Decimal(
        "12.34"
    )
    assert Decimal(str(world.cw.invoice(invoice["id"])["balance"])) == before - Decimal("12.34")

    world.pull()
    assert world.pushes()[0].verified == "ok" and world.reviews() == []

    reverse_payment(world.engine, row.payment_id, "chargeback", now=world.clock.now())
    assert world.push().counts["done"] == 1
    assert world.ours(invoice, row.marker) == []
    assert Decimal(str(world.cw.invoice(invoice["id"])["balance"])) == before
    world.pull()
    assert [(r.kind, r.status, r.verified) for r in world.pushes()] == [
        ("push", "done", "ok"),
        ("reverse", "done", "ok"),
    ]


@pytest.mark.parametrize(("fault", "landed"), [(Fault.DROP, False), (Fault.TRUNCATE, True)])
def test_an_uncertain_post_is_settled_by_marker(world: World, fault: Fault, landed: bool) -> None:
    invoice = world.open_invoice()
    world.pay(invoice, "20.00", "ch_2")
    world.cw.faults.inject(fault, route=POST)
    assert world.push().counts["uncertain"] == 1
    [row] = world.pushes()
    assert row.status == "uncertain" and len(world.ours(invoice, row.marker)) == int(landed)

    result = world.push()
    assert result.counts["settled" if landed else "done"] == 1
    [row] = world.pushes()
    [payment] = world.ours(invoice, row.marker)
    assert row.status == "done" and row.external_id == str(payment["id"])
    assert row.settled_by == ("marker" if landed else "send")
    posts = world.cw.log.find("POST", f"/finance/invoices/{invoice['id']}/payments")
    assert len(posts) == (1 if landed else 2)  # re-sent only after a definite "not found"


@pytest.mark.parametrize("landed", [False, True])
def test_an_uncertain_delete_is_settled(world: World, landed: bool) -> None:
    invoice = world.open_invoice()
    payment_id = world.pay(invoice, "15.00", "ch_3")
    world.push()
    [push] = world.pushes()
    reverse_payment(world.engine, payment_id, "refund", now=world.clock.now())
    world.cw.faults.inject(Fault.DROP, route=DELETE)
    assert world.push().counts["uncertain"] == 1
    if landed:  # as if the vendor had deleted it before the connection dropped
        world.cw.remove_payment(invoice["id"], int(push.external_id))
    assert world.push().counts["settled" if landed else "done"] == 1
    assert world.cw.payments(invoice["id"]) == []
    deleted = f"/finance/invoices/{invoice['id']}/payments/{push.external_id}"
    assert len(world.cw.log.find("DELETE", deleted)) == (1 if landed else 2)


def test_a_payment_also_recorded_by_hand_becomes_a_review_item(world: World) -> None:
    invoice = world.open_invoice()
    world.pay(invoice, "10.00", "ch_4")
    world.push()
    world.cw.add_payment(invoice["id"], "10.00", appliedBy="Jane")  # the bookkeeper, too
    world.pull()
    [row] = world.pushes()
    assert row.verified == "mismatch"
    [item] = world.reviews()
    assert item.kind == "payment_mismatch" and "recorded by hand" in item.detail["reason"]
    world.push()
    assert len(world.cw.payments(invoice["id"])) == 2  # never a second push of ours


def test_a_deleted_invoice_kills_the_push_with_a_reason(world: World) -> None:
    invoice = world.open_invoice()
    world.pay(invoice, "10.00", "ch_5")
    world.cw.delete_invoice(invoice["id"])
    assert world.push().counts["dead"] == 1
    [row] = world.pushes()
    assert "does not exist" in row.last_error
    assert [i.kind for i in world.reviews()] == ["payment_push_dead"]


def test_a_held_payment_applies_when_its_invoice_syncs_in(world: World) -> None:
    company = world.cw.all_companies()[0]
    invoice = world.cw.add_invoice(company["id"], "80.00")  # issued, not pulled yet
    done = record_payment(
        world.engine,
        NewPayment(
            amount=Decimal("25.00"),
            currency=company["currency"]["currencyCode"],
            received_at=world.clock.now(),
            invoice_number=invoice["invoiceNumber"],
            memo="paid before the invoice reached syncd",
        ),
        ["cw"],
        now=world.clock.now(),
    )
    assert isinstance(done, Recorded) and done.status == "unapplied"
    world.pull()
    assert world.push().counts["done"] == 1
    [row] = world.pushes()
    assert row.invoice_external_id == str(invoice["id"])
    assert len(world.ours(invoice, row.marker)) == 1


def test_connectwise_reversal_is_safe_to_repeat(
    world: World, connector: ConnectWiseConnector
) -> None:
    invoice = world.open_invoice()
    world.pay(invoice, "11.00", "ch_6")
    world.push()
    [row] = world.pushes()
    push = PaymentPush(
        key=row.idempotency_key,
        marker=row.marker,
        invoice_external_id=row.invoice_external_id,
        customer_external_id="",
        amount=Decimal("11.00"),
        fee=Decimal(0),
        currency="USD",
        method=PaymentMethod.OTHER,
        received_at=START,
    )
    receipt = PushReceipt(external_id=row.external_id)
    connector.reverse_payment(push, receipt)
    connector.reverse_payment(push, receipt)  # already gone: done, not an error
    assert world.cw.payments(invoice["id"]) == []
    world.cw.delete_invoice(invoice["id"])
    connector.reverse_payment(push, receipt)  # the invoice went, and the payment with it
