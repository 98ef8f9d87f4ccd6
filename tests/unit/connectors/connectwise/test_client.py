"""The ConnectWise client against strict ``responses`` mocks: what it sends, what it makes of the
answers, and the error table, pinned."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from pydantic import ValidationError

from connectors.connectwise.client import (
    API_PATH,
    MAX_CONDITIONS_CHARS,
    ConnectWiseClient,
    Credentials,
    email_of,
    id_chunks,
    json_amount,
    next_link,
    site_root,
)
from connectors.connectwise.connector import ConnectWiseConnector, ConnectWiseSettings
from syncd.connector import ConnectorContext, PaymentPush
from syncd.errors import (
    AuthError,
    ConnectorError,
    FatalError,
    RateLimited,
    RetriableError,
    SkippableError,
    UncertainWrite,
)
from syncd.model import Customer, Invoice, InvoiceStatus, PaymentMethod
from syncd.query import cw_condition
from syncd.redact import Redactor
from syncd.testing import FakeClock

ROOT = "https://api-na.myconnectwise.net"
INFO = f"{ROOT}/login/companyinfo/acme"
API = f"{ROOT}/v2025_1/{API_PATH}"
CREDS = Credentials("acme", "pub1234", "priv-secret-9", "6d0c7c3e-client")


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def client(clock: FakeClock, **options: Any) -> ConnectWiseClient:
    settings: dict[str, Any] = {"connection": "cw", "clock": clock, "redactor": Redactor()}
    settings.update(options)
    return ConnectWiseClient(ROOT, CREDS, **settings)


def discovery(rsps: responses.RequestsMock, codebase: str = "v2025_1/") -> None:
    rsps.add("GET", INFO, json={"Codebase": codebase, "CompanyID": "acme"})


def query_of(request: requests.PreparedRequest) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(request.url or "").query).items()}


# -- what goes on the wire ------------------------------------------------------------------------


def test_headers_carry_basic_auth_client_id_and_version(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    discovery(rsps)
    rsps.add("GET", f"{API}system/info", json={"version": "v2025.1"})

    client(clock, api_version="2025.1").system_info()

    login, api = rsps.calls[0].request, rsps.calls[1].request
    expected = base64.b64encode(b"acme+pub1234:priv-secret-9").decode()
    assert api.headers["Authorization"] == f"Basic {expected}"
    assert api.headers["clientId"] == "6d0c7c3e-client"
    assert api.headers["Accept"] == "application/vnd.connectwise.com+json; version=2025.1"
    # companyinfo is unauthenticated: the keys are not sent where they are not needed
    assert "Authorization" not in login.headers
    assert "clientId" not in login.headers


def test_without_a_version_accept_is_plain_json(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    discovery(rsps)
    rsps.add("GET", f"{API}system/info", json={})
    client(clock).system_info()
    assert rsps.calls[1].request.headers["Accept"] == "application/json"


def test_secrets_are_registered_with_the_redactor(clock: FakeClock) -> None:
    redactor = Redactor()
    client(clock, redactor=redactor)
    header = "Basic " + base64.b64encode(b"acme+pub1234:priv-secret-9").decode()
    text = f"key priv-secret-9 header {header}"
    assert "priv-secret-9" not in redactor.redact(text)
    assert header.split()[1] not in redactor.redact(text)


def test_codebase_is_discovered_once_and_used_for_every_call(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    discovery(rsps)
    rsps.add("GET", f"{API}system/info", json={})
    rsps.add("GET", f"{API}system/info", json={})
    cw = client(clock)
    cw.system_info()
    cw.system_info()
    assert cw.codebase == "v2025_1/"
    assert cw.requests_made == 3


def test_a_404_rediscovers_a_moved_codebase_once(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    discovery(rsps, "v2024_2/")
    rsps.add("GET", f"{ROOT}/v2024_2/{API_PATH}system/info", status=404, json={"code": "NotFound"})
    discovery(rsps, "v2025_1")  # no trailing slash: normalised
    rsps.add("GET", f"{API}system/info", json={"version": "new"})

    assert client(clock).system_info() == {"version": "new"}


def test_a_404_on_the_same_codebase_is_fatal(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    discovery(rsps)
    rsps.add("GET", f"{API}system/info", status=404, json={"code": "NotFound"})
    discovery(rsps)
    with pytest.raises(FatalError) as raised:
        client(clock).system_info()
    assert raised.value.status == 404


def test_a_configured_codebase_skips_discovery(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.add("GET", f"{ROOT}/v9_0/{API_PATH}system/info", status=404, json={"code": "NotFound"})
    with pytest.raises(FatalError):
        client(clock, codebase="v9_0").system_info()
    assert len(rsps.calls) == 1


@pytest.mark.parametrize(
    "answer", [{"status": 404, "json": {"code": "NotFound"}}, {"body": "null"}]
)
def test_an_unknown_company_is_named(
    rsps: responses.RequestsMock, clock: FakeClock, answer: dict[str, Any]
) -> None:
    rsps.add("GET", INFO, **answer)
    with pytest.raises(FatalError, match="does not know company_id 'acme'"):
        client(clock).system_info()


# -- listing and paging ---------------------------------------------------------------------------


def test_forward_only_paging_follows_the_link_and_returns_relative_positions(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    name = 'Ma & Pa\'s "Corner" Shop \\ 100%'
    conditions = cw_condition("name", "=", name)
    nxt = f"{API}company/companies?conditions=x&pageSize=2&pageId=7"
    discovery(rsps)
    rsps.add(
        "GET",
        f"{API}company/companies",
        json=[{"id": 5}, {"id": 7}],
        headers={"Link": f'<{nxt}>; rel="next"'},
    )
    rsps.add("GET", f"{API}company/companies", json=[{"id": 9}])

    pages = list(client(clock, page_size=2).list_pages("company/companies", conditions=conditions))

    first, second = rsps.calls[1].request, rsps.calls[2].request
    assert first.headers["pagination-type"] == "forward-only"
    assert query_of(first) == {"pageSize": "2", "conditions": conditions}
    assert conditions == 'name = "Ma & Pa\'s \\"Corner\\" Shop \\\\ 100%"'
    assert second.url == nxt
    assert second.headers["pagination-type"] == "forward-only"
    assert [[r["id"] for r in p.records] for p in pages] == [[5, 7], [9]]
    assert pages[0].next_position == "company/companies?conditions=x&pageSize=2&pageId=7"
    assert pages[1].next_position is None


def test_resume_from_a_position_uses_the_current_codebase(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    discovery(rsps)
    rsps.add("GET", f"{API}finance/invoices", json=[{"id": 8}])
    position = (
        "finance/invoices?conditions=lastUpdated%20%3E%3D%20%5B2026-01-01T00%3A00%3A00Z%5D"
        "&pageSize=1000&pageId=7"
    )

    pages = list(client(clock).list_pages("finance/invoices", position=position))

    request = rsps.calls[1].request
    assert request.url == f"{API}{position}"
    assert query_of(request)["conditions"] == "lastUpdated >= [2026-01-01T00:00:00Z]"
    assert request.headers["pagination-type"] == "forward-only"
    assert pages[0].next_position is None


def test_a_full_first_page_without_link_falls_back_to_navigable_pages(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    discovery(rsps)
    rsps.add("GET", f"{API}finance/invoices", json=[{"id": 1}, {"id": 2}])
    rsps.add("GET", f"{API}finance/invoices", json=[{"id": 3}, {"id": 4}])
    rsps.add("GET", f"{API}finance/invoices", json=[{"id": 5}])

    pages = list(client(clock, page_size=2).list_pages("finance/invoices"))

    assert [len(p.records) for p in pages] == [2, 2, 1]
    assert [query_of(c.request).get("page") for c in rsps.calls[1:]] == [None, "2", "3"]
    assert "pagination-type" not in rsps.calls[2].request.headers
    assert pages[0].next_position == "finance/invoices?pageSize=2&page=2"
    assert pages[-1].next_position is None


def test_navigable_links_are_followed_and_a_linkless_last_page_ends(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    discovery(rsps)
    first = f"{API}company/companies?pageSize=2&page=1"
    rsps.add(
        "GET",
        f"{API}company/companies",
        json=[{"id": 3}, {"id": 4}],
        headers={"Link": f'<{first}>; rel="first", <{first[:-1]}2>; rel="prev"'},
    )
    pages = list(
        client(clock).list_pages(
            "company/companies", position="company/companies?pageSize=2&page=2"
        )
    )
    assert "pagination-type" not in rsps.calls[1].request.headers
    assert pages[0].next_position is None


def test_a_link_to_another_host_is_refused(rsps: responses.RequestsMock, clock: FakeClock) -> None:
    discovery(rsps)
    rsps.add(
        "GET",
        f"{API}company/companies",
        json=[{"id": 1}],
        headers={
            "Link": '<https://evil.example/v2025_1/apis/3.0/company/companies?pageId=1>; rel="next"'
        },
    )
    with pytest.raises(FatalError, match="refusing to follow"):
        list(client(clock).list_pages("company/companies"))


def test_a_body_that_is_not_json_is_retriable(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    discovery(rsps)
    rsps.add("GET", f"{API}company/companies", body="<html>maintenance</html>")
    with pytest.raises(RetriableError, match="not JSON"):
        list(client(clock).list_pages("company/companies"))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        (
            '<https://h/a?page=2>; rel="next", <https://h/a?page=9>; rel="last"',
            "https://h/a?page=2",
        ),
        (
            '<https://h/a?page=1>; rel="first", <https://h/a?c=1%2C2&pageId=4>; rel=next',
            "https://h/a?c=1%2C2&pageId=4",
        ),
        ('<https://h/a?page=1>; rel="prev"', None),
    ],
)
def test_next_link(header: str | None, expected: str | None) -> None:
    assert next_link(header) == expected


def test_billing_emails_by_id_in_one_request(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    discovery(rsps)
    rsps.add(
        "GET",
        f"{API}company/contacts",
        json=[
            {
                "id": 501,
                "communicationItems": [
                    {"communicationType": "Phone", "value": "555", "defaultFlag": True},
                    {"communicationType": "Email", "value": "old@x.example", "defaultFlag": False},
                    {"communicationType": "Email", "value": "ap@x.example", "defaultFlag": True},
                ],
            },
            {"id": 502, "communicationItems": []},
        ],
    )
    found = client(clock).billing_emails([502, 501, 503, 501], (100, 900))
    request = rsps.calls[1].request
    assert query_of(request)["conditions"] == "id in (501,502,503)"
    assert query_of(request)["fields"] == "id,communicationItems"
    assert found == {501: "ap@x.example", 502: None}


def test_billing_emails_of_a_dense_page_come_by_company_range(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    wanted = list(range(100_000, 100_400))  # too many for one id-in request
    discovery(rsps)
    rsps.add(
        "GET",
        f"{API}company/contacts",
        json=[{"id": i, "communicationItems": []} for i in [*wanted[:-1], 7]],  # 7: not wanted
    )
    rsps.add("GET", f"{API}company/contacts", json=[])

    found = client(clock).billing_emails(wanted, (250, 1250))

    by_range, by_id = (query_of(c.request)["conditions"] for c in rsps.calls[1:])
    assert by_range == "company/id >= 250 and company/id <= 1250 and defaultBillingFlag = true"
    assert by_id == f"id in ({wanted[-1]})"  # only the one the range query missed
    assert sorted(found) == wanted[:-1]


def test_id_chunks_stay_within_the_url_budget() -> None:
    ids = list(range(100_000, 101_000))
    chunks = list(id_chunks(ids))
    assert [i for chunk in chunks for i in chunk] == ids
    from urllib.parse import quote

    for chunk in chunks:
        assert len(quote(cw_condition("id", "in", chunk))) <= MAX_CONDITIONS_CHARS
    assert len(chunks) <= 7


def test_email_of_prefers_the_default_address() -> None:
    items = [
        {"communicationType": "Email", "value": " first@x.example ", "defaultFlag": False},
        {"communicationType": "Email", "value": "main@x.example", "defaultFlag": True},
    ]
    assert email_of({"communicationItems": items}) == "main@x.example"
    assert email_of({"communicationItems": items[:1]}) == "first@x.example"
    assert email_of({"communicationItems": None}) is None


# -- payments -------------------------------------------------------------------------------------


def test_payment_post_is_sent_once_and_a_lost_answer_is_uncertain(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    discovery(rsps)
    rsps.add("POST", f"{API}finance/invoices/42/payments", body=requests.ConnectionError("reset"))
    with pytest.raises(UncertainWrite):
        client(clock).post_payment(42, {"amount": 10})
    assert len(rsps.calls) == 2  # discovery + one POST, never re-sent


def test_push_payment_body(rsps: responses.RequestsMock, clock: FakeClock) -> None:
    discovery(rsps)
    rsps.add(
        "POST",
        f"{API}finance/invoices/42/payments",
        status=201,
        json={"id": 77, "appliedBy": "syncd:k1", "amount": 125.5},
    )
    connector = ConnectWiseConnector(
        ConnectWiseSettings(
            site="na.myconnectwise.net",
            company_id="acme",
            public_key="pub1234",
            private_key="priv-secret-9",
            client_id="6d0c7c3e-client",
        ),
        ConnectorContext(connection="cw", clock=clock),
    )
    receipt = connector.push_payment(push(Decimal("125.50")))
    sent = json.loads(rsps.calls[1].request.body or b"{}")
    assert sent == {
        "type": "Payment",
        "amount": 125.5,
        "paymentDate": "2026-01-02T03:04:05Z",
        "appliedBy": "syncd:k1",
        "invoice": {"id": 42},
    }
    assert rsps.calls[1].request.headers["Content-Type"] == "application/json"
    assert receipt.external_id == "77"


def push(amount: Decimal, invoice: str = "42") -> PaymentPush:
    return PaymentPush(
        key="k1",
        marker="syncd:k1",
        invoice_external_id=invoice,
        customer_external_id="7",
        amount=amount,
        fee=Decimal(0),
        currency="USD",
        method=PaymentMethod.CARD,
        received_at=dt.datetime(2026, 1, 2, 4, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    )


@pytest.mark.parametrize(
    ("amount", "expected"),
    [(Decimal("125.50"), 125.5), (Decimal("100.00"), 100), (Decimal("0.01"), 0.01)],
)
def test_json_amount_is_exact(amount: Decimal, expected: float | int) -> None:
    assert json_amount(amount) == expected
    assert Decimal(repr(json_amount(amount))) == amount


def test_json_amount_refuses_what_a_number_cannot_carry() -> None:
    with pytest.raises(SkippableError):
        json_amount(Decimal("12345678901234567.891"))


# -- the error table ------------------------------------------------------------------------------

PAYMENTS = "finance/invoices/42/payments"
LIST = "company/companies"
TIMEOUT = {"code": "ConnectWiseApi", "message": "Execution timeout expired."}
TOO_MUCH = {
    "code": "InvalidObject",
    "message": "payment object is invalid",
    "errors": [
        {
            "code": "InvalidObject",
            "message": "The payment amount cannot exceed the invoice balance.",
            "field": "amount",
        }
    ],
}


def vendor(code: str, message: str = "x") -> dict[str, str]:
    return {"code": code, "message": message}


CASES = [
    # method, path, status, body, headers, expected
    ("GET", LIST, 400, vendor("ApiFindCondition", "typeids is unknown"), {}, FatalError),
    ("GET", LIST, 400, vendor("InvalidObject", "orderBy is not supported"), {}, FatalError),
    ("GET", LIST, 401, vendor("Unauthorized", "bad keys"), {}, AuthError),
    ("GET", LIST, 403, vendor("Forbidden", "security role"), {}, AuthError),
    ("GET", LIST, 404, vendor("NotFound"), {}, FatalError),
    ("GET", LIST, 409, vendor("Conflict"), {}, FatalError),
    ("GET", LIST, 429, "error code: 1015", {"Retry-After": "7"}, RateLimited),
    ("GET", LIST, 500, TIMEOUT, {}, RetriableError),
    ("POST", PAYMENTS, 400, TOO_MUCH, {}, SkippableError),
    ("POST", PAYMENTS, 409, vendor("ObjectExists"), {}, SkippableError),
    ("POST", PAYMENTS, 400, {"message": "malformed"}, {}, FatalError),
    ("POST", PAYMENTS, 401, vendor("Unauthorized", "bad keys"), {}, AuthError),
    ("POST", PAYMENTS, 429, "error code: 1015", {"Retry-After": "3"}, RateLimited),
    ("POST", PAYMENTS, 500, TIMEOUT, {}, UncertainWrite),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "status", "body", "headers", "expected"),
    CASES,
    ids=[
        f"{c[0]}-{c[2]}-{c[3].get('code', 'none') if isinstance(c[3], dict) else 'text'}"
        for c in CASES
    ],
)
def test_error_table(
    rsps: responses.RequestsMock,
    clock: FakeClock,
    method: str,
    path: str,
    status: int,
    body: Any,
    headers: dict[str, str],
    expected: type[ConnectorError],
) -> None:
    kwargs: dict[str, Any] = {"json": body} if isinstance(body, dict) else {"body": body}
    discovery(rsps)
    rsps.add(method, f"{API}{path}", status=status, headers=headers, **kwargs)
    if status == 404:
        discovery(rsps)  # one re-discovery, same codebase: the 404 stands
    cw = client(clock, max_attempts=1)

    def call() -> object:
        if method == "POST":
            return cw.post_payment(42, {"amount": 1})
        return list(cw.list_pages(path))

    with pytest.raises(ConnectorError) as raised:
        call()

    assert raised.type is expected
    assert raised.value.status == status
    if isinstance(body, dict) and "errors" in body:
        assert "cannot exceed the invoice balance" in str(raised.value)


def test_429_retry_after_is_honoured(rsps: responses.RequestsMock, clock: FakeClock) -> None:
    discovery(rsps)
    rsps.add(
        "GET",
        f"{API}company/companies",
        status=429,
        body="error code: 1015",
        headers={"Retry-After": "7"},
    )
    rsps.add("GET", f"{API}company/companies", json=[{"id": 1}])
    pages = list(client(clock).list_pages("company/companies"))
    assert pages[0].records == [{"id": 1}]
    assert clock.slept == [7.0]


def test_500_timeout_is_retried_for_reads(rsps: responses.RequestsMock, clock: FakeClock) -> None:
    discovery(rsps)
    rsps.add(
        "GET",
        f"{API}company/companies",
        status=500,
        json={"code": "ConnectWiseApi", "message": "Execution timeout expired."},
    )
    rsps.add("GET", f"{API}company/companies", json=[])
    pages = list(client(clock).list_pages("company/companies"))
    assert pages[0].records == []


# -- settings and the default mapping -------------------------------------------------------------

BASE_SETTINGS = {
    "company_id": "acme",
    "public_key": "pub",
    "private_key": "k9-very-private",
    "client_id": "c",
}


@pytest.mark.parametrize(
    ("site", "root"),
    [
        ("na.myconnectwise.net", "https://api-na.myconnectwise.net"),
        ("aus.myconnectwise.net", "https://api-aus.myconnectwise.net"),
        ("EU.myconnectwise.net", "https://api-eu.myconnectwise.net"),
        ("api-za.myconnectwise.net", "https://api-za.myconnectwise.net"),
        ("staging.connectwisedev.com", "https://api-staging.connectwisedev.com"),
        ("cw.example.com", "https://cw.example.com"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
    ],
)
def test_site_becomes_the_api_root(site: str, root: str) -> None:
    assert site_root(site) == root
    assert ConnectWiseSettings(site=site, **BASE_SETTINGS).api_root == root


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({}, "exactly one of site"),
        ({"site": "na.myconnectwise.net", "base_url": "https://x"}, "exactly one of site"),
        ({"base_url": "cw.example.com"}, "not an http"),
        ({"site": "na.myconnectwise.net/v4_6_release/apis"}, "not a host name"),
        ({"site": "ftp://cw.example.com"}, "not an http"),
        ({"site": "x", "page_size": 1001}, "less than or equal to 1000"),
        ({"site": "x", "api_version": "latest"}, "pattern"),
        ({"site": "x", "surprise": 1}, "Extra inputs"),
    ],
)
def test_settings_errors_are_clear(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ConnectWiseSettings(**{**BASE_SETTINGS, **extra})


def test_private_key_stays_secret() -> None:
    settings = ConnectWiseSettings(site="na.myconnectwise.net", **BASE_SETTINGS)
    assert "k9-very-private" not in repr(settings)


def connector(clock: FakeClock, **extras: Any) -> ConnectWiseConnector:
    return ConnectWiseConnector(
        ConnectWiseSettings(site="na.myconnectwise.net", **BASE_SETTINGS),
        ConnectorContext(connection="cw", clock=clock, extras=extras),
    )


COMPANY: dict[str, Any] = {
    "id": 250,
    "name": "O'Brien & Sons",
    "deletedFlag": True,
    "invoiceToEmailAddress": "ap@obrien.example",
    "currency": {"currencyCode": "EUR"},
    "customFields": [{"id": 3, "caption": "Accounting ID", "value": "QB-17"}],
    "_info": {"lastUpdated": "2025-06-01T10:20:30Z"},
}
INVOICE: dict[str, Any] = {
    "id": 1001,
    "invoiceNumber": "10001",
    "type": "Standard",
    "status": {"id": 2, "name": "Sent"},
    "company": {"id": 250},
    "currency": {"currencyCode": "USD"},
    "date": "2025-03-01T00:00:00Z",
    "dueDate": "2025-03-31T00:00:00Z",
    "total": 1200.1,
    "balance": 200.05,
    "_info": {"lastUpdated": "2025-03-02T10:00:00+02:00"},
}


def test_default_mapping_reads_money_as_decimal_and_dates_as_utc(clock: FakeClock) -> None:
    invoice = connector(clock).mapping.apply("invoices", INVOICE, connection="cw")
    assert isinstance(invoice, Invoice)
    assert invoice.total == Decimal("1200.1") and isinstance(invoice.total, Decimal)
    assert invoice.balance == Decimal("200.05")
    assert invoice.status is InvoiceStatus.PARTIALLY_PAID
    assert invoice.source_updated_at == dt.datetime(2025, 3, 2, 8, 0, tzinfo=dt.UTC)
    assert invoice.issued_on == dt.date(2025, 3, 1)
    assert invoice.due_date == dt.date(2025, 3, 31)
    assert invoice.customer_external_id == "250"


@pytest.mark.parametrize(
    ("status", "balance", "expected"),
    [
        ({"name": "Void"}, 200.05, InvoiceStatus.VOID),
        (None, 200.05, InvoiceStatus.PARTIALLY_PAID),
        ({"name": "Paid"}, 0, InvoiceStatus.PAID),
        ({"name": "New"}, 1200.1, InvoiceStatus.OPEN),
    ],
)
def test_invoice_status_follows_amounts_and_void_names(
    clock: FakeClock, status: Any, balance: float, expected: InvoiceStatus
) -> None:
    raw = {**INVOICE, "status": status, "balance": balance}
    invoice = connector(clock).mapping.apply("invoices", raw, connection="cw")
    assert isinstance(invoice, Invoice)
    assert invoice.status is expected


def test_default_mapping_of_a_deleted_company(clock: FakeClock) -> None:
    customer = connector(clock).mapping.apply("customers", COMPANY, connection="cw")
    assert isinstance(customer, Customer)
    assert (customer.name, customer.active, customer.currency) == ("O'Brien & Sons", False, "EUR")
    assert customer.email == "ap@obrien.example"  # no billing contact e-mail: the fallback
    enriched = {**COMPANY, "_syncd": {"billingContactEmail": "jo@obrien.example"}}
    customer = connector(clock).mapping.apply("customers", enriched, connection="cw")
    assert isinstance(customer, Customer)
    assert customer.email == "jo@obrien.example"


def test_custom_fields_are_readable_through_an_override(clock: FakeClock) -> None:
    overrides = {"customers": {"xref": {"custom_field": "Accounting ID"}}}
    customer = connector(clock, mapping_overrides=overrides).mapping.apply(
        "customers", COMPANY, connection="cw"
    )
    assert isinstance(customer, Customer)
    assert customer.xref == "QB-17"
