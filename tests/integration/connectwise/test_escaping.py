"""Any customer name survives a ConnectWise conditions query: escaped by syncd.query, parsed by
the emulator's implementation of the documented grammar, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.connectwise.sandbox import ConnectWiseSandbox
from syncd.query import CW, REFUSED_CHARACTERS, cw_condition

REFUSED = REFUSED_CHARACTERS[CW]
names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters=list(REFUSED)),
    min_size=1,
    max_size=40,
).filter(lambda s: s.strip() == s and s.strip())


@pytest.fixture(scope="module")
def cw() -> Iterator[tuple[ConnectWiseSandbox, requests.Session]]:
    with ConnectWiseSandbox(seed=3, companies=3, invoices=1) as sandbox, requests.Session() as s:
        s.headers.update(sandbox.headers())
        yield sandbox, s


def round_trip(cw: tuple[ConnectWiseSandbox, requests.Session], name: str) -> None:
    sandbox, session = cw
    company = sandbox.add_company(name)
    answer = session.get(
        f"{sandbox.api_url}/company/companies",
        params={"conditions": cw_condition("name", "=", name), "fields": "id,name"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    found = [row for row in answer.json() if row["id"] == company["id"]]
    assert found == [{"id": company["id"], "name": name}]


@pytest.mark.parametrize(
    "name", ['O\'Brien & Sons "Best" \\ Co', "100% Café", 'a\\\\"b', "Smith & Wesson's", "🚀 Ltd"]
)
def test_awkward_names(cw: tuple[ConnectWiseSandbox, requests.Session], name: str) -> None:
    round_trip(cw, name)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=names)
def test_any_name_round_trips(cw: tuple[ConnectWiseSandbox, requests.Session], name: str) -> None:
    round_trip(cw, name)
