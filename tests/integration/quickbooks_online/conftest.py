"""Fixtures for the QuickBooks Online emulator tests: a seeded sandbox and a plain HTTP client."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

from connectors.quickbooks_online.sandbox import QuickBooksSandbox
from syncd.testing import FakeClock

T0 = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


class Api:
    """A thin client: every call sends ``minorversion=75`` and returns the raw response."""

    def __init__(self, qbo: QuickBooksSandbox, session: requests.Session) -> None:
        self.qbo = qbo
        self.session = session

    def get(self, path: str, **params: Any) -> requests.Response:
        params.setdefault("minorversion", "75")
        return self.session.get(self.qbo.company_url + path, params=params, timeout=10)

    def post(self, path: str, body: Any, **params: Any) -> requests.Response:
        params.setdefault("minorversion", "75")
        return self.session.post(self.qbo.company_url + path, json=body, params=params, timeout=10)

    def query(self, statement: str) -> requests.Response:
        return self.get("/query", query=statement)

    def rows(self, statement: str, entity: str) -> list[dict[str, Any]]:
        r = self.query(statement)
        assert r.status_code == 200, r.text
        result: list[dict[str, Any]] = r.json()["QueryResponse"].get(entity, [])
        return result


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def qbo(clock: FakeClock) -> Iterator[QuickBooksSandbox]:
    with QuickBooksSandbox(seed=3, clock=clock, throttle=False) as sandbox:
        yield sandbox
        assert sandbox.server.errors == []


@pytest.fixture
def api(qbo: QuickBooksSandbox) -> Iterator[Api]:
    with requests.Session() as session:
        session.headers.update(qbo.headers())
        yield Api(qbo, session)


@pytest.fixture
def open_invoices(qbo: QuickBooksSandbox) -> list[dict[str, Any]]:
    """Unpaid, unvoided invoices of active customers (as seeded), by Id."""
    active = {c["Id"] for c in qbo.all_customers() if c["Active"]}
    voided = set(qbo.voided_ids("Invoice"))
    found = [
        inv
        for inv in qbo.all_invoices()
        if inv["Id"] not in voided
        and inv["CustomerRef"]["value"] in active
        and not inv.get("LinkedTxn")
        and Decimal(str(inv["Balance"])) >= 10
    ]
    assert len(found) >= 5, "the seed should hold open invoices"
    return found
