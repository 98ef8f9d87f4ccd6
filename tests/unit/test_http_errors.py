"""The error table, pinned: (method, status, body, headers) -> the class a connector sees."""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses
from structlog.testing import capture_logs

from syncd.errors import (
    AuthError,
    ConnectorError,
    FatalError,
    RateLimited,
    RetriableError,
    SkippableError,
    UncertainWrite,
)
from syncd.http import (
    DEFAULT_STATUS_MAP,
    HttpClient,
    classify_status,
    json_or_none,
    parse_retry_after,
)
from syncd.redact import Redactor
from syncd.testing import FakeClock

BASE = "https://api.vendor.test/v1"
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)  # FakeClock's default start


def http_date(seconds_from_now: float) -> str:
    return email.utils.format_datetime(NOW + dt.timedelta(seconds=seconds_from_now), usegmt=True)


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def client(**overrides: Any) -> HttpClient:
    """A client that never retries, so each case sees exactly one response."""
    options: dict[str, Any] = {
        "connection": "acme-books",
        "vendor": "vendorx",
        "clock": FakeClock(NOW),
        "redactor": Redactor(),
        "max_attempts": 1,
    }
    options.update(overrides)
    return HttpClient(BASE, **options)


CASES = [
    # method, status, body, headers, expected class, expected retry_after
    ("GET", 400, {"message": "bad query"}, {}, FatalError, None),
    ("GET", 401, {"error": "invalid_token"}, {}, AuthError, None),
    ("GET", 403, {"message": "missing scope"}, {}, AuthError, None),
    ("GET", 404, {"message": "no such company"}, {}, FatalError, None),
    ("GET", 408, "", {}, RetriableError, None),
    ("GET", 409, {"message": "conflict"}, {}, FatalError, None),
    ("GET", 410, "", {}, FatalError, None),  # other 4xx
    ("GET", 418, "", {}, FatalError, None),
    ("GET", 422, {"message": "amount must be positive"}, {}, SkippableError, None),
    ("GET", 429, "", {}, RateLimited, None),
    ("GET", 429, "", {"Retry-After": "7"}, RateLimited, 7.0),
    ("GET", 429, "", {"Retry-After": "1.5"}, RateLimited, 1.5),
    ("GET", 429, "", {"Retry-After": http_date(30)}, RateLimited, 30.0),
    ("GET", 429, "", {"Retry-After": http_date(-30)}, RateLimited, 0.0),
    ("GET", 429, "", {"Retry-After": "soon"}, RateLimited, None),
    ("GET", 500, "<html>oops</html>", {}, RetriableError, None),
    ("GET", 502, "", {}, RetriableError, None),
    ("GET", 503, "", {}, RetriableError, None),
    ("GET", 503, "", {"Retry-After": "5"}, RateLimited, 5.0),  # "come back in 5s"
    ("GET", 504, "", {}, RetriableError, None),
    ("GET", 507, "", {}, RetriableError, None),  # other 5xx
    ("HEAD", 503, "", {}, RetriableError, None),
    # writes: a refusal is a refusal, a 5xx is ambiguous
    ("POST", 400, {"message": "bad"}, {}, FatalError, None),
    ("POST", 401, "", {}, AuthError, None),
    ("POST", 409, "", {}, FatalError, None),
    ("POST", 422, {"message": "invoice closed"}, {}, SkippableError, None),
    ("POST", 429, "", {"Retry-After": "3"}, RateLimited, 3.0),
    ("POST", 500, "", {}, UncertainWrite, None),
    ("POST", 502, "", {}, UncertainWrite, None),
    ("POST", 503, "", {"Retry-After": "5"}, UncertainWrite, None),
    ("PUT", 504, "", {}, UncertainWrite, None),
    ("PATCH", 500, "", {}, UncertainWrite, None),
    ("DELETE", 404, "", {}, FatalError, None),
]


@pytest.mark.parametrize(
    ("method", "status", "body", "headers", "expected", "retry_after"),
    CASES,
    ids=[f"{m}-{s}-{'+'.join(h) or 'plain'}-{i}" for i, (m, s, _b, h, *_r) in enumerate(CASES)],
)
def test_status_table(
    rsps: responses.RequestsMock,
    method: str,
    status: int,
    body: Any,
    headers: dict[str, str],
    expected: type[ConnectorError],
    retry_after: float | None,
) -> None:
    kwargs: dict[str, Any] = {"json": body} if isinstance(body, dict) else {"body": body}
    rsps.add(method, f"{BASE}/things", status=status, headers=headers, **kwargs)

    with pytest.raises(ConnectorError) as raised:
        client().request(method, "/things")

    assert raised.type is expected
    assert raised.value.status == status
    if expected is RateLimited:
        assert isinstance(raised.value, RateLimited)
        assert raised.value.retry_after == retry_after


def test_message_names_method_path_status_and_vendor_message(
    rsps: responses.RequestsMock,
) -> None:
    rsps.add("GET", f"{BASE}/customers", status=400, json={"message": "unknown field  Foo"})
    with pytest.raises(FatalError) as raised:
        client().request("GET", "/customers", params={"where": "Name = 'x'"})
    assert str(raised.value) == "vendorx GET /v1/customers -> 400: unknown field Foo"


def test_long_vendor_message_is_cut(rsps: responses.RequestsMock) -> None:
    rsps.add("GET", f"{BASE}/x", status=500, body="e" * 5000)
    with pytest.raises(RetriableError) as raised:
        client().request("GET", "/x")
    assert len(str(raised.value)) < 300


# -- vendor codes, data first ------------------------------------------------------------------


def qbo_code(response: requests.Response) -> str | None:
    """QuickBooks Online: {"Fault": {"Error": [{"code": "5010", "Message": ...}]}}."""
    body = json_or_none(response)
    return str(body["Fault"]["Error"][0]["code"]) if body else None


def qbo_message(response: requests.Response) -> str | None:
    body = json_or_none(response)
    return str(body["Fault"]["Error"][0]["Message"]) if body else None


QBO = {
    "vendor_codes": {"5010": SkippableError, "3200": AuthError},
    "code_of": qbo_code,
    "message_of": qbo_message,
}


def fault(code: str, message: str) -> dict[str, Any]:
    return {"Fault": {"Error": [{"code": code, "Message": message}], "type": "ValidationFault"}}


@pytest.mark.parametrize(
    ("method", "status", "body", "expected", "code"),
    [
        ("POST", 400, fault("5010", "Stale Object Error"), SkippableError, "5010"),
        ("GET", 401, fault("3200", "AuthenticationFailed"), AuthError, "3200"),
        ("POST", 400, fault("6000", "Business Validation Error"), FatalError, "6000"),
        ("POST", 500, fault("5010", "Stale Object Error"), SkippableError, "5010"),
    ],
)
def test_vendor_codes_win_over_status(
    rsps: responses.RequestsMock,
    method: str,
    status: int,
    body: dict[str, Any],
    expected: type[ConnectorError],
    code: str,
) -> None:
    rsps.add(method, f"{BASE}/payment", status=status, json=body)
    with pytest.raises(ConnectorError) as raised:
        client(**QBO).request(method, "/payment")
    assert raised.type is expected
    assert raised.value.code == code
    assert f"[{code}]" in str(raised.value)


def test_vendor_code_mapped_to_rate_limited_is_trusted_on_a_write(
    rsps: responses.RequestsMock,
) -> None:
    """Autotask answers a thread-limit breach with a 500 and a message: not an uncertain write."""

    def autotask_code(response: requests.Response) -> str | None:
        body = json_or_none(response) or {}
        errors = body.get("errors") or [""]
        return "thread_limit" if "thread threshold" in errors[0] else None

    rsps.add(
        "POST",
        f"{BASE}/Tickets",
        status=500,
        json={"errors": ["API thread threshold exceeded for this integration"]},
    )
    with pytest.raises(RateLimited) as raised:
        client(vendor_codes={"thread_limit": RateLimited}, code_of=autotask_code).request(
            "POST", "/Tickets", json={"title": "x"}
        )
    assert raised.value.code == "thread_limit"
    assert raised.value.status == 500


def test_code_of_that_trips_on_an_odd_body_falls_back_to_the_status(
    rsps: responses.RequestsMock,
) -> None:
    rsps.add("GET", f"{BASE}/payment", status=502, json={"unexpected": True})
    with capture_logs() as logs, pytest.raises(RetriableError) as raised:
        client(**QBO).request("GET", "/payment")
    assert raised.value.code is None
    assert str(raised.value) == "vendorx GET /v1/payment -> 502"
    hooks = [e["hook"] for e in logs if e["event"] == "http_error_hook_failed"]
    assert hooks == ["qbo_code", "qbo_message"]


def test_status_map_overrides_only_its_entries(rsps: responses.RequestsMock) -> None:
    rsps.add("GET", f"{BASE}/a", status=404)
    rsps.add("GET", f"{BASE}/b", status=409)
    c = client(status_map={404: SkippableError})
    with pytest.raises(SkippableError):
        c.request("GET", "/a")
    with pytest.raises(FatalError):
        c.request("GET", "/b")
    assert DEFAULT_STATUS_MAP[404] is FatalError  # the default table is untouched


@pytest.mark.parametrize(
    ("status", "expected"),
    [(400, FatalError), (451, FatalError), (500, RetriableError), (599, RetriableError)],
)
def test_classify_status_by_family(status: int, expected: type[ConnectorError]) -> None:
    assert classify_status(status) is expected


def test_default_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        DEFAULT_STATUS_MAP[404] = SkippableError  # type: ignore[index]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("0", 0.0),
        ("120", 120.0),
        (" 3 ", 3.0),
        ("-4", 0.0),
        ("nan", None),
        ("inf", None),
        ("Thu, 01 Jan 2026 00:01:00 GMT", 60.0),
        ("Thu, 01 Jan 2026 00:01:00 -0000", 60.0),
        ("Wed, 31 Dec 2025 23:00:00 GMT", 0.0),
        ("tomorrow-ish", None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected
