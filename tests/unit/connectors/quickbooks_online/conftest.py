"""Fixtures for the QuickBooks Online unit tests: strict ``responses``, a fake clock, and a
connector with a real token vault in a temporary store (its token endpoint mocked)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from connectors.quickbooks_online import QuickBooksOnlineConnector, QuickBooksOnlineSettings
from connectors.quickbooks_online.auth import DEFAULT_TOKEN_URL
from syncd.connector import ConnectorContext
from syncd.ratelimit import REGISTRY
from syncd.store import open_store
from syncd.testing import FakeClock

ROOT = "https://sandbox-quickbooks.api.intuit.com"
REALM = "9130"
API = f"{ROOT}/v3/company/{REALM}"

Make = Callable[..., QuickBooksOnlineConnector]


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    REGISTRY.clear()  # a limiter keeps the clock it was made with; each test has its own
    yield
    REGISTRY.clear()


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def token_answer(access: str = "access-1", refresh: str = "refresh-2") -> dict[str, Any]:
    return {
        "access_token": access,
        "refresh_token": refresh,
        "expires_in": 3600,
        "x_refresh_token_expires_in": 8726400,
        "token_type": "bearer",
    }


@pytest.fixture
def make(tmp_path: Path, clock: FakeClock, rsps: responses.RequestsMock) -> Iterator[Make]:
    """``make(**settings)``: a connector whose first API call refreshes the seed token once
    (at Intuit's default token endpoint, mocked)."""
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    made: list[QuickBooksOnlineConnector] = []
    rsps.add("POST", DEFAULT_TOKEN_URL, json=token_answer())

    def build(**over: Any) -> QuickBooksOnlineConnector:
        values: dict[str, Any] = {
            "realm_id": REALM,
            "client_id": "client-id",
            "client_secret": "client-secret-value",
            "refresh_token": "seed-refresh-token",
            "environment": "sandbox",
        }
        values.update(over)
        context = ConnectorContext(
            connection="qbo",
            clock=clock,
            extras={"engine": engine, "store_url": str(engine.url)},
        )
        connector = QuickBooksOnlineConnector(QuickBooksOnlineSettings(**values), context)
        made.append(connector)
        return connector

    yield build
    for connector in made:
        connector.close()
    engine.dispose()
    if not any(call.request.url == DEFAULT_TOKEN_URL for call in rsps.calls):
        rsps.remove("POST", DEFAULT_TOKEN_URL)  # the test never reached the API: no token needed
