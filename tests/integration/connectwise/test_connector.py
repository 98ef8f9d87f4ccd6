"""The real ConnectWise connector against the ConnectWise sandbox, over loopback HTTP.

Time is a ``FakeClock`` shared by the emulator (it stamps ``_info.lastUpdated``), the connector
(retries and rate limits sleep on it, instantly) and the sync engine.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from connectors.connectwise import ConnectWiseConnector, ConnectWiseSettings
from connectors.connectwise.sandbox import TIMEOUT_MESSAGE, ConnectWiseSandbox
from syncd.config.models import ConnectionSettings
from syncd.connector import ConnectorContext, Cursor, Page, PaymentPush, Stream
from syncd.errors import SkippableError, UncertainWrite
from syncd.model import Customer, Invoice, InvoiceStatus, PaymentMethod
from syncd.query import cw_condition
from syncd.ratelimit import REGISTRY
from syncd.sandbox import AWKWARD_NAMES, Fault
from syncd.store.tables import quarantine
from syncd.sync import sync_connection
from syncd.testing import FakeClock

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
PAYMENTS_ROUTE = "POST /finance/invoices/{id:int}/payments"


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    REGISTRY.clear()  # a limiter keeps the clock it was made with; each test has its own
    yield
    REGISTRY.clear()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def cw(clock: FakeClock) -> Iterator[ConnectWiseSandbox]:
    with ConnectWiseSandbox(seed=5, clock=clock) as sandbox:
        yield sandbox
        assert sandbox.server.errors == []


@pytest.fixture
def make(cw: ConnectWiseSandbox, clock: FakeClock) -> Iterator[Any]:
    made: list[ConnectWiseConnector] = []

    def build(
        sandbox: ConnectWiseSandbox | None = None, extras: dict[str, Any] | None = None, **over: Any
    ) -> ConnectWiseConnector:
        target = sandbox or cw
        values: dict[str, Any] = {
            "base_url": target.base_url,
            "company_id": target.company_id,
            "public_key": target.public_key,
            "private_key": target.private_key,
            "client_id": target.client_id,
        }
        values.update(over)
        connector = ConnectWiseConnector(
            ConnectWiseSettings(**values),
            ConnectorContext(connection="cw", clock=clock, extras=extras or {}),
        )
        made.append(connector)
        return connector

    yield build
    for connector in made:
        connector.close()


def pull_all(
    connector: ConnectWiseConnector, stream: Stream, cursor: Cursor | None = None
) -> list[Page]:
    return list(connector.pull(stream, cursor or Cursor()))


def ids(pages: list[Page]) -> list[str]:
    return [record.external_id for page in pages for record in page.records]


def expected_email(cw: ConnectWiseSandbox, company: dict[str, Any]) -> str | None:
    ref = company.get("billingContact")
    if ref:
        items = [
            item
            for item in cw.contact(ref["id"])["communicationItems"]
            if item["communicationType"] == "Email"
        ]
        items.sort(key=lambda item: not item["defaultFlag"])
        if items:
            return str(items[0]["value"])
    email = company.get("invoiceToEmailAddress")
    return str(email) if email else None


# -- check ----------------------------------------------------------------------------------------


def test_check_ok(make: Any) -> None:
    result = make().check()
    assert result.ok, result.detail
    assert "v4_6_release/" in result.detail


def test_check_bad_keys_401(make: Any) -> None:
    result = make(private_key="wrong-private-key").check()
    assert not result.ok
    assert "rejected the credentials" in result.detail
    assert "wrong-private-key" not in result.detail


def test_check_bad_keys_cloud_404(make: Any, clock: FakeClock) -> None:
    with ConnectWiseSandbox(seed=5, clock=clock, auth_failure_status=404) as cloud:
        result = make(cloud, public_key="nobody").check()
    assert not result.ok
    assert "404" in result.detail and "bad API keys" in result.detail


def test_check_unknown_company(make: Any) -> None:
    result = make(company_id="nosuchco").check()
    assert not result.ok
    assert "does not know company_id 'nosuchco'" in result.detail


# -- pulls ----------------------------------------------------------------------------------------


def test_full_pull_visits_every_record_once_within_the_request_bound(
    make: Any, clock: FakeClock
) -> None:
    with ConnectWiseSandbox(seed=9, clock=clock, companies=1200, invoices=2100) as big:
        connector = make(big)
        customers = pull_all(connector, Stream.CUSTOMERS)
        after_customers = connector.requests_made
        invoices = pull_all(connector, Stream.INVOICES)
        invoice_requests = connector.requests_made - after_customers
        log = big.log.entries
        companies, all_invoices = big.all_companies(), big.all_invoices()

        assert sorted(ids(customers), key=int) == [str(c["id"]) for c in companies]
        by_id = {r.external_id: r for p in customers for r in p.records}
        for company in companies:
            record = by_id[str(company["id"])]
            assert isinstance(record, Customer)
            assert record.name == company["name"]
            assert record.active is not company["deletedFlag"]
            assert record.email == expected_email(big, company)
        assert any(isinstance(r, Customer) and not r.active for r in by_id.values())

    kept = [i for i in all_invoices if i["type"] != "CreditMemo"]
    assert sorted(ids(invoices), key=int) == [str(i["id"]) for i in kept]
    assert connector.credit_memos_skipped == len(all_invoices) - len(kept) > 0
    assert all(not p.rejected for p in customers + invoices)
    invoice = next(r for p in invoices for r in p.records if isinstance(r, Invoice))
    assert isinstance(invoice.total, Decimal)

    company_pages = math.ceil(len(companies) / 1000)
    lists = [e for e in log if e.route and e.route.endswith("/company/companies")]
    lookups = [e for e in log if e.route and e.route.endswith("/company/contacts")]
    assert len(lists) == company_pages == len(customers)
    assert len(lookups) == company_pages  # one billing-contact lookup per page of companies
    assert after_customers == 1 + len(lists) + len(lookups)  # + one codebase discovery
    assert invoice_requests == math.ceil(len(all_invoices) / 1000) == len(invoices)


def test_incremental_pull_returns_just_the_changes(
    make: Any, cw: ConnectWiseSandbox, clock: FakeClock
) -> None:
    connector = make()
    pull_all(connector, Stream.CUSTOMERS)
    pull_all(connector, Stream.INVOICES)
    since = clock.now()
    clock.advance(90)
    companies = cw.all_companies()
    cw.update_company(companies[3]["id"], phoneNumber="555-0000")
    cw.delete_company(companies[5]["id"])
    added = cw.add_company('Newly "Added" & Co\\')
    open_invoice = next(
        i for i in cw.all_invoices() if i["balance"] > 10 and i["type"] != "CreditMemo"
    )
    changed_invoice = cw.all_invoices()[0]
    cw.update_invoice(changed_invoice["id"], internalNotes="changed")
    cw.add_payment(open_invoice["id"], "10.00")

    customers = pull_all(connector, Stream.CUSTOMERS, Cursor(since=since))
    invoices = pull_all(connector, Stream.INVOICES, Cursor(since=since))

    assert sorted(ids(customers), key=int) == sorted(
        [str(companies[3]["id"]), str(companies[5]["id"]), str(added["id"])], key=int
    )
    deleted = next(
        r for p in customers for r in p.records if r.external_id == str(companies[5]["id"])
    )
    assert isinstance(deleted, Customer) and deleted.active is False
    assert set(ids(invoices)) == {str(changed_invoice["id"]), str(open_invoice["id"])} - {
        str(i["id"]) for i in cw.all_invoices() if i["type"] == "CreditMemo"
    }
    paid = next(r for p in invoices for r in p.records if r.external_id == str(open_invoice["id"]))
    assert isinstance(paid, Invoice)
    assert paid.balance == Decimal(str(open_invoice["balance"])) - Decimal("10.00")


def test_resume_from_a_mid_pass_position(make: Any, cw: ConnectWiseSandbox) -> None:
    first = make(page_size=10)
    pages = pull_all(first, Stream.CUSTOMERS)
    assert len(pages) == math.ceil(len(cw.all_companies()) / 10) >= 3
    position = pages[1].next_position
    assert position is not None and "pageId=" in position

    resumed = pull_all(make(page_size=10), Stream.CUSTOMERS, Cursor(position=position))

    assert ids(pages[:2]) + ids(resumed) == ids(pages)


def test_a_moved_codebase_is_rediscovered_mid_pass(make: Any, cw: ConnectWiseSandbox) -> None:
    connector = make(page_size=10)
    stream = connector.pull(Stream.INVOICES, Cursor())
    seen = ids([next(stream)])
    cw.move_codebase("v2026_1/")
    seen += ids(list(stream))

    assert sorted(seen, key=int) == [
        str(i["id"]) for i in cw.all_invoices() if i["type"] != "CreditMemo"
    ]
    assert len(cw.log.find("GET", "/login/companyinfo/sandbox")) == 2
    assert connector.client.codebase == "v2026_1/"


@pytest.mark.parametrize(
    ("fault", "options"),
    [
        (Fault.RATE_LIMIT, {"retry_after": 2}),
        (Fault.SERVER_ERROR, {"status": 500, "message": TIMEOUT_MESSAGE}),
        (Fault.DROP, {}),
        (Fault.TRUNCATE, {}),
    ],
)
def test_pull_survives_faults(
    make: Any, cw: ConnectWiseSandbox, clock: FakeClock, fault: Fault, options: dict[str, Any]
) -> None:
    clean = ids(pull_all(make(page_size=25), Stream.INVOICES))
    clock.slept.clear()
    cw.faults.inject(fault, route="GET /finance/invoices", times=2, **options)

    assert ids(pull_all(make(page_size=25), Stream.INVOICES)) == clean
    assert cw.faults.count(fault) == 2
    if fault is Fault.RATE_LIMIT:
        assert clock.slept.count(2.0) == 2


def test_awkward_names_round_trip_through_conditions(make: Any, cw: ConnectWiseSandbox) -> None:
    cw.add_company("Trailing backslash \\")
    connector = make()
    names = [c["name"] for c in cw.all_companies()]
    awkward = [n for n in names if n in AWKWARD_NAMES or n.endswith("\\")]
    assert any('"' in n for n in awkward) and any("\\" in n for n in awkward)
    assert any("&" in n for n in awkward) and any("'" in n for n in awkward)

    for name in awkward:
        pages = list(
            connector.client.list_pages(
                "company/companies", conditions=cw_condition("name", "=", name)
            )
        )
        found = [r["name"] for p in pages for r in p.records]
        assert found == [n for n in names if n.casefold() == name.casefold()], name


def test_custom_fields_through_a_mapping_override(make: Any, cw: ConnectWiseSandbox) -> None:
    overrides = {"customers": {"xref": {"custom_field": "Billing Region"}}}
    connector = make(extras={"mapping_overrides": overrides})
    customers = {r.external_id: r for p in pull_all(connector, Stream.CUSTOMERS) for r in p.records}
    for company in cw.all_companies():
        region = next(
            cf["value"] for cf in company["customFields"] if cf["caption"] == "Billing Region"
        )
        record = customers[str(company["id"])]
        assert isinstance(record, Customer) and record.xref == region


# -- payments -------------------------------------------------------------------------------------


def push_for(invoice: dict[str, Any], marker: str, amount: str = "12.34") -> PaymentPush:
    return PaymentPush(
        key=marker,
        marker=marker,
        invoice_external_id=str(invoice["id"]),
        customer_external_id=str(invoice["company"]["id"]),
        amount=Decimal(amount),
        fee=Decimal("0.50"),
        currency="USD",
        method=PaymentMethod.CARD,
        received_at=START + dt.timedelta(hours=5),
    )


def open_invoice(cw: ConnectWiseSandbox) -> dict[str, Any]:
    return next(
        i
        for i in cw.all_invoices()
        if i["type"] != "CreditMemo" and i["balance"] > 100 and i["payments"] == 0
    )


def test_push_payment_then_find_it_by_marker(make: Any, cw: ConnectWiseSandbox) -> None:
    connector = make()
    invoice = open_invoice(cw)
    push = push_for(invoice, "syncd-pay-0001")

    assert connector.find_payment(push) is None
    receipt = connector.push_payment(push)

    found = connector.find_payment(push)
    assert found is not None and found.external_id == receipt.external_id
    stored = cw.payments(invoice["id"])[-1]
    assert str(stored["id"]) == receipt.external_id
    assert stored["appliedBy"] == "syncd-pay-0001"
    assert stored["paymentDate"] == "2026-01-01T05:00:00Z"
    assert Decimal(str(stored["amount"])) == Decimal("12.34")
    assert Decimal(str(cw.invoice(invoice["id"])["balance"])) == Decimal(
        str(invoice["balance"])
    ) - Decimal("12.34")
    assert connector.find_payment(push_for(invoice, "syncd-pay-other")) is None


@pytest.mark.parametrize(("fault", "landed"), [(Fault.DROP, False), (Fault.TRUNCATE, True)])
def test_uncertain_push_is_settled_by_find_payment(
    make: Any, cw: ConnectWiseSandbox, fault: Fault, landed: bool
) -> None:
    connector = make()
    invoice = open_invoice(cw)
    push = push_for(invoice, f"syncd-pay-{fault.value}")
    cw.faults.inject(fault, route=PAYMENTS_ROUTE)

    with pytest.raises(UncertainWrite):
        connector.push_payment(push)

    posts = cw.log.find("POST", f"/finance/invoices/{invoice['id']}/payments")
    assert len(posts) == 1  # never re-sent blindly
    found = connector.find_payment(push)
    assert (found is not None) is landed
    assert len(cw.payments(invoice["id"])) == int(landed)


def test_refused_and_misdirected_payments_are_skippable(make: Any, cw: ConnectWiseSandbox) -> None:
    connector = make()
    invoice = open_invoice(cw)
    with pytest.raises(SkippableError, match="cannot exceed the invoice balance"):
        connector.push_payment(push_for(invoice, "too-much", amount="999999.00"))
    gone = {**invoice, "id": 999_999}
    with pytest.raises(SkippableError, match="does not exist"):
        connector.push_payment(push_for(gone, "gone"))
    assert connector.find_payment(push_for(gone, "gone")) is None


# -- the engine, end to end -----------------------------------------------------------------------


def test_sync_connection_end_to_end_twice(
    make: Any, cw: ConnectWiseSandbox, clock: FakeClock, engine: Engine
) -> None:
    settings = ConnectionSettings(name="cw", connector="connectwise")
    connector = make(page_size=50)

    first = sync_connection(engine, settings, connector, clock=clock)
    clock.advance(600)
    second = sync_connection(engine, settings, connector, clock=clock)

    assert [r.status for r in first + second] == ["succeeded"] * 4, [
        r.error for r in first + second
    ]
    customers, invoices = first
    assert customers.created == len(cw.all_companies())
    assert invoices.created == sum(1 for i in cw.all_invoices() if i["type"] != "CreditMemo")
    assert all(r.created == r.updated == r.quarantined == 0 for r in second)
    assert all(r.requests > 0 for r in first)
    with engine.connect() as conn:
        assert conn.execute(select(quarantine)).all() == []


def test_a_tenant_void_status_makes_the_invoice_void(make: Any, cw: ConnectWiseSandbox) -> None:
    voided = {
        str(row["id"])
        for row in cw.all_invoices()
        if row["status"]["name"] == "Voided" and row["type"] != "CreditMemo"
    }
    assert voided, "the seed has invoices in a Voided billing status"
    connector = make()
    records = [r for page in pull_all(connector, Stream.INVOICES) for r in page.records]
    assert {r.external_id for r in records if r.status == InvoiceStatus.VOID} == voided
