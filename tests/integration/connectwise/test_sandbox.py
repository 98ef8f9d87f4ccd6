"""The ConnectWise Manage emulator over real loopback HTTP, with a plain ``requests`` client."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from connectors.connectwise.conditions import (
    BoolOp,
    Compare,
    ConditionError,
    Schema,
    compile_conditions,
    parse,
)
from connectors.connectwise.sandbox import (
    API_VERSION,
    TIMEOUT_MESSAGE,
    ConnectWiseSandbox,
    PageInfo,
)
from syncd.sandbox import AWKWARD_NAMES, Fault, Request
from syncd.testing import FakeClock

T0 = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


def q(value: str) -> str:
    """A conditions string literal (the test's own escaper: backslash, then double quote)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def cw(clock: FakeClock) -> Iterator[ConnectWiseSandbox]:
    with ConnectWiseSandbox(seed=3, clock=clock) as sandbox:
        yield sandbox
        assert sandbox.server.errors == []


@pytest.fixture
def http(cw: ConnectWiseSandbox) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers.update(cw.headers())
        yield session


def get_all(
    http: requests.Session, url: str, params: dict[str, Any] | None = None, **kw: Any
) -> tuple[list[dict[str, Any]], int]:
    """Follow Link rel=next to the end; returns (records, number of requests)."""
    records: list[dict[str, Any]] = []
    requests_made = 0
    next_url: str | None = url
    while next_url:
        r = http.get(next_url, params=params, timeout=5, **kw)
        assert r.status_code == 200, r.text
        records += r.json()
        requests_made += 1
        params = None  # the next link carries every parameter
        next_url = r.links.get("next", {}).get("url")
    return records, requests_made


# -- discovery, auth, versioning ---------------------------------------------------------------


def test_companyinfo_is_unauthenticated(cw: ConnectWiseSandbox) -> None:
    r = requests.get(cw.base_url + "/login/companyinfo/SANDBOX", timeout=5)
    assert r.status_code == 200
    info = r.json()
    assert info["Codebase"] == "v4_6_release/"
    assert info["CompanyID"] == "sandbox"
    assert info["IsCloud"] is True
    assert {"CompanyName", "VersionCode"} <= info.keys()
    assert requests.get(cw.base_url + "/login/companyinfo/other", timeout=5).status_code == 404


def test_auth_needs_basic_keys_and_client_id(cw: ConnectWiseSandbox) -> None:
    url = cw.api_url + "/company/companies"
    good = cw.headers()
    with requests.Session() as s:
        assert s.get(url, headers=good, timeout=5).status_code == 200
        cases = [
            {"clientId": good["clientId"]},  # no Authorization
            {**good, "Authorization": cw.auth_header(private_key="wrong")},
            {**good, "Authorization": cw.auth_header(public_key="wrong")},
            {**good, "Authorization": cw.auth_header(company_id="other")},
            {**good, "Authorization": "Basic !!notbase64"},
            {**good, "Authorization": cw.auth_header(private_key="clé-ünïcode")},
            {k: v for k, v in good.items() if k != "clientId"},
            {**good, "clientId": "not-our-client"},
        ]
        for headers in cases:
            r = s.get(url, headers=headers, timeout=5)
            assert r.status_code == 401, headers
            assert r.json()["code"] == "Unauthorized"
            assert r.headers["api-current-version"] == API_VERSION
        # The company part is case-insensitive; keys are not.
        ok = {**good, "Authorization": cw.auth_header(company_id="SandBox")}
        assert s.get(url, headers=ok, timeout=5).status_code == 200
        cw.auth_failure_status = 404  # cloud: bad keys look like a missing resource
        r = s.get(url, headers={**good, "Authorization": cw.auth_header(private_key="x")})
        assert r.status_code == 404
    assert cw.log.entries[0].headers["authorization"] == "Basic ***"


def test_version_header_and_codebase_move(cw: ConnectWiseSandbox, http: requests.Session) -> None:
    r = http.get(cw.api_url + "/system/info", headers=cw.headers(version="2025.16"))
    assert r.status_code == 200
    assert r.headers["api-current-version"] == API_VERSION
    assert cw.log.entries[-1].headers["accept"].endswith("version=2025.16")
    old_api = cw.api_url
    cw.move_codebase("v2026_1")
    assert http.get(old_api + "/company/companies").status_code == 404
    info = requests.get(cw.base_url + "/login/companyinfo/sandbox", timeout=5).json()
    assert info["Codebase"] == "v2026_1/"
    assert http.get(f"{cw.base_url}/v2026_1/apis/3.0/company/companies").status_code == 200


def test_write_needs_json_content_type(cw: ConnectWiseSandbox, http: requests.Session) -> None:
    r = http.post(
        cw.api_url + "/company/companies",
        data="identifier=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 415


# -- seeded data -----------------------------------------------------------------------------


def test_seed_is_deterministic_and_covers_the_edge_cases() -> None:
    a, b, c = (ConnectWiseSandbox(seed=s) for s in (3, 3, 4))
    assert a.all_invoices() == b.all_invoices()
    assert a.all_companies() == b.all_companies()
    assert a.all_invoices() != c.all_invoices()
    companies, invoices = a.all_companies(), a.all_invoices()
    assert len(companies) == 40
    assert len(invoices) == 120
    names = {c["name"] for c in companies}
    assert {'The "Quoted" Company', "O'Brien & Sons", "Back\\Slash Systems"} <= names
    assert any(not n.isascii() for n in names)
    assert len(names) < len(companies)  # a duplicate name
    assert any(c["deletedFlag"] for c in companies)
    assert any(c["billingContact"] is None for c in companies)
    assert any(c["invoiceToEmailAddress"] is None for c in companies)
    assert {c["currency"]["currencyCode"] for c in companies} > {"USD"}
    assert any(i["type"] == "CreditMemo" and i["total"] < 0 for i in invoices)
    paid = [i for i in invoices if i["type"] != "CreditMemo" and i["balance"] == 0]
    partial = [i for i in invoices if 0 < i["payments"] < i["total"]]
    open_ = [i for i in invoices if i["payments"] == 0 and i["balance"] > 0]
    assert paid and partial and open_
    for inv in paid + partial:
        total_paid = sum(p["amount"] for p in a.payments(inv["id"]))
        assert round(total_paid, 2) == inv["payments"]
    for inv in invoices:
        assert round(inv["total"] - inv["payments"] - inv["credits"], 2) == inv["balance"]
    ids = [i["id"] for i in invoices]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_billing_contact_email(cw: ConnectWiseSandbox, http: requests.Session) -> None:
    company = next(c for c in cw.all_companies() if c["billingContact"])
    contact_id = company["billingContact"]["id"]
    r = http.get(f"{cw.api_url}/company/contacts/{contact_id}")
    assert r.status_code == 200
    contact = r.json()
    assert contact["company"]["id"] == company["id"]
    emails = [
        i
        for i in contact["communicationItems"]
        if i["type"]["name"] == "Email" and i["defaultFlag"]
    ]
    assert emails
    assert "@" in emails[0]["value"]
    assert http.get(f"{cw.api_url}/company/contacts/1").status_code == 404

    bare = next(c for c in cw.all_companies() if c["billingContact"] is None)
    contact = cw.add_contact(
        bare["id"],
        "Zoë",
        "O'Neil",
        [("old@x.example", False), ("ap@x.example", True)],
        billing=True,
    )
    company = http.get(f"{cw.api_url}/company/companies/{bare['id']}").json()
    assert company["billingContact"] == {"id": contact["id"], "name": "Zoë O'Neil"}
    assert company["_info"]["lastUpdated"] == "2026-03-01T12:00:00Z"
    items = http.get(f"{cw.api_url}/company/contacts/{contact['id']}").json()["communicationItems"]
    assert [i["value"] for i in items if i["defaultFlag"]] == ["ap@x.example"]


# -- paging ----------------------------------------------------------------------------------


def test_navigable_paging_visits_every_record_once(
    cw: ConnectWiseSandbox, http: requests.Session
) -> None:
    records, pages = get_all(http, cw.api_url + "/finance/invoices", {"pageSize": 25})
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)) == 120
    assert pages == 5  # 120 / 25 rounded up
    assert http.get(cw.api_url + "/finance/invoices/count").json() == {"count": 120}


def test_link_header_rels(cw: ConnectWiseSandbox, http: requests.Session) -> None:
    url = cw.api_url + "/company/companies"
    first = http.get(url, params={"pageSize": 10})
    assert set(first.links) == {"next", "last"}
    assert first.links["last"]["url"].endswith("pageSize=10&page=4")
    assert first.links["next"]["url"].startswith(cw.base_url + "/")
    middle = http.get(url, params={"pageSize": "10", "page": "2", "conditions": "id > 0"})
    assert set(middle.links) == {"first", "prev", "next", "last"}
    assert "conditions=id%20%3E%200" in middle.links["next"]["url"]
    assert middle.links["next"]["url"].endswith("page=3")  # page last: pycw parses page=(\d+)>
    last = http.get(url, params={"pageSize": 10, "page": 4})
    assert set(last.links) == {"first", "prev"}
    assert len(last.json()) == 10
    beyond = http.get(url, params={"pageSize": 10, "page": 9})
    assert beyond.json() == []
    single = http.get(url, params={"pageSize": 1000})
    assert len(single.json()) == 40
    assert "Link" not in single.headers
    default = http.get(url)
    assert len(default.json()) == 25  # pageSize defaults to 25
    assert http.get(url, params={"page": "x"}).status_code == 400


def test_page_size_is_capped_at_1000() -> None:
    with ConnectWiseSandbox(seed=1, companies=5, invoices=1003) as cw, requests.Session() as s:
        s.headers.update(cw.headers())
        r = s.get(cw.api_url + "/finance/invoices", params={"pageSize": 5000})
        assert len(r.json()) == 1000
        assert r.links["next"]["url"].endswith("pageSize=1000&page=2")


def test_forward_only_paging(cw: ConnectWiseSandbox, http: requests.Session) -> None:
    fwd = {"pagination-type": "forward-only"}
    url = cw.api_url + "/finance/invoices"
    records, pages = get_all(http, url, {"pageSize": 25, "page": 3}, headers=fwd)
    ids = [r["id"] for r in records]
    assert ids == sorted(ids)  # ordered by id, page ignored
    assert len(ids) == len(set(ids)) == 120
    assert pages == 5
    first = http.get(url, params={"pageSize": 25}, headers=fwd)
    assert set(first.links) == {"next"}
    assert first.links["next"]["url"].endswith(f"pageId={first.json()[-1]['id']}")
    tail = http.get(url, params={"pageSize": 25, "pageId": ids[-3]}, headers=fwd)
    assert [r["id"] for r in tail.json()] == ids[-2:]
    assert "Link" not in tail.headers
    r = http.get(url, params={"orderBy": "id desc"}, headers=fwd)
    assert r.status_code == 400
    window, _ = get_all(http, url, {"conditions": "balance > 0", "pageSize": 10}, headers=fwd)
    assert [r["id"] for r in window] == [i["id"] for i in cw.all_invoices() if i["balance"] > 0]


def test_records_changing_between_pages(cw: ConnectWiseSandbox, http: requests.Session) -> None:
    """Navigable pages drift when a record vanishes mid-pass; forward-only does not."""
    invoices = cw.all_invoices()
    served: list[PageInfo] = []

    def delete_first_after_page_one(request: Request, info: PageInfo) -> None:
        served.append(info)
        if len(served) == 1:
            cw.delete_invoice(invoices[0]["id"])

    cw.server.on_page_served(delete_first_after_page_one)
    records, _ = get_all(http, cw.api_url + "/finance/invoices", {"pageSize": 25})
    seen = {r["id"] for r in records}
    assert invoices[25]["id"] not in seen  # shifted onto page 1 after it was served: skipped
    assert served[0].page == 1
    assert served[0].forward_only is False

    served.clear()
    cw.server.clear_page_callbacks()

    @cw.server.on_page_served
    def delete_second_after_page_one(request: Request, info: PageInfo) -> None:
        served.append(info)
        if len(served) == 1:
            cw.delete_invoice(invoices[1]["id"])

    fwd = {"pagination-type": "forward-only"}
    records, _ = get_all(http, cw.api_url + "/finance/invoices", {"pageSize": 25}, headers=fwd)
    assert len(records) == 119  # invoices[1] was already served before it vanished


# -- conditions ------------------------------------------------------------------------------


def test_conditions_find_every_awkward_name(cw: ConnectWiseSandbox, http: requests.Session) -> None:
    companies = cw.all_companies()
    awkward = [c for c in companies if c["name"] in AWKWARD_NAMES]
    assert len(awkward) >= 8
    for company in awkward:
        r = http.get(
            cw.api_url + "/company/companies", params={"conditions": f"name={q(company['name'])}"}
        )
        assert r.status_code == 200, (company["name"], r.text)
        assert [c["id"] for c in r.json()] == [company["id"]], company["name"]
        r = http.get(
            cw.api_url + "/finance/invoices",
            params={"conditions": f"company/name = {q(company['name'])}", "pageSize": "1000"},
        )
        expected = [i["id"] for i in cw.all_invoices() if i["company"]["id"] == company["id"]]
        assert [i["id"] for i in r.json()] == expected


def count(http: requests.Session, cw: ConnectWiseSandbox, resource: str, conditions: str) -> int:
    r = http.get(f"{cw.api_url}{resource}/count", params={"conditions": conditions})
    assert r.status_code == 200, (conditions, r.text)
    result: int = r.json()["count"]
    return result


def test_condition_operators(cw: ConnectWiseSandbox, http: requests.Session) -> None:
    companies, invoices = cw.all_companies(), cw.all_invoices()
    inv = "/finance/invoices"
    com = "/company/companies"
    n = len(invoices)
    assert count(http, cw, com, "deletedFlag = true") == sum(c["deletedFlag"] for c in companies)
    assert count(http, cw, com, "deletedFlag=False") == sum(not c["deletedFlag"] for c in companies)
    assert count(http, cw, com, "billingContact/id = null") == sum(
        c["billingContact"] is None for c in companies
    )
    assert count(http, cw, com, "invoiceToEmailAddress != null") == sum(
        c["invoiceToEmailAddress"] is not None for c in companies
    )
    assert count(http, cw, inv, 'type = "CreditMemo"') == sum(
        i["type"] == "CreditMemo" for i in invoices
    )
    assert count(http, cw, inv, "balance > 0 AND payments > 0") == sum(
        i["balance"] > 0 and i["payments"] > 0 for i in invoices
    )
    assert count(http, cw, inv, "balance <= 0 or payments = 0") == sum(
        i["balance"] <= 0 or i["payments"] == 0 for i in invoices
    )
    assert count(http, cw, inv, "total >= 100.5") == sum(i["total"] >= 100.5 for i in invoices)
    assert count(http, cw, inv, "total < -10") == sum(i["total"] < -10 for i in invoices)
    ids = [invoices[0]["id"], invoices[5]["id"], 999999]
    assert count(http, cw, inv, f"id in ({ids[0]}, {ids[1]}, {ids[2]})") == 2
    assert count(http, cw, inv, f"id not in ({ids[0]},{ids[1]})") == n - 2
    assert count(http, cw, inv, 'status/name in ("Paid", "New")') == sum(
        i["status"]["name"] in ("Paid", "New") for i in invoices
    )
    assert count(http, cw, com, 'name like "the%"') == sum(
        c["name"].lower().startswith("the") for c in companies
    )
    assert count(http, cw, com, 'name like "%&%"') == sum("&" in c["name"] for c in companies)
    assert count(http, cw, com, 'name contains "\'"') == sum("'" in c["name"] for c in companies)
    assert count(http, cw, com, 'name not contains "&"') == sum(
        "&" not in c["name"] for c in companies
    )
    cid = invoices[0]["company"]["id"]
    expr = f'(company/id = {cid} or type = "CreditMemo") and balance != 0'
    assert count(http, cw, inv, expr) == sum(
        (i["company"]["id"] == cid or i["type"] == "CreditMemo") and i["balance"] != 0
        for i in invoices
    )
    # AND binds tighter than OR.
    expr = f'company/id = {cid} or type = "CreditMemo" and balance > 0'
    assert count(http, cw, inv, expr) == sum(
        i["company"]["id"] == cid or (i["type"] == "CreditMemo" and i["balance"] > 0)
        for i in invoices
    )
    assert count(http, cw, inv, 'currency/currencyCode = "usd"') == sum(
        i["currency"]["currencyCode"] == "USD" for i in invoices
    )


def test_last_updated_windows(
    cw: ConnectWiseSandbox, http: requests.Session, clock: FakeClock
) -> None:
    inv = "/finance/invoices"
    assert count(http, cw, inv, "lastUpdated > [2026-01-01T00:00:00Z]") == 0
    target = cw.all_invoices()[7]["id"]
    r = http.patch(
        f"{cw.api_url}{inv}/{target}", json=[{"op": "replace", "path": "reference", "value": "R1"}]
    )
    assert r.status_code == 200
    assert r.json()["_info"]["lastUpdated"] == "2026-03-01T12:00:00Z"
    for cond in (
        "lastUpdated >= [2026-03-01T12:00:00Z]",
        "_info/lastUpdated > [2026-03-01T11:59:59Z]",
        "lastUpdated > [2026-03-01T11:59:59.5Z]",
        "lastUpdated > [2026-03-01T13:59:59+02:00]",
        "lastUpdated > [2026-03-01T11:59:59]",  # naive: UTC
        "lastUpdated = [2026-03-01T12:00:00Z]",
    ):
        r = http.get(cw.api_url + inv, params={"conditions": cond})
        assert [i["id"] for i in r.json()] == [target], cond
    assert count(http, cw, inv, "lastUpdated > [2026-03-01T12:00:00Z]") == 0
    assert count(http, cw, inv, "lastUpdated > [2026-03-01T12:00:00.5Z]") == 0
    assert count(http, cw, inv, "lastUpdated < [2026-03-01T12:00:00.5Z]") == 120
    clock.advance(90)
    cw.add_payment(target, "1.00")
    cw.update_company(cw.all_companies()[0]["id"], phoneNumber="555-9999")
    assert count(http, cw, inv, "lastUpdated >= [2026-03-01T12:01:30Z]") == 1
    assert count(http, cw, "/company/companies", "lastUpdated >= [2026-03-01T12:01:30Z]") == 1


def test_unknown_field_and_malformed_conditions(
    cw: ConnectWiseSandbox, http: requests.Session
) -> None:
    r = http.get(cw.api_url + "/company/companies", params={"conditions": 'typeids="1"'})
    assert r.status_code == 400
    assert r.json() == {"code": "ApiFindCondition", "message": "typeids is not a recognized name."}
    for bad in (
        'name = "unterminated',
        "name =",
        "(id = 1",
        "id = 1 and",
        "id == 1",
        "name = 'single'",
        "lastUpdated > [yesterday]",
        "id < null",
        "deletedFlag > true",
        "name like 5",
        "customFields = 1",  # lists are not comparable in conditions
    ):
        r = http.get(cw.api_url + "/company/companies", params={"conditions": bad})
        assert r.status_code == 400, bad
        assert r.json()["code"] == "ApiFindCondition", bad
    r = http.get(cw.api_url + "/company/companies", params={"orderBy": "nope desc"})
    assert r.status_code == 400


def test_order_by_and_fields(cw: ConnectWiseSandbox, http: requests.Session) -> None:
    r = http.get(
        cw.api_url + "/finance/invoices",
        params={
            "orderBy": "_info/lastUpdated desc",
            "pageSize": "1000",
            "fields": "id,_info/lastUpdated",
        },
    )
    body = r.json()
    stamps = [i["_info"]["lastUpdated"] for i in body]
    assert stamps == sorted(stamps, reverse=True)
    assert set(body[0]) == {"id", "_info"}
    assert set(body[0]["_info"]) == {"lastUpdated"}
    r = http.get(cw.api_url + "/company/companies", params={"orderBy": "name asc, id desc"})
    names = [c["name"].casefold() for c in r.json()]
    assert names == sorted(names)


def test_custom_field_conditions(cw: ConnectWiseSandbox, http: requests.Session) -> None:
    r = http.get(
        cw.api_url + "/company/companies",
        params={"customFieldConditions": 'caption = "Autopay" and value = true', "pageSize": "100"},
    )
    assert r.status_code == 200
    expected = [
        c["id"]
        for c in cw.all_companies()
        if any(f["caption"] == "Autopay" and f["value"] is True for f in c["customFields"])
    ]
    assert [c["id"] for c in r.json()] == expected
    assert expected


# -- writes ----------------------------------------------------------------------------------


def test_payment_post_updates_balance_and_refuses_overpayment(
    cw: ConnectWiseSandbox, http: requests.Session, clock: FakeClock
) -> None:
    invoice = next(i for i in cw.all_invoices() if i["payments"] == 0 and i["balance"] > 100)
    url = f"{cw.api_url}/finance/invoices/{invoice['id']}/payments"
    clock.advance(60)
    r = http.post(url, json={"amount": 40.25, "paymentDate": "2026-02-28T00:00:00Z", "type": "P"})
    assert r.status_code == 201
    payment = r.json()
    assert payment["amount"] == 40.25
    assert payment["invoice"] == {"id": invoice["id"], "identifier": invoice["invoiceNumber"]}
    assert payment["paymentDate"] == "2026-02-28T00:00:00Z"
    after = http.get(f"{cw.api_url}/finance/invoices/{invoice['id']}").json()
    assert after["payments"] == 40.25
    assert after["balance"] == round(invoice["balance"] - 40.25, 2)
    assert after["_info"]["lastUpdated"] == "2026-03-01T12:01:00Z"
    listed = http.get(url).json()
    assert [p["id"] for p in listed] == [payment["id"]]
    assert http.get(f"{url}/{payment['id']}").json() == payment
    assert http.get(url + "/count").json() == {"count": 1}
    assert cw.payments(invoice["id"]) == [payment]

    over = http.post(url, json={"amount": after["balance"] + 0.01})
    assert over.status_code == 400
    assert over.json()["code"] == "InvalidObject"
    assert over.json()["errors"][0]["field"] == "amount"
    for bad in ({}, {"amount": 0}, {"amount": -5}, {"amount": "abc"}, {"amount": 1.005}):
        assert http.post(url, json=bad).status_code == 400, bad
    assert http.post(url, json=[1]).status_code == 400
    exact = http.post(url, json={"amount": after["balance"]})
    assert exact.status_code == 201
    assert http.get(f"{cw.api_url}/finance/invoices/{invoice['id']}").json()["balance"] == 0

    r = http.delete(f"{url}/{payment['id']}")
    assert r.status_code == 204
    restored = cw.invoice(invoice["id"])
    assert restored["balance"] == 40.25
    assert http.get(f"{url}/{payment['id']}").status_code == 404
    assert (
        http.post(f"{cw.api_url}/finance/invoices/1/payments", json={"amount": 1}).status_code
        == 404
    )


def test_patch_company_and_invoice(
    cw: ConnectWiseSandbox, http: requests.Session, clock: FakeClock
) -> None:
    company = cw.all_companies()[0]
    url = f"{cw.api_url}/company/companies/{company['id']}"
    clock.advance(5)
    ops = [
        {"op": "replace", "path": "name", "value": "Renamed & Co"},
        {"op": "replace", "path": "status", "value": {"id": 3}},
        {"op": "replace", "path": "customFields", "value": [{"id": 12, "value": False}]},
        {"op": "remove", "path": "invoiceToEmailAddress"},
    ]
    r = http.patch(url, json=ops)
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "Renamed & Co"
    assert body["status"] == {"id": 3, "name": "Credit Hold"}
    assert body["customFields"] == [{"id": 12, "value": False}]  # the whole array is replaced
    assert body["invoiceToEmailAddress"] is None
    assert body["_info"]["lastUpdated"] == "2026-03-01T12:00:05Z"
    # References are joins: the company's invoices now show the new name.
    mine = count(http, cw, "/finance/invoices", 'company/name = "Renamed & Co"')
    assert mine == sum(i["company"]["id"] == company["id"] for i in cw.all_invoices())
    for bad in (
        [{"op": "replace", "path": "id", "value": 1}],
        [{"op": "replace", "path": "nope", "value": 1}],
        [{"op": "move", "path": "name", "value": "x"}],
        [{"op": "replace", "path": "billingContact", "value": {"id": 1}}],
        {"op": "replace", "path": "name", "value": "x"},
        [],
    ):
        assert http.patch(url, json=bad).status_code == 400, bad
    other = cw.all_companies()[1]
    dup = [{"op": "replace", "path": "identifier", "value": other["identifier"].upper()}]
    r = http.patch(url, json=dup)
    assert r.status_code == 400
    assert r.json()["errors"][0]["code"] == "ObjectExists"

    invoice = next(i for i in cw.all_invoices() if i["payments"] == 0 and i["credits"] == 0)
    url = f"{cw.api_url}/finance/invoices/{invoice['id']}"
    r = http.patch(url, json=[{"op": "replace", "path": "subtotal", "value": 200}])
    assert r.status_code == 200
    assert r.json()["total"] == round(200 + invoice["salesTax"], 2)
    assert r.json()["balance"] == r.json()["total"]
    r = http.patch(url, json=[{"op": "replace", "path": "balance", "value": 0}])
    assert r.status_code == 400
    assert http.patch(f"{cw.api_url}/finance/invoices/1", json=ops).status_code == 404


def test_post_and_delete(cw: ConnectWiseSandbox, http: requests.Session) -> None:
    r = http.post(
        cw.api_url + "/company/companies",
        json={"identifier": "NewCo", "name": 'New "Co"', "billingContact": None},
    )
    assert r.status_code == 201
    company = r.json()
    assert company["id"] > max(c["id"] for c in cw.all_companies()[:-1])
    assert company["_info"]["dateEntered"] == "2026-03-01T12:00:00Z"
    dup = http.post(cw.api_url + "/company/companies", json={"identifier": "newco", "name": "X"})
    assert dup.status_code == 400
    assert dup.json()["errors"][0]["code"] == "ObjectExists"
    assert http.post(cw.api_url + "/company/companies", json={"name": "X"}).status_code == 400

    r = http.post(
        cw.api_url + "/finance/invoices",
        json={"company": {"id": company["id"]}, "type": "Standard", "subtotal": 99.5},
    )
    assert r.status_code == 201
    invoice = r.json()
    assert invoice["company"] == {"id": company["id"], "identifier": "NewCo", "name": 'New "Co"'}
    assert invoice["balance"] == 99.5
    assert http.post(cw.api_url + "/finance/invoices", json={"type": "Standard"}).status_code == 400
    assert (
        http.post(cw.api_url + "/finance/invoices", json={"company": {"id": 1}}).status_code == 400
    )

    assert http.delete(f"{cw.api_url}/finance/invoices/{invoice['id']}").status_code == 204
    assert http.get(f"{cw.api_url}/finance/invoices/{invoice['id']}").status_code == 404
    assert http.get(cw.api_url + "/finance/invoices/count").json() == {"count": 120}
    assert http.delete(f"{cw.api_url}/finance/invoices/{invoice['id']}").status_code == 404

    assert http.delete(f"{cw.api_url}/company/companies/{company['id']}").status_code == 204
    soft = http.get(f"{cw.api_url}/company/companies/{company['id']}").json()
    assert soft["deletedFlag"] is True
    assert soft["dateDeleted"] == "2026-03-01T12:00:00Z"


# -- faults, churn, callbacks, config ---------------------------------------------------------


def test_vendor_faults(cw: ConnectWiseSandbox, http: requests.Session) -> None:
    url = cw.api_url + "/company/companies"
    cw.faults.inject(Fault.RATE_LIMIT, route="GET /company/companies", times=2, retry_after=3)
    cw.faults.inject(Fault.SERVER_ERROR, route="GET /company/companies", message=TIMEOUT_MESSAGE)
    cw.faults.inject(Fault.EXPIRED_TOKEN, route="GET /company/companies")
    for _ in range(2):
        r = http.get(url)
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "3"
    r = http.get(url)
    assert r.status_code == 500
    assert "timeout" in r.text
    assert r.json()["code"] == "ConnectWiseApi"
    r = http.get(url)
    assert r.status_code == 401
    assert r.json()["code"] == "Unauthorized"
    assert http.get(url).status_code == 200
    assert cw.faults.counts == {Fault.RATE_LIMIT: 2, Fault.SERVER_ERROR: 1, Fault.EXPIRED_TOKEN: 1}


def test_churn_changes_records_between_requests(
    cw: ConnectWiseSandbox, http: requests.Session
) -> None:
    before = cw.all_invoices()
    cw.faults.inject(Fault.CHURN, route="GET /finance/invoices", times=5)
    for _ in range(5):
        assert http.get(cw.api_url + "/finance/invoices").status_code == 200
    assert cw.all_invoices() != before
    assert cw.faults.count(Fault.CHURN) == 5


def test_callback_signing_key_and_signature(cw: ConnectWiseSandbox) -> None:
    r = requests.get(cw.key_url, timeout=5)  # fetched without credentials (nango)
    assert r.status_code == 200
    key = r.json()["signing_key"]
    invoice = cw.all_invoices()[0]
    payload = cw.callback_payload("updated", "invoice", invoice["id"], invoice)
    assert payload["Metadata"]["key_url"] == cw.key_url
    assert json.loads(payload["Entity"])["id"] == invoice["id"]
    body = json.dumps(payload).encode()
    expected = base64.b64encode(
        hmac.new(hashlib.sha256(key.encode()).digest(), body, hashlib.sha256).digest()
    ).decode()
    assert cw.sign(body) == expected
    assert requests.get(cw.key_url + "x", timeout=5).status_code == 404


def test_config_snippet(cw: ConnectWiseSandbox) -> None:
    conf = tomllib.loads(cw.config_snippet("psa"))["connections"]["psa"]
    assert conf == {
        "connector": "connectwise",
        "base_url": cw.base_url,
        "company_id": cw.company_id,
        "public_key": cw.public_key,
        "private_key": cw.private_key,
        "client_id": cw.client_id,
    }


# -- the conditions parser on its own ---------------------------------------------------------


def test_conditions_parser_directly() -> None:
    node = parse('a = 1 OR b = "x\\"y\\\\z" aNd c = [2024-01-01T00:00:00Z]')
    assert isinstance(node, BoolOp)
    assert node.op == "or"
    right = node.items[1]
    assert isinstance(right, BoolOp)
    assert right.op == "and"
    first = right.items[0]
    assert isinstance(first, Compare)
    assert first.value.value == 'x"y\\z'
    schema = Schema.from_record({"name": "", "n": 0, "flag": False, "_info": {"lastUpdated": ""}})
    rows: list[dict[str, Any]] = [
        {
            "name": 'A "b" \\ c',
            "n": 1,
            "flag": True,
            "_info": {"lastUpdated": "2024-01-01T00:00:00Z"},
        },
        {"name": "100% real", "n": 2, "flag": False, "_info": {"lastUpdated": None}},
    ]

    def hits(text: str) -> list[int]:
        pred = compile_conditions(text, schema)
        return [r["n"] for r in rows if pred(r)]

    assert hits('name = "a \\"B\\" \\\\ C"') == [1]  # case-insensitive values
    assert hits('name like "100%"') == [2]
    assert hits('name like "%\\\\%"') == [1]
    assert hits("flag = TRUE") == [1]
    assert hits("_info/lastUpdated = null") == [2]
    assert hits("_info/lastUpdated != null and n in (1, 2)") == [1]
    assert hits("_info/lastUpdated >= [2023-12-31T23:59:59.999Z]") == [1]
    assert hits("_info/lastUpdated <= [2023-12-31T23:59:59.999Z]") == []
    assert hits('n = "2"') == [2]  # numbers compare with quoted numbers
    with pytest.raises(ConditionError, match="not_a_field is not a recognized name"):
        compile_conditions("n = 1 or not_a_field = 1", schema)
