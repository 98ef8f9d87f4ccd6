"""Any customer name survives a QuickBooks query: escaped by syncd.query, parsed by the emulator's
implementation of Intuit's query language, over real HTTP."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.quickbooks_online.sandbox import QuickBooksSandbox
from syncd.query import QBO, REFUSED_CHARACTERS, qbo_select

REFUSED = REFUSED_CHARACTERS[QBO]
names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters=list(REFUSED)),
    min_size=1,
    max_size=40,
).filter(lambda s: s.strip() == s)
_serial = itertools.count()


@pytest.fixture(scope="module")
def qbo() -> Iterator[tuple[QuickBooksSandbox, requests.Session]]:
    with (
        QuickBooksSandbox(seed=3, customers=2, invoices=1, throttle=False) as sandbox,
        requests.Session() as session,
    ):
        session.headers.update(sandbox.headers())
        yield sandbox, session


def round_trip(qbo: tuple[QuickBooksSandbox, requests.Session], name: str) -> None:
    sandbox, session = qbo
    # DisplayName is unique per company: a serial keeps generated names apart.
    display = f"{next(_serial)} {name}"
    created = sandbox.add_customer(display)
    statement = qbo_select("Customer", where=[("DisplayName", "=", display)])
    answer = session.get(
        sandbox.company_url + "/query",
        params={"query": statement, "minorversion": "75"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    found = answer.json()["QueryResponse"].get("Customer", [])
    assert [(c["Id"], c["DisplayName"]) for c in found] == [(created["Id"], display)]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=names)
def test_any_name_round_trips(qbo: tuple[QuickBooksSandbox, requests.Session], name: str) -> None:
    round_trip(qbo, name)


@pytest.mark.parametrize(
    "name", ["O'Brien & Sons", 'The "Quoted" Co', "Back\\Slash", "100% Café", "it\\'s", "🚀 Ltd"]
)
def test_awkward_names(qbo: tuple[QuickBooksSandbox, requests.Session], name: str) -> None:
    round_trip(qbo, name)
