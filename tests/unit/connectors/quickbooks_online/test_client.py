"""The QuickBooks Online client against strict ``responses`` mocks: what it sends, what it makes of
the answers, and the error table, pinned."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from connectors.quickbooks_online.client import (
    MAX_BATCH_REQUEST_ID,
    MAX_REQUEST_ID,
    QuickBooksClient,
    request_id,
)
from connectors.quickbooks_online.errors import THROTTLE_WAIT, ThrottleExceeded, item_error
from syncd.errors import (
    AuthError,
    ConnectorError,
    FatalError,
    RateLimited,
    RetriableError,
    SkippableError,
    UncertainWrite,
)
from syncd.query import qbo_select
from syncd.redact import Redactor
from syncd.testing import FakeClock

ROOT = "https://sandbox-quickbooks.api.intuit.com"
REALM = "9130"
API = f"{ROOT}/v3/company/{REALM}"
THROTTLE_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" '
    'time="2026-01-01T00:00:00.000-08:00">'
    '<Fault type="SERVICE"><Error code="3001">'
    "<Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>"
    "<Detail>The request limit was reached.  Try again later</Detail>"
    "</Error></Fault></IntuitResponse>"
)


def fault(code: str, message: str = "Validation Exception", kind: str = "ValidationFault") -> Any:
    return {
        "Fault": {
            "Error": [{"Message": message, "Detail": f"detail {code}", "code": code}],
            "type": kind,
        },
        "time": "2026-01-01T00:00:00.000-08:00",
    }


def gateway_fault(status: int, code: str) -> Any:
    """The lower-case envelope of Intuit's gateway (python-quickbooks#250)."""
    return {
        "warnings": None,
        "fault": {
            "error": [
                {
                    "message": f"message=X; errorCode=00{code}; statusCode={status}",
                    "detail": "Token expired",
                    "code": code,
                }
            ],
            "type": "AUTHENTICATION",
        },
        "time": 1633520295688,
    }


class FakeTokens:
    """A stand-in for the vault: hands out ``t1``, then ``t2`` once ``t1`` is rejected."""

    def __init__(self, tokens: tuple[str, ...] = ("t1", "t2", "t3")) -> None:
        self.tokens = list(tokens)
        self.rejected: list[str | None] = []

    def access_token(self, *, rejected: str | None = None) -> str:
        if rejected is not None:
            self.rejected.append(rejected)
            self.tokens.remove(rejected)
        return self.tokens[0]


def client(clock: FakeClock, tokens: FakeTokens | None = None, **options: Any) -> QuickBooksClient:
    values: dict[str, Any] = {"connection": "qbo", "clock": clock, "redactor": Redactor()}
    values.update(options)
    return QuickBooksClient(ROOT, REALM, tokens or FakeTokens(), **values)


def params(request: requests.PreparedRequest) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(request.url or "").query).items()}


# -- what goes on the wire ------------------------------------------------------------------------


def test_query_is_a_get_with_minorversion_bearer_and_escaped_literals(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.add("GET", f"{API}/query", json={"QueryResponse": {"Customer": [{"Id": "1"}]}})
    statement = qbo_select("Customer", [("DisplayName", "=", "O'Brien \\ Sons")])

    rows = client(clock).query_rows("Customer", statement)

    request = rsps.calls[0].request
    assert rows == [{"Id": "1"}]
    assert params(request) == {
        "query": "SELECT * FROM Customer WHERE DisplayName = 'O\\'Brien \\\\ Sons'",
        "minorversion": "75",
    }
    assert request.headers["Authorization"] == "Bearer t1"
    assert request.headers["Accept"] == "application/json"


def test_an_empty_query_answer_has_no_entity_key(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.add("GET", f"{API}/query", json={"QueryResponse": {}, "time": "x"})
    assert client(clock).query_rows("Invoice", "SELECT * FROM Invoice") == []


def test_minorversion_is_configurable(rsps: responses.RequestsMock, clock: FakeClock) -> None:
    rsps.add("GET", f"{API}/query", json={"QueryResponse": {}})
    client(clock, minorversion=80).query("SELECT * FROM Invoice")
    assert params(rsps.calls[0].request)["minorversion"] == "80"


def test_create_sends_requestid_and_json(rsps: responses.RequestsMock, clock: FakeClock) -> None:
    rsps.add("POST", f"{API}/payment", json={"Payment": {"Id": "77", "TotalAmt": 5}})
    created = client(clock).create("Payment", {"TotalAmt": 5}, request_id="key-1")
    request = rsps.calls[0].request
    assert created["Id"] == "77"
    assert params(request) == {"requestid": "key-1", "minorversion": "75"}
    assert json.loads(request.body or b"") == {"TotalAmt": 5}


def test_a_create_whose_answer_is_lost_is_resent_with_the_same_requestid(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.add("POST", f"{API}/payment", body=requests.ConnectionError("reset"))
    rsps.add("POST", f"{API}/payment", json={"Payment": {"Id": "77"}})
    assert client(clock).create("Payment", {}, request_id="key-1")["Id"] == "77"
    assert [params(c.request)["requestid"] for c in rsps.calls] == ["key-1", "key-1"]


def test_cdc_asks_since_in_utc_and_collects_tombstones(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    body = {
        "CDCResponse": [
            {
                "QueryResponse": [
                    {"Invoice": [{"Id": "5"}, {"Id": "6", "status": "Deleted"}], "maxResults": 2}
                ]
            }
        ]
    }
    rsps.add("GET", f"{API}/cdc", json=body)
    since = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
    found = client(clock).changed_since(["Invoice"], since)
    assert found == {"Invoice": [{"Id": "5"}, {"Id": "6", "status": "Deleted"}]}
    assert params(rsps.calls[0].request) == {
        "entities": "Invoice",
        "changedSince": "2026-01-02T11:04:05+00:00",
        "minorversion": "75",
    }


# -- tokens ---------------------------------------------------------------------------------------


def test_a_401_refreshes_once_and_retries(rsps: responses.RequestsMock, clock: FakeClock) -> None:
    tokens = FakeTokens()
    rsps.add("GET", f"{API}/query", status=401, json=gateway_fault(401, "3200"))
    rsps.add("GET", f"{API}/query", json={"QueryResponse": {}})
    client(clock, tokens).query("SELECT * FROM Invoice")
    assert tokens.rejected == ["t1"]
    assert [c.request.headers["Authorization"] for c in rsps.calls] == ["Bearer t1", "Bearer t2"]


def test_a_second_401_is_an_auth_error_naming_the_fix(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    for _ in range(2):
        rsps.add("GET", f"{API}/query", status=401, json=gateway_fault(401, "3200"))
    with pytest.raises(AuthError, match="syncd auth qbo") as caught:
        client(clock).query("SELECT * FROM Invoice")
    assert caught.value.code == "3200"


def test_a_403_wrong_realm_is_not_retried(rsps: responses.RequestsMock, clock: FakeClock) -> None:
    tokens = FakeTokens()
    rsps.add("GET", f"{API}/query", status=403, json=gateway_fault(403, "3100"))
    with pytest.raises(AuthError):
        client(clock, tokens).query("SELECT * FROM Invoice")
    assert tokens.rejected == []


# -- the error table ------------------------------------------------------------------------------

READ, WRITE = "GET", "POST"


@pytest.mark.parametrize(
    ("method", "status", "body", "expected"),
    [
        # validation faults: our query's bug on a read, a refused record on a write
        *[(READ, 400, fault(code), FatalError) for code in ("2020", "4000", "6000")],
        *[
            (WRITE, 400, fault(code), SkippableError)
            for code in ("2020", "2170", "2500", "6000", "6140", "6240", "6540", "610")
        ],
        (WRITE, 400, fault("5010", "Stale Object Error"), RetriableError),
        (WRITE, 400, fault("9999"), FatalError),  # unknown code: stop and tell, never guess
        (READ, 401, gateway_fault(401, "3200"), AuthError),
        (READ, 403, gateway_fault(403, "3100"), AuthError),
        (READ, 429, THROTTLE_XML, ThrottleExceeded),
        (WRITE, 429, THROTTLE_XML, ThrottleExceeded),
        (READ, 500, fault("10000", kind="SystemFault"), RetriableError),
        (WRITE, 503, "Service Unavailable", UncertainWrite),
    ],
)
def test_error_table(
    rsps: responses.RequestsMock,
    clock: FakeClock,
    method: str,
    status: int,
    body: Any,
    expected: type[ConnectorError],
) -> None:
    kwargs: dict[str, Any] = {"body": body} if isinstance(body, str) else {"json": body}
    path = f"{API}/query" if method == READ else f"{API}/payment"
    for _ in range(2 if status == 401 else 1):
        rsps.add(method, path, status=status, **kwargs)
    qbo = client(clock, max_attempts=1)
    call = (
        (lambda: qbo.query("SELECT * FROM Invoice"))
        if method == READ
        else (lambda: qbo.create("Payment", {}, request_id="k"))
    )
    with pytest.raises(ConnectorError) as caught:
        call()
    assert type(caught.value) is expected


def test_throttle_xml_parses_and_waits_sixty_seconds(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.add("GET", f"{API}/query", status=429, body=THROTTLE_XML, content_type="application/xml")
    rsps.add("GET", f"{API}/query", json={"QueryResponse": {}})
    client(clock).query("SELECT * FROM Invoice")
    assert clock.slept == [THROTTLE_WAIT]


def test_throttle_error_carries_code_and_message(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.add("GET", f"{API}/query", status=429, body=THROTTLE_XML, content_type="application/xml")
    with pytest.raises(RateLimited) as caught:
        client(clock, max_attempts=1).query("SELECT * FROM Invoice")
    assert caught.value.code == "3001"
    assert caught.value.retry_after == THROTTLE_WAIT
    assert "ThrottleExceeded" in str(caught.value)
    assert "request limit was reached" in str(caught.value)


def test_a_retry_after_header_wins_over_the_default_wait(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.add("GET", f"{API}/query", status=429, body=THROTTLE_XML, headers={"Retry-After": "2"})
    rsps.add("GET", f"{API}/query", json={"QueryResponse": {}})
    client(clock).query("SELECT * FROM Invoice")
    assert clock.slept == [2.0]


def test_a_validation_fault_names_code_message_and_detail(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.add("POST", f"{API}/payment", status=400, json=fault("6240", "Duplicate Name Exists"))
    with pytest.raises(SkippableError) as caught:
        client(clock).create("Payment", {}, request_id="k")
    assert "[6240]" in str(caught.value)
    assert "Duplicate Name Exists: detail 6240" in str(caught.value)


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (fault("6000")["Fault"], SkippableError),
        (fault("5010")["Fault"], RetriableError),
        (fault("3001")["Fault"], ThrottleExceeded),
        (fault("7777")["Fault"], FatalError),
        (fault("10000", kind="SystemFault")["Fault"], UncertainWrite),
        ({"type": "AuthenticationFault", "Error": [{"code": "100"}]}, AuthError),
    ],
)
def test_batch_item_faults_follow_the_same_table(
    item: dict[str, Any], expected: type[ConnectorError]
) -> None:
    assert type(item_error(item, where="item 1")) is expected


# -- request ids ----------------------------------------------------------------------------------


def test_request_ids_are_the_key_when_it_fits_else_a_stable_digest() -> None:
    assert request_id("pay-1") == "pay-1"
    long = "x" * 80
    assert len(request_id(long)) == MAX_REQUEST_ID
    assert request_id(long) == request_id(long)
    assert request_id(long) != request_id(long + "y")
    assert len(request_id(long, limit=MAX_BATCH_REQUEST_ID)) == MAX_BATCH_REQUEST_ID
    assert request_id("é") != "é"  # not ASCII: digested


def test_a_too_long_request_id_is_refused_before_sending(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="requestid"):
        client(clock).create("Payment", {}, request_id="x" * 51)


def test_bearer_tokens_never_reach_error_messages(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    redactor = Redactor(["tok-secret-1"])  # the vault registers every token it hands out
    rsps.add("GET", f"{API}/query", status=400, json=fault("4000", "tok-secret-1 echoed"))
    qbo = client(clock, FakeTokens(("tok-secret-1",)), redactor=redactor)
    with pytest.raises(FatalError) as caught:
        qbo.query("SELECT * FROM Invoice")
    assert "tok-secret-1" not in str(caught.value)
