"""Payments, card fees and batches through the real QuickBooks Online connector and its sandbox.

In one process, on SQLite and PostgreSQL, with a fake clock (the connector's retries and rate
limits sleep on it, instantly): a pull brings the invoices in, the ledger records payments, the
pusher writes them (in batches where it may) and books each card payout as a Deposit with a
negative fee line; faults on the vendor make payments and deposits uncertain, and their markers
settle them. Every test ends by counting what QuickBooks holds: exactly once, or it fails.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from connectors.quickbooks_online import QuickBooksOnlineConnector, QuickBooksOnlineSettings
from connectors.quickbooks_online.sandbox import QuickBooksSandbox
from syncd.config.models import ConnectionSettings
from syncd.connector import ConnectorContext, PushAccounts, Stream
from syncd.model import PaymentMethod
from syncd.payments.ledger import NewPayment, Recorded, record_payment
from syncd.payments.outbox import Policy
from syncd.payments.payouts import PER_PAYOUT, NewPayout, PayoutRecorded, record_payout
from syncd.payments.pusher import PassResult, Pusher
from syncd.payments.verify import after_pull
from syncd.ratelimit import REGISTRY
from syncd.sandbox import Fault
from syncd.store.tables import payment_pushes, review_items
from syncd.sync import pull_stream
from syncd.testing import FakeClock

START = dt.datetime(2026, 3, 2, 15, tzinfo=dt.UTC)
POLICY = Policy(settle_after=dt.timedelta(seconds=60), lease=dt.timedelta(minutes=5))
ACCOUNTS = PushAccounts(payment_method="Visa", fee_account="Merchant Fees")
ATTEMPTS = 5  # the client's own attempts at one request (QuickBooksClient max_attempts)


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    REGISTRY.clear()
    yield
    REGISTRY.clear()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def qbo(clock: FakeClock) -> Iterator[QuickBooksSandbox]:
    with QuickBooksSandbox(seed=5, customers=3, invoices=0, clock=clock, throttle=False) as qbo:
        yield qbo
        assert qbo.server.errors == []


class World:
    """The store, the QuickBooks sandbox and the clock, with the few moves a test makes."""

    def __init__(
        self, engine: Engine, qbo: QuickBooksSandbox, clock: FakeClock, tmp: Path, **kw: Any
    ) -> None:
        self.engine, self.qbo, self.clock = engine, qbo, clock
        snippet = tomllib.loads(qbo.config_snippet("qbo"))["connections"]["qbo"]
        values = {k: v for k, v in snippet.items() if k != "connector"}
        values["deposit_bank_account"] = "Checking"
        context = ConnectorContext(
            connection="qbo",
            clock=clock,
            extras={"engine": engine, "store_url": f"sqlite:///{tmp / 'keys.db'}"},
        )
        self.connector = QuickBooksOnlineConnector(QuickBooksOnlineSettings(**values), context)
        self.pusher = Pusher(
            engine,
            targets={"qbo": ACCOUNTS},
            connector_for=lambda _: self.connector,
            clock=clock,
            policy=POLICY,
            **kw,
        )
        customer = next(c for c in qbo.all_customers() if c["Active"])
        self.invoices = [
            qbo.add_invoice(customer["Id"], "100.00", DocNumber=f"T-{n}") for n in range(45)
        ]

    def pull(self) -> None:
        started = self.clock.now()
        settings = ConnectionSettings(name="qbo", connector="quickbooks_online")
        result = pull_stream(
            self.engine, settings, self.connector, Stream.INVOICES, clock=self.clock
        )
        assert result.ok, result.error
        after_pull(self.engine, ["qbo"], "qbo", pull_started_at=started, now=self.clock.now())
        self.clock.advance(5)

    def pay(self, n: int, amount: str = "40.00", fee: str = "0") -> int:
        done = record_payment(
            self.engine,
            NewPayment(
                amount=Decimal(amount),
                fee=Decimal(fee),
                method=PaymentMethod.CARD,
                received_at=self.clock.now(),
                invoice_number=f"T-{n}",
                reference=f"ch_{n}",
            ),
            ["qbo"],
            now=self.clock.now(),
        )
        assert isinstance(done, Recorded) and done.status == "applied"
        return done.payment_id

    def push(self) -> PassResult:
        result = self.pusher.run_pass()
        self.clock.advance(61)
        return result

    def pushes(self, kind: str | None = None) -> list[Any]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(payment_pushes).order_by(payment_pushes.c.id)).all()
        return [r for r in rows if kind is None or r.kind == kind]

    def reviews(self) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(review_items).order_by(review_items.c.id)))

    def landed(self, n: int) -> list[dict[str, Any]]:
        """QuickBooks' payments on invoice T-n."""
        return self.qbo.payments_for_invoice(self.invoices[n]["Id"])

    def posts(self, path: str) -> int:
        return len(
            [e for e in self.qbo.log.entries if e.method == "POST" and e.path.endswith(path)]
        )


@pytest.fixture
def world(
    engine: Engine, qbo: QuickBooksSandbox, clock: FakeClock, tmp_path: Path
) -> Iterator[World]:
    w = World(engine, qbo, clock, tmp_path)
    w.pull()
    yield w
    w.connector.close()


def amount(value: Any) -> Decimal:
    return Decimal(str(value))


def test_a_card_payment_is_pushed_gross_and_its_fee_booked_by_a_deposit(world: World) -> None:
    world.pay(0, "40.00", fee="1.46")
    result = world.push()
    assert result.ok and result.counts["done"] == 2  # the payment, then its deposit

    push, deposit = world.pushes()
    assert (push.kind, deposit.kind, deposit.status) == ("push", "deposit", "done")
    [payment] = world.landed(0)
    assert payment["Id"] == push.external_id and amount(payment["TotalAmt"]) == Decimal("40.00")
    assert payment["DepositToAccountRef"]["value"] == world.qbo.undeposited_funds_id
    booked = world.qbo.deposit(deposit.external_id)
    assert world.qbo.deposit_of(payment["Id"]) == booked["Id"]
    assert amount(booked["TotalAmt"]) == Decimal("38.54")  # what reached the bank
    fee_line = next(line for line in booked["Line"] if "DepositLineDetail" in line)
    assert amount(fee_line["Amount"]) == Decimal("-1.46")
    fees = world.qbo.account_by_name("Merchant Fees")["Id"]
    assert fee_line["DepositLineDetail"]["AccountRef"]["value"] == fees
    assert booked["DepositToAccountRef"]["value"] == world.qbo.account_by_name("Checking")["Id"]
    assert deposit.marker in booked["PrivateNote"] and "ch_0" in booked["PrivateNote"]

    assert world.push().summary() == "nothing due"
    world.pull()
    assert world.pushes("push")[0].verified == "ok" and world.reviews() == []


def test_a_payout_groups_payments_into_one_deposit_and_the_batch_sends_them(
    world: World,
) -> None:
    ids = [world.pay(n, "50.00", fee="1.75") for n in range(3)]
    recorded = record_payout(
        world.engine,
        NewPayout("po_1", Decimal("5.25"), START, payment_ids=tuple(ids)),
        now=world.clock.now(),
    )
    assert isinstance(recorded, PayoutRecorded) and recorded.net == Decimal("144.75")

    assert world.push().counts["done"] == 4
    assert world.posts("/batch") == 1 and world.posts("/payment") == 0
    [deposit] = world.pushes("deposit")
    booked = world.qbo.deposit(deposit.external_id)
    assert amount(booked["TotalAmt"]) == Decimal("144.75")
    linked = {line["LinkedTxn"][0]["TxnId"] for line in booked["Line"] if "LinkedTxn" in line}
    assert linked == {p.external_id for p in world.pushes("push")}
    assert all(world.qbo.deposit_of(p) == booked["Id"] for p in linked)


def test_per_payout_mode_waits_for_the_payout(
    engine: Engine, qbo: QuickBooksSandbox, clock: FakeClock, tmp_path: Path
) -> None:
    world = World(engine, qbo, clock, tmp_path, deposits=PER_PAYOUT)
    world.pull()
    first = world.pay(0, "30.00", fee="1.17")
    assert world.push().counts["done"] == 1 and world.pushes("deposit") == []
    record_payout(
        engine, NewPayout("po_9", Decimal("1.17"), START, payment_ids=(first,)), now=clock.now()
    )
    assert world.push().counts["done"] == 1
    [deposit] = world.pushes("deposit")
    assert amount(qbo.deposit(deposit.external_id)["TotalAmt"]) == Decimal("28.83")
    world.connector.close()


@pytest.mark.parametrize(("fault", "landed"), [(Fault.DROP, False), (Fault.TRUNCATE, True)])
def test_an_uncertain_deposit_is_settled_by_marker(
    world: World, fault: Fault, landed: bool
) -> None:
    world.pay(1, "20.00", fee="0.88")
    deposits_before = len(world.qbo.deposits())
    world.qbo.faults.inject(fault, route="POST /deposit", times=ATTEMPTS)
    result = world.push()
    assert result.counts["done"] == 1 and result.counts["uncertain"] == 1
    [deposit] = world.pushes("deposit")
    assert deposit.status == "uncertain"

    assert world.push().counts["settled" if landed else "done"] == 1
    [deposit] = world.pushes("deposit")
    assert deposit.status == "done" and deposit.settled_by == ("marker" if landed else "send")
    assert len(world.qbo.deposits()) == deposits_before + 1
    assert world.posts("/deposit") == ATTEMPTS + (0 if landed else 1)


@pytest.mark.parametrize(("fault", "landed"), [(Fault.DROP, False), (Fault.TRUNCATE, True)])
def test_a_lost_batch_leaves_each_payment_uncertain_and_settled_alone(
    world: World, fault: Fault, landed: bool
) -> None:
    for n in range(40):
        world.pay(n, "10.00")
    world.qbo.faults.inject(fault, route="POST /batch", times=ATTEMPTS)
    first = world.push()
    assert first.counts["uncertain"] == 30 and first.counts["done"] == 10  # two batches

    second = world.push()
    assert second.counts["settled" if landed else "done"] == 30 and second.ok
    assert all(len(world.landed(n)) == 1 for n in range(40))
    # never a second batch for the same pushes: the uncertain ones were searched, then sent alone
    assert world.posts("/batch") == ATTEMPTS + 1
    assert world.posts("/payment") == (0 if landed else 30)
    world.pull()
    assert {p.verified for p in world.pushes()} == {"ok"} and world.reviews() == []


def test_a_refused_item_of_a_batch_is_dead_and_the_others_land(world: World) -> None:
    world.pay(0, "10.00")
    world.pay(1, "10.00")
    world.qbo.add_payment(world.invoices[1]["Id"], "95.00")  # paid by hand meanwhile
    result = world.push()
    assert (result.counts["done"], result.counts["dead"]) == (1, 1)
    assert len(world.landed(0)) == 1 and len(world.landed(1)) == 1  # only the one by hand
    assert [r.kind for r in world.reviews()] == ["payment_push_dead"]
