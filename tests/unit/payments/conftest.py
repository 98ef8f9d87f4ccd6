"""Payments fixtures: a store seeded with invoices, a fake clock, fake target connectors (one
that writes payments; ``FakeBooks`` also books deposits; ``FakeBatches`` also takes batches)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import and_, update
from sqlalchemy.engine import Engine

from syncd.connector import DepositLine, PaymentPush, PushAccounts, PushReceipt
from syncd.errors import ConnectorError, UncertainWrite
from syncd.payments.outbox import Policy
from syncd.payments.pusher import Pusher
from syncd.store.tables import invoices
from syncd.testing import FakeClock, FakePaymentsConnector, store_invoice

T0 = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)
POLICY = Policy(
    max_attempts=3,
    lease=dt.timedelta(minutes=5),
    retry_base=dt.timedelta(seconds=30),
    retry_cap=dt.timedelta(hours=1),
    settle_after=dt.timedelta(seconds=60),
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


def _set_invoice(engine: Engine, connection: str, external_id: str, **values: Any) -> None:
    """Change a stored invoice as the next pull would."""
    with engine.begin() as conn:
        conn.execute(
            update(invoices)
            .where(and_(invoices.c.connection == connection, invoices.c.external_id == external_id))
            .values(**values)
        )


@pytest.fixture
def add_invoice(engine: Engine) -> Callable[..., None]:
    """``add_invoice(connection, external_id, number, total="100.00", balance=None, …)``."""
    return lambda *args, **kwargs: store_invoice(engine, *args, **kwargs)


@pytest.fixture
def set_invoice(engine: Engine) -> Callable[..., None]:
    """``set_invoice(connection, external_id, **columns)``: what the next pull would write."""
    return lambda *args, **kwargs: _set_invoice(engine, *args, **kwargs)


@pytest.fixture
def target() -> FakePaymentsConnector:
    return FakePaymentsConnector()


@pytest.fixture
def make_pusher(
    engine: Engine, clock: FakeClock, target: FakePaymentsConnector
) -> Callable[..., Pusher]:
    """A pusher over ``{"qb": target}`` (or the given connectors), on the fake clock."""

    def make(connectors: dict[str, Any] | None = None, **kwargs: Any) -> Pusher:
        chosen = connectors or {"qb": target}
        return Pusher(
            engine,
            targets={name: PushAccounts() for name in chosen},
            connector_for=lambda name: chosen[name],
            clock=clock,
            policy=kwargs.pop("policy", POLICY),
            **kwargs,
        )

    return make


class FakeBooks(FakePaymentsConnector):
    """A target that also books deposits (``BooksDeposits``), in memory.

    ``deposits`` maps the vendor id to ``{"marker", "lines", "fee", "fee_account", "key"}``; a
    repeated ``key`` answers the deposit it made (the vendor's idempotency). ``deposit_script``
    programs ``book_deposit`` like ``script`` does ``push_payment``; ``calls`` gets
    ``("deposit", marker)`` and ``("find_deposit", marker)``.
    """

    def __init__(self, *, enabled: bool = True) -> None:
        super().__init__()
        self.enabled = enabled
        self.deposits: dict[str, dict[str, Any]] = {}
        self.deposit_script: list[str | Exception] = []

    def deposits_enabled(self) -> bool:
        return self.enabled

    def book_deposit(
        self,
        key: str,
        marker: str,
        lines: Sequence[DepositLine],
        fee: Decimal,
        *,
        fee_account: str | None,
        deposited_at: dt.datetime,
        memo: str | None = None,
    ) -> PushReceipt:
        self.calls.append(("deposit", marker))
        step = self.deposit_script.pop(0) if self.deposit_script else "ok"
        if isinstance(step, Exception):
            raise step
        if step == "drop":
            raise UncertainWrite("fake: connection dropped before the vendor read it")
        for vendor_id, made in self.deposits.items():
            if made["key"] == key:
                return PushReceipt(vendor_id)
        self._next_id += 1
        vendor_id = f"D{self._next_id}"
        self.deposits[vendor_id] = {
            "key": key,
            "marker": marker,
            "lines": list(lines),
            "fee": fee,
            "fee_account": fee_account,
            "memo": memo,
        }
        if step == "lost":
            raise UncertainWrite("fake: the answer was lost after the vendor wrote it")
        return PushReceipt(vendor_id)

    def find_deposit(self, marker: str, deposited_at: dt.datetime) -> PushReceipt | None:
        self.calls.append(("find_deposit", marker))
        for vendor_id, made in self.deposits.items():
            if made["marker"] == marker:
                return PushReceipt(vendor_id)
        return None

    def deposited(self, payment_vendor_id: str) -> int:
        """In how many deposits a vendor payment is: exactly-once means 0 or 1."""
        return sum(
            1
            for made in self.deposits.values()
            for line in made["lines"]
            if line.payment_id == payment_vendor_id
        )


class FakeBatches(FakeBooks):
    """A target that also takes batches (``PushesInBatches``). ``batch_script`` entries:
    ``"ok"``, ``"lost"`` (every item lands, the answer is lost), ``"drop"`` (nothing lands), or a
    list with one entry per push (``"ok"`` or an error for that push alone)."""

    def __init__(self, *, enabled: bool = True) -> None:
        super().__init__(enabled=enabled)
        self.batches: list[list[str]] = []  # the markers of each batch sent
        self.batch_script: list[Any] = []

    def push_payments(self, pushes: Sequence[PaymentPush]) -> list[PushReceipt | ConnectorError]:
        self.batches.append([p.marker for p in pushes])
        step = self.batch_script.pop(0) if self.batch_script else "ok"
        if step == "drop":
            raise UncertainWrite("fake: the batch request dropped before the vendor read it")
        per_item = step if isinstance(step, list) else ["ok"] * len(pushes)
        results: list[PushReceipt | ConnectorError] = []
        for push, item in zip(pushes, per_item, strict=True):
            if isinstance(item, ConnectorError):
                results.append(item)
                continue
            self._next_id += 1
            vendor_id = str(self._next_id)
            self.payments[vendor_id] = {
                "marker": push.marker,
                "invoice": push.invoice_external_id,
                "amount": push.amount,
            }
            results.append(PushReceipt(vendor_id))
        if step == "lost":
            raise UncertainWrite("fake: every item landed, then the answer was lost")
        return results
