"""The QBO query language and change data capture, over HTTP with plain ``requests``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import requests

from connectors.quickbooks_online.sandbox import QuickBooksSandbox
from syncd.query import qbo_like_pattern, qbo_select
from syncd.sandbox import AWKWARD_NAMES
from syncd.testing import FakeClock


def code_of(r: requests.Response) -> str:
    assert r.status_code == 400, r.text
    code: str = r.json()["Fault"]["Error"][0]["code"]
    return code


def instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_paging_visits_every_invoice_once(qbo: QuickBooksSandbox, api: Any) -> None:
    seen: list[str] = []
    start = 1
    pages = 0
    while True:
        r = api.query(qbo_select("Invoice", start_position=start, max_results=25))
        assert r.status_code == 200
        result = r.json()["QueryResponse"]
        if not result:
            break  # past the end: {"QueryResponse": {}} with no entity key
        assert result["startPosition"] == start
        assert result["maxResults"] == len(result["Invoice"]) <= 25
        seen += [inv["Id"] for inv in result["Invoice"]]
        start += len(result["Invoice"])
        pages += 1
    expected = [inv["Id"] for inv in qbo.all_invoices()]
    assert pages >= 4
    assert seen == expected  # default order: by Id
    assert len(set(seen)) == len(seen)
    assert not set(qbo.deleted_ids("Invoice")) & set(seen)  # deleted ones only live in CDC
    for entity in ("Customer", "Payment", "Deposit"):
        r = api.query(qbo_select(entity, [("Active", "IN", [True, False])], count=True))
        if entity != "Customer":  # Active is not a property of transactions
            assert code_of(r) == "4001"
            r = api.query(qbo_select(entity, count=True))
        assert r.json()["QueryResponse"]["totalCount"] > 25, entity  # more than one page


def test_incremental_window_by_last_updated_time(qbo: QuickBooksSandbox, api: Any) -> None:
    invoices = qbo.all_invoices()
    stamps = sorted(instant(i["MetaData"]["LastUpdatedTime"]) for i in invoices)
    since = stamps[len(stamps) // 2]
    # The same instant in UTC and with the company's offset selects the same rows.
    literals = [since.isoformat(), since.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")]
    results = []
    for literal in literals:
        rows: list[dict[str, Any]] = []
        start = 1
        while True:
            # tap-quickbooks' spelling: Metadata, ORDER BY (research §1.3)
            where = f"Metadata.LastUpdatedTime >= '{literal}'"
            order = "ORDER BY Metadata.LastUpdatedTime ASC"
            paging = f"STARTPOSITION {start} MAXRESULTS 10"
            statement = f"SELECT * FROM Invoice WHERE {where} {order} {paging}"  # noqa: S608
            page = api.rows(statement, "Invoice")
            if not page:
                break
            rows += page
            start += len(page)
        results.append([r["Id"] for r in rows])
        got = [instant(r["MetaData"]["LastUpdatedTime"]) for r in rows]
        assert got == sorted(got)
        assert all(t >= since for t in got)
    assert results[0] == results[1]
    assert len(results[0]) == sum(1 for t in stamps if t >= since)
    # python-quickbooks' spelling: MetaData and ORDERBY, keywords in any case
    where = f"MetaData.LastUpdatedTime >= '{literals[0]}'"
    order = "orderby MetaData.LastUpdatedTime maxresults 1000"
    statement = f"select * from Invoice where {where}  {order}"  # noqa: S608
    same = api.rows(statement, "Invoice")
    assert [r["Id"] for r in same] == results[0]


def test_operators_like_in_and_ordering(qbo: QuickBooksSandbox, api: Any) -> None:
    invoices = qbo.all_invoices()
    some = [invoices[1]["Id"], invoices[5]["Id"], invoices[9]["Id"]]
    rows = api.rows(qbo_select("Invoice", [("Id", "IN", some)]), "Invoice")
    assert [r["Id"] for r in rows] == some
    customer = invoices[0]["CustomerRef"]["value"]
    rows = api.rows(
        qbo_select("Invoice", [("CustomerRef", "=", customer)], "TotalAmt DESC"), "Invoice"
    )
    assert rows
    assert all(r["CustomerRef"]["value"] == customer for r in rows)
    assert [r["TotalAmt"] for r in rows] == sorted((r["TotalAmt"] for r in rows), reverse=True)
    rows = api.rows("SELECT * FROM Invoice WHERE Balance > '0' AND TotalAmt <= 500", "Invoice")
    assert rows
    assert all(r["Balance"] > 0 and r["TotalAmt"] <= 500 for r in rows)
    rows = api.rows(
        "SELECT * FROM Invoice WHERE TxnDate >= '2026-01-01' AND TxnDate < '2026-02-01'", "Invoice"
    )
    assert rows
    assert all("2026-01-01" <= r["TxnDate"] < "2026-02-01" for r in rows)
    names = [c["DisplayName"] for c in qbo.all_customers() if c["Active"]]
    plain = next(n for n in names if n.isascii() and n.replace(" ", "").replace(".", "").isalnum())
    word = plain.split()[0]
    pattern = qbo_like_pattern(word.lower())
    rows = api.rows(qbo_select("Customer", [("DisplayName", "LIKE", pattern)]), "Customer")
    assert rows
    assert all(word.lower() in r["DisplayName"].lower() for r in rows)
    pattern = qbo_like_pattern(word, "prefix")
    rows = api.rows(qbo_select("Customer", [("DisplayName", "LIKE", pattern)]), "Customer")
    assert all(r["DisplayName"].startswith(word) for r in rows)
    accounts = api.rows("SELECT * FROM Account WHERE Name = 'Undeposited Funds'", "Account")
    assert [a["AccountSubType"] for a in accounts] == ["UndepositedFunds"]
    methods = api.rows("SELECT * FROM PaymentMethod WHERE Type = 'CREDIT_CARD'", "PaymentMethod")
    assert {"Visa", "MasterCard"} <= {m["Name"] for m in methods}
    # a projection keeps only the named properties
    rows = api.rows("SELECT Id, DisplayName FROM Customer MAXRESULTS 3", "Customer")
    assert [set(r) for r in rows] == [{"Id", "DisplayName"}] * 3


@pytest.mark.parametrize("name", AWKWARD_NAMES)
def test_awkward_names_round_trip(qbo: QuickBooksSandbox, api: Any, name: str) -> None:
    where = [("DisplayName", "=", name), ("Active", "IN", [True, False])]
    statement = qbo_select("Customer", where)
    rows = api.rows(statement, "Customer")
    assert [r["DisplayName"] for r in rows] == [name]
    # POST with Content-Type: application/text, as python-quickbooks sends it
    r = api.session.post(
        qbo.company_url + "/query",
        data=statement.encode(),
        params={"minorversion": 75},
        headers={"Content-Type": "application/text"},
        timeout=5,
    )
    assert [c["DisplayName"] for c in r.json()["QueryResponse"]["Customer"]] == [name]


def test_unescaped_backslash_misses_the_name(api: Any) -> None:
    # python-quickbooks escapes only the quote; a lone backslash then escapes the next letter.
    rows = api.rows(
        "SELECT * FROM Customer WHERE DisplayName = 'Back\\Slash Systems' AND "
        "Active IN (true, false)",
        "Customer",
    )
    assert rows == []
    where = [("DisplayName", "=", "Back\\Slash Systems"), ("Active", "IN", [True, False])]
    good = qbo_select("Customer", where)
    assert "'Back\\\\Slash Systems'" in good
    assert [c["DisplayName"] for c in api.rows(good, "Customer")] == ["Back\\Slash Systems"]


def test_inactive_customers_are_a_name_list(qbo: QuickBooksSandbox, api: Any) -> None:
    everyone = qbo.all_customers()
    inactive = {c["Id"] for c in everyone if not c["Active"]}
    assert inactive
    default = {c["Id"] for c in api.rows("SELECT * FROM Customer MAXRESULTS 1000", "Customer")}
    assert default == {c["Id"] for c in everyone} - inactive
    both = api.rows(
        "SELECT * FROM Customer WHERE Active IN (true, false) MAXRESULTS 1000", "Customer"
    )
    assert {c["Id"] for c in both} == {c["Id"] for c in everyone}
    only = api.rows("SELECT * FROM Customer WHERE Active = false", "Customer")
    assert {c["Id"] for c in only} == inactive
    count = api.query("SELECT COUNT(*) FROM Customer").json()["QueryResponse"]
    assert count == {"totalCount": len(everyone) - len(inactive)}
    # A read by id still answers for an inactive customer.
    some = sorted(inactive)[0]
    assert api.get(f"/customer/{some}").json()["Customer"]["Active"] is False


@pytest.mark.parametrize(
    ("statement", "code"),
    [
        ("SELECT * FROM Invoice WHERE Balance > '0' OR TotalAmt > '5'", "4000"),
        ("SELECT * FROM Invoice MAXRESULTS 1001", "4001"),
        ("SELECT * FROM Invoice WHERE Nope = '1'", "4001"),
        ("SELECT * FROM Invoice ORDERBY Nope", "4001"),
        ("SELECT * FROM Widget", "4001"),
        ("SELECT * FROM invoice", "4001"),  # entity names are case-sensitive
        ("SELECT * FROM Customer WHERE DisplayName = 'O'Brien & Sons'", "4000"),
        ("SELECT * FROM Customer WHERE DisplayName = 'unterminated", "4000"),
        ("SELECT * FROM Invoice WHERE MetaData.LastUpdatedTime >= 'yesterday'", "4001"),
        ("SELECT * FROM Invoice WHERE TotalAmt LIKE '1%'", "4001"),
        ("SELECT * FROM Invoice WHERE NOT Balance = '0'", "4000"),
        ("", "4000"),
    ],
)
def test_bad_queries_are_faults(api: Any, statement: str, code: str) -> None:
    r = api.query(statement)
    assert code_of(r) == code
    body = r.json()
    assert body["Fault"]["type"] == "ValidationFault"
    assert body["time"].endswith("-07:00")
    if code == "4000":
        assert body["Fault"]["Error"][0]["Detail"].startswith("QueryParserError:")
        assert body["Fault"]["Error"][0]["Message"] == "Error parsing query"


def test_or_is_reported_where_it_stands(api: Any) -> None:
    r = api.query("SELECT * FROM Invoice WHERE Balance > '0'  OR TotalAmt > '5'")
    detail = r.json()["Fault"]["Error"][0]["Detail"]
    assert 'Encountered " <OR> "OR "" at line 1, column 44.' in detail


def test_empty_result_has_no_entity_key(api: Any) -> None:
    r = api.query("SELECT * FROM Invoice WHERE DocNumber = 'no-such-number'")
    assert r.json()["QueryResponse"] == {}


# -- change data capture ----------------------------------------------------------------------


def test_cdc_reports_changes_and_tombstones(
    qbo: QuickBooksSandbox, api: Any, clock: FakeClock
) -> None:
    since = (clock.now() - dt.timedelta(days=29)).isoformat()
    r = api.get("/cdc", entities="Invoice,Customer,Payment", changedSince=since)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["time"].startswith("2026-03-01T05:00:00")
    responses = body["CDCResponse"][0]["QueryResponse"]
    assert len(responses) == 3
    invoices = responses[0]["Invoice"]
    deleted = [i for i in invoices if i.get("status") == "Deleted"]
    assert {d["Id"] for d in deleted} == set(qbo.deleted_ids("Invoice"))
    assert deleted
    for tomb in deleted:
        assert set(tomb) == {"Id", "status", "domain", "MetaData"}
        assert set(tomb["MetaData"]) == {"LastUpdatedTime"}
        gone = api.get(f"/invoice/{tomb['Id']}")
        assert code_of(gone) == "610"
    cutoff = clock.now() - dt.timedelta(days=29)
    live = [i for i in invoices if i.get("status") != "Deleted"]
    expected = {
        i["Id"] for i in qbo.all_invoices() if instant(i["MetaData"]["LastUpdatedTime"]) >= cutoff
    }
    assert {i["Id"] for i in live} == expected
    customers = responses[1].get("Customer", [])
    assert any(c["Active"] is False for c in customers)  # deactivations are changes too
    assert responses[0]["maxResults"] == len(invoices)


def test_cdc_limits(clock: FakeClock) -> None:
    with QuickBooksSandbox(seed=4, customers=5, invoices=0, clock=clock, throttle=False) as qbo:
        customer = qbo.all_customers()[0]["Id"]
        for _ in range(1010):
            qbo.add_invoice(customer, "12.50")
        with requests.Session() as s:
            s.headers.update(qbo.headers())
            url = qbo.company_url + "/cdc"
            since = (clock.now() - dt.timedelta(days=1)).isoformat()
            body = s.get(url, params={"entities": "Customer,Invoice", "changedSince": since}).json()
            first, second = body["CDCResponse"][0]["QueryResponse"]
            assert first == {}  # no customer changed in the last day
            assert len(second["Invoice"]) == 1000  # the cap
            qbo.add_customer("Fresh Customer")
            body = s.get(url, params={"entities": "Customer,Invoice", "changedSince": since}).json()
            first, second = body["CDCResponse"][0]["QueryResponse"]
            assert len(first["Customer"]) + len(second["Invoice"]) == 1000  # shared
            too_old = (clock.now() - dt.timedelta(days=31)).isoformat()
            r = s.get(url, params={"entities": "Invoice", "changedSince": too_old})
            assert code_of(r) == "4001"
            r = s.get(url, params={"entities": "Invoice"})
            assert code_of(r) == "2020"
            r = s.get(url, params={"entities": "Widget", "changedSince": since})
            assert code_of(r) == "4001"
