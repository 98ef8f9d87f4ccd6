"""Payments, fee deposits and batches as they go on the wire, and what their answers become."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from connectors.quickbooks_online import DepositLine
from connectors.quickbooks_online.payments import json_amount, note
from syncd.connector import PaymentPush, PushAccounts, PushReceipt
from syncd.errors import FatalError, SkippableError, UncertainWrite
from syncd.model import PaymentMethod

API = "https://sandbox-quickbooks.api.intuit.com/v3/company/9130"
RECEIVED = dt.datetime(2026, 3, 4, 23, 30, tzinfo=dt.UTC)
ACCOUNTS = {"Undeposited Funds": "4", "Checking": "35", "Merchant Fees": "80"}


def push(n: int = 1, **over: Any) -> PaymentPush:
    values: dict[str, Any] = {
        "key": f"pay-{n}:qbo",
        "marker": f"syncd:pay-{n}",
        "invoice_external_id": "130",
        "customer_external_id": "58",
        "amount": Decimal("100.10"),
        "fee": Decimal("3.20"),
        "currency": "USD",
        "method": PaymentMethod.CARD,
        "received_at": RECEIVED,
    }
    values.update(over)
    return PaymentPush(**values)


def params(request: requests.PreparedRequest) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(request.url or "").query).items()}


def body(call: Any) -> Any:
    return json.loads(call.request.body)


def lookups(rsps: responses.RequestsMock, *names: str, entity: str = "Account") -> None:
    """Answer the name look-ups (``SELECT * FROM Account WHERE Name = '…'``) in order."""
    for name in names:
        rid = ACCOUNTS.get(name, "9")
        rsps.add("GET", f"{API}/query", json={"QueryResponse": {entity: [{"Id": rid}]}})


def queries(rsps: responses.RequestsMock) -> list[str]:
    return [params(c.request)["query"] for c in rsps.calls if "query" in params(c.request)]


# -- one payment ----------------------------------------------------------------------------------


def test_a_payment_links_the_invoice_with_requestid_and_marker(
    rsps: responses.RequestsMock, make: Any
) -> None:
    lookups(rsps, "Undeposited Funds")
    lookups(rsps, "Visa", entity="PaymentMethod")
    rsps.add("POST", f"{API}/payment", json={"Payment": {"Id": "900", "TotalAmt": 100.1}})
    accounts = PushAccounts(payment_method="Visa")
    target = push(reference="ch_3PqRsTuVwXyZ0123456789", memo="Card payment", accounts=accounts)

    receipt = make().push_payment(target)

    assert receipt.external_id == "900"
    post = rsps.calls[-1]
    assert params(post.request) == {"requestid": "pay-1:qbo", "minorversion": "75"}
    assert post.request.headers["Authorization"] == "Bearer access-1"
    assert body(post) == {
        "CustomerRef": {"value": "58"},
        "TotalAmt": 100.1,  # gross: the fee is booked by the deposit, never netted here
        "TxnDate": "2026-03-04",
        "Line": [{"Amount": 100.1, "LinkedTxn": [{"TxnId": "130", "TxnType": "Invoice"}]}],
        "DepositToAccountRef": {"value": "4"},
        "PaymentMethodRef": {"value": "9"},
        "PaymentRefNum": "ch_3PqRsTuVwXyZ012345",  # cut to 21 characters
        "PrivateNote": "Card payment\nsyncd:pay-1",
    }
    assert queries(rsps) == [
        "SELECT * FROM Account WHERE Name = 'Undeposited Funds'",
        "SELECT * FROM PaymentMethod WHERE Name = 'Visa'",
    ]


def test_account_look_ups_are_cached_and_escaped(rsps: responses.RequestsMock, make: Any) -> None:
    lookups(rsps, "Owner's \\ Bank:Checking")
    rsps.add("POST", f"{API}/payment", json={"Payment": {"Id": "1"}})
    rsps.add("POST", f"{API}/payment", json={"Payment": {"Id": "2"}})
    connector = make()
    accounts = PushAccounts(deposit_account="Owner's \\ Bank:Checking")
    connector.push_payment(push(1, accounts=accounts))
    connector.push_payment(push(2, accounts=accounts))
    assert queries(rsps) == [
        "SELECT * FROM Account WHERE FullyQualifiedName = 'Owner\\'s \\\\ Bank:Checking'"
    ]


def test_an_unknown_account_is_a_fatal_config_problem(
    rsps: responses.RequestsMock, make: Any
) -> None:
    rsps.add("GET", f"{API}/query", json={"QueryResponse": {}})
    with pytest.raises(FatalError, match="no active Account named 'Nope'"):
        make().push_payment(push(accounts=PushAccounts(deposit_account="Nope")))


def test_a_long_key_becomes_a_50_character_requestid(
    rsps: responses.RequestsMock, make: Any
) -> None:
    lookups(rsps, "Undeposited Funds")
    rsps.add("POST", f"{API}/payment", json={"Payment": {"Id": "1"}})
    make().push_payment(push(key="k" * 64))
    assert len(params(rsps.calls[-1].request)["requestid"]) == 50


def test_a_refused_payment_is_skippable(rsps: responses.RequestsMock, make: Any) -> None:
    lookups(rsps, "Undeposited Funds")
    fault = {"Fault": {"Error": [{"Message": "x", "code": "6000"}], "type": "ValidationFault"}}
    rsps.add("POST", f"{API}/payment", status=400, json=fault)
    with pytest.raises(SkippableError, match="6000"):
        make().push_payment(push())


# -- finding a payment by its marker --------------------------------------------------------------


def test_find_payment_lists_the_customers_recent_payments_and_matches_the_marker(
    rsps: responses.RequestsMock, make: Any
) -> None:
    found = [
        {"Id": "7", "PrivateNote": "cheque 2001"},
        {"Id": "8", "PrivateNote": "Card payment\nsyncd:pay-1"},
    ]
    rsps.add("GET", f"{API}/query", json={"QueryResponse": {"Payment": found}})
    receipt = make().find_payment(push())
    assert receipt is not None and receipt.external_id == "8"
    assert queries(rsps) == [
        "SELECT * FROM Payment WHERE CustomerRef = '58' AND MetaData.CreateTime >= "
        "'2026-03-03T23:30:00+00:00' ORDERBY MetaData.CreateTime DESC STARTPOSITION 1 "
        "MAXRESULTS 1000"
    ]


def test_find_payment_pages_and_answers_none_without_a_match(
    rsps: responses.RequestsMock, make: Any
) -> None:
    page = [{"Id": str(n), "PrivateNote": "other"} for n in range(1000)]
    rsps.add("GET", f"{API}/query", json={"QueryResponse": {"Payment": page}})
    rsps.add("GET", f"{API}/query", json={"QueryResponse": {}})
    assert make().find_payment(push()) is None
    assert "STARTPOSITION 1001" in queries(rsps)[1]


# -- fees through a deposit -----------------------------------------------------------------------


def test_a_fee_deposit_links_the_payment_and_books_a_negative_fee_line(
    rsps: responses.RequestsMock, make: Any
) -> None:
    lookups(rsps, "Merchant Fees", "Checking")
    rsps.add("POST", f"{API}/deposit", json={"Deposit": {"Id": "950", "TotalAmt": 96.9}})
    connector = make(deposit_bank_account="Checking")
    target = push(accounts=PushAccounts(fee_account="Merchant Fees"))

    receipt = connector.book_fee(target, PushReceipt("900"))

    assert receipt.external_id == "950"
    post = rsps.calls[-1]
    assert params(post.request)["requestid"] == "pay-1:qbo-dep"
    assert body(post) == {
        "DepositToAccountRef": {"value": "35"},
        "TxnDate": "2026-03-04",
        "PrivateNote": "syncd:pay-1",
        "Line": [
            {
                "Amount": 100.1,
                "LinkedTxn": [{"TxnId": "900", "TxnType": "Payment", "TxnLineId": "0"}],
            },
            {
                "Amount": -3.2,
                "DetailType": "DepositLineDetail",
                "Description": "Card processing fees",
                "DepositLineDetail": {"AccountRef": {"value": "80"}},
            },
        ],
    }


def test_a_payout_of_several_payments_is_one_deposit(
    rsps: responses.RequestsMock, make: Any
) -> None:
    lookups(rsps, "Merchant Fees", "Checking")
    rsps.add("POST", f"{API}/deposit", json={"Deposit": {"Id": "951"}})
    lines = [DepositLine("900", Decimal("100.10")), DepositLine("901", Decimal("50"))]
    make(deposit_bank_account="Checking").book_deposit(
        "payout-po_1",
        "syncd:po_1",
        lines,
        Decimal("4.65"),
        fee_account="Merchant Fees",
        deposited_at=RECEIVED,
        memo="Stripe payout po_1",
    )
    sent = body(rsps.calls[-1])
    assert [line["Amount"] for line in sent["Line"]] == [100.1, 50, -4.65]
    assert sent["PrivateNote"] == "Stripe payout po_1\nsyncd:po_1"


@pytest.mark.parametrize(
    ("fee", "bank", "fee_account", "error"),
    [
        (Decimal("3.20"), None, "Merchant Fees", FatalError),  # no deposit_bank_account
        (Decimal("3.20"), "Checking", None, FatalError),  # no fee_account
        (Decimal("100.10"), "Checking", "Merchant Fees", SkippableError),  # fee = gross
        (Decimal("-1"), "Checking", "Merchant Fees", SkippableError),
    ],
)
def test_a_deposit_that_cannot_be_right_is_refused_before_sending(
    make: Any,
    rsps: responses.RequestsMock,
    fee: Decimal,
    bank: str | None,
    fee_account: str | None,
    error: type[Exception],
) -> None:
    connector = make(deposit_bank_account=bank)
    with pytest.raises(error):
        connector.book_deposit(
            "k",
            "m",
            [DepositLine("900", Decimal("100.10"))],
            fee,
            fee_account=fee_account,
            deposited_at=RECEIVED,
        )
    assert len(rsps.calls) == 0  # refused before any request, the token's included


def test_find_deposit_matches_the_marker(rsps: responses.RequestsMock, make: Any) -> None:
    rows = [{"Id": "1", "PrivateNote": "Card payout"}, {"Id": "2", "PrivateNote": "syncd:po_1"}]
    rsps.add("GET", f"{API}/query", json={"QueryResponse": {"Deposit": rows}})
    found = make().find_deposit("syncd:po_1", RECEIVED)
    assert found is not None and found.external_id == "2"


# -- batches --------------------------------------------------------------------------------------


def test_a_batch_sends_items_and_maps_each_answer(rsps: responses.RequestsMock, make: Any) -> None:
    lookups(rsps, "Undeposited Funds")
    answer = {
        "BatchItemResponse": [
            {"bId": "1", "Payment": {"Id": "501"}},
            {
                "bId": "2",
                "Fault": {"type": "ValidationFault", "Error": [{"code": "6000", "Message": "m"}]},
            },
        ]
    }
    rsps.add("POST", f"{API}/batch", json=answer)
    results = make().push_payments(
        [push(1), push(2), push(3), push(4, amount=Decimal("0.1000000000000000055511151231257827"))]
    )

    first, second, third, fourth = results
    assert getattr(first, "external_id", None) == "501"
    assert isinstance(second, SkippableError)
    assert isinstance(third, UncertainWrite)  # missing from the answer: settle by find_payment
    assert isinstance(fourth, SkippableError)  # not even sent: too many digits for JSON
    sent = body(rsps.calls[-1])
    assert [item["bId"] for item in sent["BatchItemRequest"]] == ["1", "2", "3"]
    assert {item["operation"] for item in sent["BatchItemRequest"]} == {"create"}
    assert sent["BatchItemRequest"][1]["Payment"]["PrivateNote"] == "syncd:pay-2"
    batch_id = params(rsps.calls[-1].request)["requestid"]
    assert len(batch_id) <= 36


def test_batches_hold_thirty_items_and_their_ids_are_deterministic(
    rsps: responses.RequestsMock, make: Any
) -> None:
    lookups(rsps, "Undeposited Funds")

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        items = json.loads(request.body or b"")["BatchItemRequest"]
        found = [{"bId": i["bId"], "Payment": {"Id": f"p{i['bId']}"}} for i in items]
        return 200, {}, json.dumps({"BatchItemResponse": found})

    rsps.add_callback("POST", f"{API}/batch", callback=answer)
    connector = make()
    results = connector.push_payments([push(n) for n in range(31)])
    again = connector.push_payments([push(n) for n in range(31)])

    assert len(results) == 31 and all(hasattr(r, "external_id") for r in results)
    sizes = [
        len(body(c)["BatchItemRequest"]) for c in rsps.calls if "batch" in (c.request.url or "")
    ]
    assert sizes == [30, 1, 30, 1]
    ids = [params(c.request)["requestid"] for c in rsps.calls if "batch" in (c.request.url or "")]
    assert ids[:2] == ids[2:] and ids[0] != ids[1]
    assert len(again) == 31


def test_a_batch_that_fails_whole_leaves_each_item_uncertain(
    rsps: responses.RequestsMock, make: Any
) -> None:
    lookups(rsps, "Undeposited Funds")
    for _ in range(5):
        rsps.add("POST", f"{API}/batch", status=502, body="Bad Gateway")
    results = make().push_payments([push(1), push(2)])
    assert all(isinstance(r, UncertainWrite) for r in results)


# -- pure helpers ---------------------------------------------------------------------------------


def test_json_amounts_are_exact_or_refused() -> None:
    assert json_amount(Decimal("100.10")) == 100.1
    assert json_amount(Decimal("-3.20")) == -3.2
    assert json_amount(Decimal("5.00")) == 5
    with pytest.raises(SkippableError):
        json_amount(Decimal("0.1000000000000000055511151231257827"))
    with pytest.raises(SkippableError):
        json_amount(Decimal("NaN"))


def test_the_note_keeps_the_marker_whole_within_4000_characters() -> None:
    assert note(None, "syncd:x") == "syncd:x"
    long = note("m" * 5000, "syncd:x")
    assert len(long) == 4000 and long.endswith("\nsyncd:x")
