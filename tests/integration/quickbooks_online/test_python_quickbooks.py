"""python-quickbooks + intuit-oauth pointed at the emulator, as research §1.12 describes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from intuitlib.client import AuthClient
from quickbooks import QuickBooks
from quickbooks.exceptions import AuthorizationException, QuickbooksException
from quickbooks.objects.customer import Customer
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.payment import Payment, PaymentLine

from connectors.quickbooks_online.sandbox import QuickBooksSandbox


@pytest.fixture
def auth_client(qbo: QuickBooksSandbox) -> Iterator[AuthClient]:
    # ``environment`` that is neither production nor sandbox is fetched as the discovery URL;
    # holding an access token means QuickBooks() will not refresh at construction.
    client = AuthClient(
        qbo.client_id,
        qbo.client_secret,
        "http://localhost:8765/callback",
        environment=qbo.discovery_url,
        access_token=qbo.issue_access_token(),
        refresh_token=qbo.refresh_token,
        realm_id=qbo.realm_id,
    )
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def qb(
    qbo: QuickBooksSandbox, auth_client: AuthClient, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    # python-quickbooks sends through requests-oauthlib's OAuth2Session, which refuses plain
    # http unless told otherwise; the emulator serves http on loopback.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    client = QuickBooks(
        auth_client=auth_client,
        refresh_token=qbo.refresh_token,
        company_id=qbo.realm_id,
        minorversion=75,
        use_decimal=True,
    )
    client.api_url_v3 = qbo.api_url  # instance attribute shadows the class default
    assert client.sandbox is False  # environment is our URL, so api_url → api_url_v3
    try:
        yield client
    finally:
        client.session.close()


def test_discovery_through_intuitlib(qbo: QuickBooksSandbox, auth_client: AuthClient) -> None:
    assert auth_client.token_endpoint == qbo.token_url
    assert auth_client.revoke_endpoint == qbo.revoke_url
    old = auth_client.refresh_token
    auth_client.refresh()  # form post with Basic auth, rotated token copied onto the client
    assert auth_client.refresh_token == qbo.refresh_token != old
    assert auth_client.expires_in == 3600
    assert auth_client.x_refresh_token_expires_in == 8_726_400


def test_where_query_and_payment_save(qbo: QuickBooksSandbox, qb: Any) -> None:
    invoices = Invoice.where(
        "Balance > '0'", order_by="MetaData.LastUpdatedTime", max_results=1000, qb=qb
    )
    assert invoices
    assert all(inv.Balance > 0 for inv in invoices)
    active = {c["Id"] for c in qbo.all_customers() if c["Active"]}
    voided = set(qbo.voided_ids("Invoice"))
    target = next(
        inv
        for inv in invoices
        if inv.CustomerRef.value in active and inv.Id not in voided and inv.Balance > 10
    )
    assert Invoice.count("Balance > '0'", qb=qb) == len(invoices)
    assert Invoice.get(target.Id, qb=qb).DocNumber == target.DocNumber

    payment = Payment()
    payment.CustomerRef = target.CustomerRef
    payment.TotalAmt = Decimal("10.00")
    line = PaymentLine()
    line.Amount = Decimal("10.00")
    line.LinkedTxn.append(target.to_linked_txn())
    payment.Line.append(line)
    payment.PrivateNote = "syncd:pay_42"
    request_id = uuid.uuid4().hex
    before = len(qbo.payments_for_invoice(target.Id))
    saved = payment.save(qb=qb, request_id=request_id)
    assert saved.Id
    assert saved.UnappliedAmt == 0
    again = payment.save(qb=qb, request_id=request_id)  # same Id set by save(): an update
    assert again.Id == saved.Id
    assert len(qbo.payments_for_invoice(target.Id)) == before + 1
    assert Decimal(str(qbo.invoice(target.Id)["Balance"])) == target.Balance - 10
    found = Payment.filter(CustomerRef=target.CustomerRef.value, qb=qb)
    assert saved.Id in {p.Id for p in found}

    name = "O'Brien & Sons"  # python-quickbooks escapes the quote
    assert [c.DisplayName for c in Customer.filter(DisplayName=name, Active=True, qb=qb)] == [name]


def test_faults_reach_python_quickbooks(qbo: QuickBooksSandbox, qb: Any) -> None:
    with pytest.raises(QuickbooksException) as err:
        Invoice.query("SELECT * FROM Invoice WHERE Balance > '0' OR Balance < '0'", qb=qb)
    assert err.value.error_code == 4000
    qbo.expire_access_tokens()
    with pytest.raises(AuthorizationException):
        Invoice.get(qbo.all_invoices()[0]["Id"], qb=qb)
