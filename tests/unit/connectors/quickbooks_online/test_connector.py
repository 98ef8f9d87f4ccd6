"""The connector over mocked HTTP: settings, paging and positions, CDC deletions, check()."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from pydantic import ValidationError

from connectors.quickbooks_online import QuickBooksOnlineConnector, QuickBooksOnlineSettings
from connectors.quickbooks_online.auth import DEFAULT_TOKEN_URL
from syncd.connector import Capability, ConnectorContext, Cursor, Page, Stream
from syncd.errors import ConfigError, FatalError
from syncd.model import InvoiceStatus
from syncd.testing import FakeClock

API = "https://sandbox-quickbooks.api.intuit.com/v3/company/9130"
SINCE = dt.datetime(2025, 12, 20, tzinfo=dt.UTC)  # the fake clock stands at 2026-01-01


def params(request: requests.PreparedRequest) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(request.url or "").query).items()}


def invoice(n: int, **over: Any) -> dict[str, Any]:
    row = {
        "Id": str(n),
        "SyncToken": "0",
        "DocNumber": f"10{n:02d}",
        "CustomerRef": {"value": "58", "name": "O'Brien"},
        "CurrencyRef": {"value": "USD"},
        "TotalAmt": 150.0,
        "Balance": 150.0,
        "TxnDate": "2025-12-01",
        "MetaData": {"LastUpdatedTime": "2025-12-21T09:30:00-08:00"},
    }
    row.update(over)
    return row


def page(rows: list[dict[str, Any]], entity: str = "Invoice") -> dict[str, Any]:
    return {"QueryResponse": {entity: rows} if rows else {}}


def records(pages: list[Page]) -> list[str]:
    return [r.external_id for p in pages for r in p.records]


# -- settings -------------------------------------------------------------------------------------


def test_defaults_point_at_intuit() -> None:
    settings = QuickBooksOnlineSettings(realm_id="1", client_id="c", client_secret="s")
    assert settings.api_root == "https://quickbooks.api.intuit.com"
    assert settings.token_url == DEFAULT_TOKEN_URL
    assert settings.authorize_url == "https://appcenter.intuit.com/connect/oauth2"
    assert settings.scopes == ("com.intuit.quickbooks.accounting",)
    assert settings.minorversion == 75
    sandbox = settings.model_copy(update={"environment": "sandbox"})
    assert sandbox.api_root == "https://sandbox-quickbooks.api.intuit.com"
    assert "openid_sandbox_configuration" in sandbox.discovery


def test_overrides_and_python_quickbooks_style_roots() -> None:
    settings = QuickBooksOnlineSettings(
        realm_id="1",
        client_id="c",
        client_secret="s",
        base_url="http://127.0.0.1:8080/v3/",
        discovery_url="http://127.0.0.1:8080/.well-known/openid_configuration",
    )
    assert settings.api_root == "http://127.0.0.1:8080"
    assert settings.token_url is None  # read from the discovery document, once, when needed


def test_discovery_finds_the_token_endpoint_once(rsps: responses.RequestsMock, make: Any) -> None:
    discovery = "https://idp.example/.well-known/openid_configuration"
    token_url = "https://idp.example/oauth2/v1/tokens/bearer"
    rsps.add("GET", discovery, json={"token_endpoint": token_url, "issuer": "x"})
    rsps.add(
        "POST", token_url, json={"access_token": "a-9", "refresh_token": "r-9", "expires_in": 3600}
    )
    rsps.add("GET", f"{API}/query", json=page([]))
    rsps.add("GET", f"{API}/query", json=page([]))
    connector = make(discovery_url=discovery)
    list(connector.pull(Stream.CUSTOMERS, Cursor()))
    list(connector.pull(Stream.CUSTOMERS, Cursor()))
    assert [c.request.url for c in rsps.calls][:2] == [discovery, token_url]


def test_a_discovery_document_without_a_token_endpoint_is_fatal(
    rsps: responses.RequestsMock, make: Any
) -> None:
    discovery = "https://idp.example/.well-known/openid_configuration"
    rsps.add("GET", discovery, json={"issuer": "x"})
    with pytest.raises(FatalError, match="token_endpoint"):
        list(make(discovery_url=discovery).pull(Stream.CUSTOMERS, Cursor()))


@pytest.mark.parametrize(
    "over",
    [
        {"client_secret": ""},
        {"realm_id": "12 34"},
        {"base_url": "ftp://x"},
        {"minorversion": 74},
        {"page_size": 1001},
        {"environment": "staging"},
        {"unknown": 1},
    ],
)
def test_bad_settings_are_refused(over: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        QuickBooksOnlineSettings(
            **{"realm_id": "1", "client_id": "c", "client_secret": "s", **over}
        )


def test_without_a_store_the_connector_refuses_to_start() -> None:
    settings = QuickBooksOnlineSettings(realm_id="1", client_id="c", client_secret="s")
    with pytest.raises(ConfigError, match="keeps its rotating OAuth tokens in the store"):
        QuickBooksOnlineConnector(settings, ConnectorContext(connection="qbo", clock=FakeClock()))


def test_declares_what_the_contract_needs() -> None:
    cls = QuickBooksOnlineConnector
    assert cls.name == "quickbooks_online"
    assert Capability.PAYMENTS_WRITE in cls.capabilities
    assert cls.max_page_size == 1000
    assert cls.default_mapping.resolve().name == "quickbooks_online.toml"


# -- pulls ----------------------------------------------------------------------------------------


def test_a_full_pass_pages_newest_first_without_cdc(
    rsps: responses.RequestsMock, make: Any
) -> None:
    rsps.add("GET", f"{API}/query", json=page([invoice(n) for n in range(3)]))
    rsps.add("GET", f"{API}/query", json=page([invoice(3)]))
    pages = list(make(page_size=3).pull(Stream.INVOICES, Cursor()))

    assert records(pages) == ["0", "1", "2", "3"]
    assert [p.next_position for p in pages] == ["phase=query&start=4", None]
    statements = [params(c.request)["query"] for c in rsps.calls[1:]]
    assert statements == [
        "SELECT * FROM Invoice ORDERBY MetaData.LastUpdatedTime DESC, Id DESC "
        "STARTPOSITION 1 MAXRESULTS 3",
        "SELECT * FROM Invoice ORDERBY MetaData.LastUpdatedTime DESC, Id DESC "
        "STARTPOSITION 4 MAXRESULTS 3",
    ]


def test_customers_include_inactive_ones(rsps: responses.RequestsMock, make: Any) -> None:
    row = {
        "Id": "58",
        "DisplayName": "O'Brien & Sons",
        "Active": False,
        "PrimaryEmailAddr": {"Address": "ap@obrien.example"},
        "CurrencyRef": {"value": "USD"},
        "MetaData": {"LastUpdatedTime": "2025-12-21T09:30:00-08:00"},
    }
    rsps.add("GET", f"{API}/query", json=page([row], "Customer"))
    (only,) = list(make().pull(Stream.CUSTOMERS, Cursor(since=SINCE)))
    (customer,) = only.records
    assert (customer.name, customer.active, customer.email) == (
        "O'Brien & Sons",
        False,
        "ap@obrien.example",
    )
    assert customer.source_updated_at == dt.datetime(2025, 12, 21, 17, 30, tzinfo=dt.UTC)
    assert params(rsps.calls[1].request)["query"] == (
        "SELECT * FROM Customer WHERE Active IN (true, false) AND MetaData.LastUpdatedTime >= "
        "'2025-12-20T00:00:00+00:00' ORDERBY MetaData.LastUpdatedTime DESC, Id DESC "
        "STARTPOSITION 1 MAXRESULTS 1000"
    )


def test_voids_and_amounts_are_mapped(rsps: responses.RequestsMock, make: Any) -> None:
    rows = [
        invoice(1, TotalAmt=0, Balance=0, PrivateNote="Voided"),
        invoice(2, Balance=50.25),
        invoice(3, Balance=0),
        invoice(4, TotalAmt=0, Balance=0),  # a zero invoice is paid, not void
    ]
    rsps.add("GET", f"{API}/query", json=page(rows))
    (only,) = list(make().pull(Stream.INVOICES, Cursor()))
    statuses = [getattr(r, "status", None) for r in only.records]
    assert statuses == [
        InvoiceStatus.VOID,
        InvoiceStatus.PARTIALLY_PAID,
        InvoiceStatus.PAID,
        InvoiceStatus.PAID,
    ]
    assert str(getattr(only.records[1], "balance", None)) == "50.25"


def test_an_incremental_invoice_pass_ends_with_cdc_deletions(
    rsps: responses.RequestsMock, make: Any
) -> None:
    rsps.add("GET", f"{API}/query", json=page([invoice(1)]))
    tombstones = [
        {"Id": "1"},
        {"Id": "7", "status": "Deleted", "MetaData": {"LastUpdatedTime": "2025-12-22T00:00:00Z"}},
    ]
    cdc = {"CDCResponse": [{"QueryResponse": [{"Invoice": tombstones}]}]}
    rsps.add("GET", f"{API}/cdc", json=cdc)

    pages = list(make().pull(Stream.INVOICES, Cursor(since=SINCE)))

    assert records(pages) == ["1"]
    assert pages[0].next_position == "phase=cdc&since=2025-12-20T00%3A00%3A00%2B00%3A00"
    assert (pages[1].records, pages[1].deleted, pages[1].next_position) == ((), ("7",), None)
    assert params(rsps.calls[-1].request)["changedSince"] == "2025-12-20T00:00:00+00:00"


def test_a_pass_resumes_at_cdc(rsps: responses.RequestsMock, make: Any) -> None:
    rsps.add("GET", f"{API}/cdc", json={"CDCResponse": [{"QueryResponse": [{}]}]})
    position = "phase=cdc&since=2025-12-20T00%3A00%3A00%2B00%3A00"
    assert list(make().pull(Stream.INVOICES, Cursor(since=SINCE, position=position))) == []


def test_a_resumed_query_phase_keeps_its_since_and_start(
    rsps: responses.RequestsMock, make: Any
) -> None:
    rsps.add("GET", f"{API}/query", json=page([]))
    rsps.add("GET", f"{API}/cdc", json={"CDCResponse": []})
    position = "phase=query&start=2001&since=2025-12-20T00%3A00%3A00%2B00%3A00"
    list(make().pull(Stream.INVOICES, Cursor(since=SINCE, position=position)))
    statement = params(rsps.calls[1].request)["query"]
    assert "'2025-12-20T00:00:00+00:00'" in statement and "STARTPOSITION 2001" in statement


def test_a_full_cdc_answer_is_followed_from_its_newest_change(
    rsps: responses.RequestsMock, make: Any
) -> None:
    def stamp(n: int) -> dict[str, str]:
        return {"LastUpdatedTime": f"2025-12-{21 + n // 500:02d}T00:00:00Z"}

    first = [{"Id": str(n), "status": "Deleted", "MetaData": stamp(n)} for n in range(1000)]
    second = [{"Id": "5000", "status": "Deleted", "MetaData": stamp(0)}]
    rsps.add("GET", f"{API}/query", json=page([]))
    rsps.add("GET", f"{API}/cdc", json={"CDCResponse": [{"QueryResponse": [{"Invoice": first}]}]})
    rsps.add("GET", f"{API}/cdc", json={"CDCResponse": [{"QueryResponse": [{"Invoice": second}]}]})
    pages = list(make().pull(Stream.INVOICES, Cursor(since=SINCE)))
    assert len(pages[-1].deleted) == 1001
    assert params(rsps.calls[-1].request)["changedSince"] == "2025-12-22T00:00:00+00:00"


def test_cdc_is_skipped_beyond_thirty_days(rsps: responses.RequestsMock, make: Any) -> None:
    rsps.add("GET", f"{API}/query", json=page([]))
    old = dt.datetime(2025, 11, 1, tzinfo=dt.UTC)
    assert list(make().pull(Stream.INVOICES, Cursor(since=old))) == [Page((), (), None)]


def test_intuits_clock_decides_whether_cdc_reaches(rsps: responses.RequestsMock, make: Any) -> None:
    answer = {**page([]), "time": "2026-02-15T04:00:00.000-08:00"}  # 57 days after SINCE
    rsps.add("GET", f"{API}/query", json=answer)
    assert list(make().pull(Stream.INVOICES, Cursor(since=SINCE))) == [Page((), (), None)]


def test_a_refused_cdc_call_leaves_deletions_to_the_sweep(
    rsps: responses.RequestsMock, make: Any
) -> None:
    refused = {
        "Fault": {
            "Error": [{"Message": "Invalid query", "code": "4001"}],
            "type": "ValidationFault",
        }
    }
    rsps.add("GET", f"{API}/query", json=page([invoice(1)]))
    rsps.add("GET", f"{API}/cdc", status=400, json=refused)
    pages = list(make().pull(Stream.INVOICES, Cursor(since=SINCE)))
    assert records(pages) == ["1"]  # the pass completes; no deletions page


def test_an_unreadable_position_is_fatal(make: Any) -> None:
    with pytest.raises(FatalError, match="unreadable position"):
        list(make().pull(Stream.INVOICES, Cursor(position="page=2")))


# -- check ----------------------------------------------------------------------------------------


def test_check_reads_company_info(rsps: responses.RequestsMock, make: Any) -> None:
    rsps.add(
        "GET",
        f"{API}/companyinfo/9130",
        json={"CompanyInfo": {"Id": "9130", "CompanyName": "Acme"}},
    )
    verdict = make().check()
    assert verdict.ok and "Acme" in verdict.detail


def test_check_says_reconnect_when_the_refresh_token_is_refused(
    rsps: responses.RequestsMock, make: Any
) -> None:
    rsps.replace("POST", DEFAULT_TOKEN_URL, status=400, json={"error": "invalid_grant"})
    verdict = make(client_secret="s3cret-value").check()
    assert not verdict.ok
    assert "credentials" in verdict.detail and "syncd auth qbo" in verdict.detail
    assert "seed-refresh-token" not in verdict.detail and "s3cret-value" not in verdict.detail
