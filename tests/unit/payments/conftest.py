"""Payments fixtures: a store seeded with invoices, a fake clock, a fake target connector."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import and_, update
from sqlalchemy.engine import Engine

from syncd.connector import PushAccounts
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
