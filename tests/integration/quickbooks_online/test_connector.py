"""The real QuickBooks Online connector against the QuickBooks Online emulator, over loopback HTTP.

Time is a ``FakeClock`` shared by the emulator (``MetaData`` stamps, token expiry), the connector
(retries, rate limits and the token vault sleep on it, instantly) and the sync engine. Tokens live
in a real SQLite store, as in production.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from connectors.quickbooks_online import (
    DepositLine,
    QuickBooksOnlineConnector,
    QuickBooksOnlineSettings,
)
from connectors.quickbooks_online.sandbox import QuickBooksSandbox, card_fee
from syncd.config.models import ConnectionSettings
from syncd.connector import ConnectorContext, Cursor, Page, PaymentPush, PushAccounts, Stream
from syncd.errors import SkippableError
from syncd.model import Invoice, InvoiceStatus, PaymentMethod
from syncd.ratelimit import REGISTRY
from syncd.sandbox import Fault
from syncd.store import open_store
from syncd.store.tables import invoices
from syncd.sync import sync_connection
from syncd.testing import FakeClock

START = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
PAYMENT_ROUTE = "POST /v3/company/{realm}/{entity}"


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    REGISTRY.clear()  # a limiter keeps the clock it was made with; each test has its own
    yield
    REGISTRY.clear()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def sandbox(clock: FakeClock) -> Iterator[QuickBooksSandbox]:
    with QuickBooksSandbox(seed=7, clock=clock, throttle=False) as qbo:
        yield qbo
        assert qbo.server.errors == []


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Engine]:
    engine = open_store(f"sqlite:///{tmp_path / 'syncd.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def make(sandbox: QuickBooksSandbox, clock: FakeClock, store: Engine) -> Iterator[Any]:
    made: list[QuickBooksOnlineConnector] = []

    def build(target: QuickBooksSandbox | None = None, **over: Any) -> QuickBooksOnlineConnector:
        snippet = tomllib.loads((target or sandbox).config_snippet("qbo"))
        values = {k: v for k, v in snippet["connections"]["qbo"].items() if k != "connector"}
        values.update(over)
        context = ConnectorContext(
            connection="qbo",
            clock=clock,
            extras={"engine": store, "store_url": str(store.url)},
        )
        connector = QuickBooksOnlineConnector(QuickBooksOnlineSettings(**values), context)
        made.append(connector)
        return connector

    yield build
    for connector in made:
        connector.close()


def pull_all(connector: QuickBooksOnlineConnector, stream: Stream, **cursor: Any) -> list[Page]:
    return list(connector.pull(stream, Cursor(**cursor)))


def ids(pages: list[Page]) -> list[str]:
    return [record.external_id for page in pages for record in page.records]


def open_invoice(qbo: QuickBooksSandbox, skip: int = 0) -> dict[str, Any]:
    """An unpaid, unvoided invoice of an active customer, of at least 10.00."""
    active = {c["Id"] for c in qbo.all_customers() if c["Active"]}
    voided = set(qbo.voided_ids("Invoice"))
    found = [
        inv
        for inv in qbo.all_invoices()
        if inv["Id"] not in voided
        and inv["CustomerRef"]["value"] in active
        and not inv.get("LinkedTxn")
        and Decimal(str(inv["Balance"])) >= 10
    ]
    return found[skip]


def push_for(invoice: dict[str, Any], n: int = 1, **over: Any) -> PaymentPush:
    values: dict[str, Any] = {
        "key": f"pay_{n}:qbo",
        "marker": f"syncd:pay_{n}",
        "invoice_external_id": invoice["Id"],
        "customer_external_id": invoice["CustomerRef"]["value"],
        "amount": Decimal("10.00"),
        "fee": Decimal("0.59"),
        "currency": "USD",
        "method": PaymentMethod.CARD,
        "received_at": START,
        "memo": "Card payment ch_1",
        "accounts": PushAccounts(payment_method="Visa", fee_account="Merchant Fees"),
    }
    values.update(over)
    return PaymentPush(**values)


def balance(qbo: QuickBooksSandbox, invoice_id: str) -> Decimal:
    return Decimal(str(qbo.invoice(invoice_id)["Balance"]))


# -- check ----------------------------------------------------------------------------------------


def test_check_ok(make: Any) -> None:
    verdict = make().check()
    assert verdict.ok, verdict.detail
    assert "Sandbox Company_US_1" in verdict.detail


def test_check_with_bad_credentials_says_reconnect_without_secrets(
    make: Any, sandbox: QuickBooksSandbox
) -> None:
    secret = "wrong-" + sandbox.client_secret
    verdict = make(client_secret=secret, refresh_token="wrong-" + sandbox.refresh_token).check()
    assert not verdict.ok
    assert "credentials" in verdict.detail and "syncd auth qbo" in verdict.detail
    assert secret not in verdict.detail


def test_check_names_realm_id_when_the_token_is_for_another_company(make: Any) -> None:
    verdict = make(realm_id="123145").check()
    assert not verdict.ok
    assert "another company: check realm_id" in verdict.detail


# -- pulls ----------------------------------------------------------------------------------------


def test_full_pull_delivers_every_customer_and_live_invoice_once(
    make: Any, sandbox: QuickBooksSandbox
) -> None:
    connector = make(page_size=25)
    customers = ids(pull_all(connector, Stream.CUSTOMERS))
    pages = pull_all(connector, Stream.INVOICES)
    found = ids(pages)

    assert sorted(customers) == sorted(c["Id"] for c in sandbox.all_customers())
    assert any(not c["Active"] for c in sandbox.all_customers())  # inactive ones included
    assert len(found) == len(set(found))
    assert set(found) == {i["Id"] for i in sandbox.all_invoices()}
    assert not set(found) & set(sandbox.deleted_ids("Invoice"))
    statuses = {r.external_id: r.status for p in pages for r in p.records if isinstance(r, Invoice)}
    assert {i for i, s in statuses.items() if s is InvoiceStatus.VOID} == set(
        sandbox.voided_ids("Invoice")
    )
    assert all(not p.deleted for p in pages)  # a full pass never asks CDC


def test_incremental_pull_sees_edits_and_cdc_deletions(
    make: Any, sandbox: QuickBooksSandbox, clock: FakeClock
) -> None:
    connector = make()
    since = clock.now()
    clock.advance(60)
    edited = open_invoice(sandbox)
    sandbox.update_invoice(edited["Id"], PrivateNote="edited")
    doomed = open_invoice(sandbox, 1)
    sandbox.delete_invoice(doomed["Id"])
    customer = sandbox.all_customers()[0]
    sandbox.update_customer(customer["Id"], CompanyName="Renamed Ltd")

    invoice_pages = pull_all(connector, Stream.INVOICES, since=since)
    customer_pages = pull_all(connector, Stream.CUSTOMERS, since=since)

    assert ids(invoice_pages) == [edited["Id"]]
    assert invoice_pages[-1].deleted == (doomed["Id"],)
    assert ids(customer_pages) == [customer["Id"]]


def test_the_engine_end_to_end(
    make: Any, sandbox: QuickBooksSandbox, clock: FakeClock, store: Engine
) -> None:
    settings = ConnectionSettings(name="qbo", connector="quickbooks_online")
    connector = make()
    counts = [len(sandbox.all_customers()), len(sandbox.all_invoices())]
    first = sync_connection(store, settings, connector, clock=clock)
    clock.advance(600)
    second = sync_connection(store, settings, connector, clock=clock)
    doomed = open_invoice(sandbox)
    sandbox.delete_invoice(doomed["Id"])
    clock.advance(600)
    third = sync_connection(store, settings, connector, clock=clock)

    assert all(r.ok for r in first + second + third), [r.error for r in first + second + third]
    assert [r.created for r in first] == counts
    assert all(r.created == r.updated == r.deleted == 0 for r in second)
    assert third[1].deleted == 1
    with store.connect() as conn:
        row = conn.execute(select(invoices).where(invoices.c.external_id == doomed["Id"])).one()
    assert row.status == "deleted" and row.deleted_at is not None


def test_the_emulators_throttle_is_honoured(make: Any, clock: FakeClock) -> None:
    # Stricter than Intuit (3 a second), so the 429 comes although we keep Intuit's limits.
    with QuickBooksSandbox(
        seed=7, clock=clock, per_second=3, monotonic=clock.monotonic
    ) as throttled:
        found = ids(pull_all(make(throttled, page_size=10), Stream.INVOICES))
        assert len(found) == len(throttled.all_invoices())
        assert throttled.throttle.refused >= 1
        assert 60.0 in clock.slept  # the XML 429 carries no Retry-After: Intuit's 60 s


def test_our_limiter_keeps_us_under_the_realm_limit(make: Any, clock: FakeClock) -> None:
    with QuickBooksSandbox(seed=7, clock=clock, monotonic=clock.monotonic) as throttled:
        connector = make(throttled, page_size=5)
        assert len(ids(pull_all(connector, Stream.INVOICES))) == len(throttled.all_invoices())
        assert throttled.throttle.refused == 0


# -- tokens ---------------------------------------------------------------------------------------


def test_rotated_tokens_are_shared_through_the_store(
    make: Any, sandbox: QuickBooksSandbox, clock: FakeClock
) -> None:
    seed = sandbox.refresh_token
    first = make()
    assert first.check().ok
    assert sandbox.refresh_token != seed  # the emulator rotated it on that refresh
    sandbox.expire_access_tokens()

    second = make(refresh_token=seed)  # a new worker, configured with the (now dead) seed
    assert second.check().ok  # 401 → refresh with the rotated token from the store
    clock.advance(7200)
    assert first.check().ok  # the first worker reads what the second stored
    grants = [e for e in sandbox.log.entries if e.path.endswith("/tokens/bearer")]
    assert len(grants) == 3


# -- payments -------------------------------------------------------------------------------------


def test_push_payment_reduces_the_balance_and_links_the_invoice(
    make: Any, sandbox: QuickBooksSandbox
) -> None:
    invoice = open_invoice(sandbox)
    before = balance(sandbox, invoice["Id"])
    receipt = make().push_payment(push_for(invoice))

    assert balance(sandbox, invoice["Id"]) == before - Decimal("10.00")
    links = sandbox.invoice(invoice["Id"])["LinkedTxn"]
    assert {"TxnId": receipt.external_id, "TxnType": "Payment"} in links
    payment = sandbox.payment(receipt.external_id)
    assert payment["PrivateNote"] == "Card payment ch_1\nsyncd:pay_1"
    assert payment["DepositToAccountRef"]["value"] == sandbox.undeposited_funds_id


def test_the_same_push_twice_makes_one_payment(make: Any, sandbox: QuickBooksSandbox) -> None:
    invoice = open_invoice(sandbox)
    connector = make()
    first = connector.push_payment(push_for(invoice))
    again = make().push_payment(push_for(invoice))  # another process, same key
    assert first.external_id == again.external_id
    assert len(sandbox.payments_for_invoice(invoice["Id"])) == 1


@pytest.mark.parametrize("fault", [Fault.DROP, Fault.TRUNCATE])
def test_a_lost_answer_is_resent_with_its_requestid_and_lands_once(
    make: Any, sandbox: QuickBooksSandbox, fault: Fault
) -> None:
    invoice = open_invoice(sandbox)
    connector = make()
    connector.writer.account_id(None)  # look-ups first, so the fault hits the payment POST
    connector.writer.ref_id("PaymentMethod", "Visa")
    sandbox.faults.inject(fault, route="POST /payment")

    receipt = connector.push_payment(push_for(invoice))

    assert sandbox.faults.count(fault) == 1
    assert [p["Id"] for p in sandbox.payments_for_invoice(invoice["Id"])] == [receipt.external_id]


def test_find_payment_by_marker(make: Any, sandbox: QuickBooksSandbox) -> None:
    invoice = open_invoice(sandbox)
    connector = make()
    pushed = connector.push_payment(push_for(invoice))
    found = connector.find_payment(push_for(invoice))
    assert found is not None and found.external_id == pushed.external_id
    assert connector.find_payment(push_for(invoice, 2)) is None


def test_a_refused_payment_is_skippable(make: Any, sandbox: QuickBooksSandbox) -> None:
    invoice = open_invoice(sandbox)
    too_much = balance(sandbox, invoice["Id"]) + 1
    with pytest.raises(SkippableError):
        make().push_payment(push_for(invoice, amount=too_much))
    assert sandbox.payments_for_invoice(invoice["Id"]) == []


def test_a_card_fee_is_booked_through_a_deposit(make: Any, sandbox: QuickBooksSandbox) -> None:
    invoice = open_invoice(sandbox)
    connector = make(deposit_bank_account="Checking")
    push = push_for(invoice, fee=card_fee(Decimal("10.00")))
    payment = connector.push_payment(push)

    deposit = connector.book_fee(push, payment)
    again = connector.book_fee(push, payment)  # same requestid: Intuit replays, no second one

    assert again.external_id == deposit.external_id
    stored = sandbox.deposit(deposit.external_id)
    assert Decimal(str(stored["TotalAmt"])) == Decimal("10.00") - push.fee
    assert sandbox.deposit_of(payment.external_id) == deposit.external_id
    assert "syncd:pay_1" in stored["PrivateNote"]
    found = connector.find_deposit("syncd:pay_1", START)
    assert found is not None and found.external_id == deposit.external_id


def test_a_payout_groups_several_payments(make: Any, sandbox: QuickBooksSandbox) -> None:
    connector = make(deposit_bank_account="Checking")
    first, second = open_invoice(sandbox), open_invoice(sandbox, 1)
    a = connector.push_payment(push_for(first, 1))
    b = connector.push_payment(push_for(second, 2))
    lines = [DepositLine(a.external_id, Decimal("10.00")), DepositLine(b.external_id, Decimal(10))]
    deposit = connector.book_deposit(
        "po_1:qbo",
        "syncd:po_1",
        lines,
        Decimal("1.18"),
        fee_account="Merchant Fees",
        deposited_at=START,
    )
    assert Decimal(str(sandbox.deposit(deposit.external_id)["TotalAmt"])) == Decimal("18.82")


def test_a_batch_of_25_payments(make: Any, sandbox: QuickBooksSandbox) -> None:
    targets = [open_invoice(sandbox, n) for n in range(25)]
    before = {i["Id"]: balance(sandbox, i["Id"]) for i in targets}
    connector = make()
    pushes = [push_for(inv, n, amount=Decimal("5.00")) for n, inv in enumerate(targets)]

    results = connector.push_payments(pushes)
    again = connector.push_payments(pushes)  # the same batch: replayed, nothing new

    assert [getattr(r, "external_id", r) for r in results] == [
        getattr(r, "external_id", r) for r in again
    ]
    assert all(balance(sandbox, i) == b - 5 for i, b in before.items())
    batches = [e for e in sandbox.log.entries if e.path.endswith("/batch")]
    assert len(batches) == 2
    found = connector.find_payment(pushes[7])
    assert found is not None and found.external_id == getattr(results[7], "external_id", None)
