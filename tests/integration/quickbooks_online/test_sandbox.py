"""The QuickBooks Online emulator over real loopback HTTP: writes, money, batch, idempotency."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from decimal import Decimal
from typing import Any

import requests

from connectors.quickbooks_online.sandbox import QuickBooksSandbox, card_fee
from syncd.query import qbo_select
from syncd.sandbox import Fault
from syncd.testing import FakeClock


def code_of(r: requests.Response) -> str:
    assert r.status_code == 400, r.text
    code: str = r.json()["Fault"]["Error"][0]["code"]
    return code


def money(value: Any) -> Decimal:
    return Decimal(str(value))


def pqb_payment(invoice: dict[str, Any], amount: str, total: str | None = None) -> dict[str, Any]:
    """A Payment body as python-quickbooks serialises it (research §1.12): int SyncToken,
    ``domain``/``sparse`` keys, blank ref parts, ``TxnLineId`` 1 and Decimals as strings."""
    return {
        "CustomerRef": {"name": "", "type": "", "value": invoice["CustomerRef"]["value"]},
        "Line": [
            {
                "Amount": amount,
                "LinkedTxn": [{"TxnId": invoice["Id"], "TxnLineId": 1, "TxnType": "Invoice"}],
            }
        ],
        "SyncToken": 0,
        "TotalAmt": total or amount,
        "domain": "QBO",
        "sparse": False,
        "PrivateNote": "syncd:pay_123",
        "PaymentRefNum": "",
    }


# -- reads and the response envelope ---------------------------------------------------------


def test_read_by_id_and_envelope(qbo: QuickBooksSandbox, api: Any) -> None:
    inv = qbo.all_invoices()[0]
    r = api.get(f"/invoice/{inv['Id']}")
    assert r.status_code == 200
    body = r.json()
    assert body["time"] == "2026-03-01T05:00:00.000-07:00"  # company-local, with offset
    got = body["Invoice"]
    assert got == inv
    assert isinstance(got["Id"], str)
    assert isinstance(got["SyncToken"], str)
    assert got["domain"] == "QBO"
    assert got["CurrencyRef"] == {"value": "USD", "name": "United States Dollar"}
    assert got["MetaData"]["LastUpdatedTime"].endswith("-07:00")
    assert got["Line"][-1]["DetailType"] == "SubTotalLineDetail"
    assert r.headers["intuit_tid"]
    assert code_of(api.get("/invoice/999999")) == "610"
    r = api.get("/account/" + qbo.undeposited_funds_id)
    assert r.json()["Account"]["Name"] == "Undeposited Funds"


def test_seeded_money_adds_up(qbo: QuickBooksSandbox) -> None:
    voided = set(qbo.voided_ids("Invoice"))
    states = {"open": 0, "partial": 0, "paid": 0, "void": 0}
    for inv in qbo.all_invoices():
        total, balance = money(inv["TotalAmt"]), money(inv["Balance"])
        applied = sum(qbo.applied_amounts(inv["Id"]).values(), Decimal(0))
        assert balance == total - applied
        assert [x["TxnId"] for x in inv.get("LinkedTxn", [])] == list(
            qbo.applied_amounts(inv["Id"])
        )
        if inv["Id"] in voided:
            states["void"] += 1
            assert total == 0
            assert inv["PrivateNote"] == "Voided"
        elif balance == 0:
            states["paid"] += 1
        elif balance < total:
            states["partial"] += 1
        else:
            states["open"] += 1
    assert all(n > 0 for n in states.values()), states
    assert qbo.voided_ids("Payment")
    multi = [p for p in qbo.all_payments() if len(p["Line"]) > 1]
    assert multi, "a payment settling two invoices"
    for dep in qbo.deposits():
        lines = dep["Line"]
        assert money(dep["TotalAmt"]) == sum((money(x["Amount"]) for x in lines), Decimal(0))
        fee_lines = [x for x in lines if x.get("DetailType") == "DepositLineDetail"]
        assert [money(x["Amount"]) < 0 for x in fee_lines] == [True]
        assert fee_lines[0]["DepositLineDetail"]["AccountRef"]["name"] == "Merchant Fees"
        for line in lines:
            if "LinkedTxn" in line:
                assert "DetailType" not in line
                assert qbo.deposit_of(line["LinkedTxn"][0]["TxnId"]) == dep["Id"]


# -- writes: create, sparse/full update, SyncToken ---------------------------------------------


def test_customer_create_update_and_stale_sync_token(
    qbo: QuickBooksSandbox, api: Any, clock: FakeClock
) -> None:
    r = api.post("/customer", {"DisplayName": "Nimbus IT, LLC", "GivenName": "Ada"})
    assert r.status_code == 200, r.text
    cust = r.json()["Customer"]
    assert (cust["SyncToken"], cust["Active"], cust["Balance"]) == ("0", True, 0)
    created = cust["MetaData"]["LastUpdatedTime"]

    clock.advance(90)
    r = api.post(
        "/customer",
        {"Id": cust["Id"], "SyncToken": 0, "sparse": True, "Notes": "VIP"},  # int SyncToken
    )
    updated = r.json()["Customer"]
    assert updated["SyncToken"] == "1"
    assert (updated["GivenName"], updated["Notes"]) == ("Ada", "VIP")  # sparse keeps the rest
    assert updated["MetaData"]["CreateTime"] == created
    assert updated["MetaData"]["LastUpdatedTime"] > created

    stale = api.post("/customer", {"Id": cust["Id"], "SyncToken": "0", "sparse": True})
    assert code_of(stale) == "5010"
    assert stale.json()["Fault"]["Error"][0]["Message"] == "Stale Object Error"

    # a full update replaces every writable field: Notes and GivenName are gone
    r = api.post("/customer", {"Id": cust["Id"], "SyncToken": "1", "DisplayName": "Nimbus IT"})
    full = r.json()["Customer"]
    assert ("Notes" in full, "GivenName" in full, full["SyncToken"]) == (False, False, "2")

    dup = api.post("/customer", {"DisplayName": "nimbus it"})
    assert code_of(dup) == "6240"
    assert qbo.customer(cust["Id"])["DisplayName"] == "Nimbus IT"
    assert code_of(api.post("/customer", {"Id": "999999", "SyncToken": "0"})) == "610"
    gone = api.post("/customer", {"Id": cust["Id"], "SyncToken": "2"}, operation="delete")
    assert gone.status_code == 400  # customers are deactivated, never deleted


def test_invoice_create_and_doc_number_rules(qbo: QuickBooksSandbox, api: Any) -> None:
    customer = next(c for c in qbo.all_customers() if c["Active"])
    body = {
        "CustomerRef": {"value": customer["Id"]},
        "Line": [
            {
                "Amount": 150,
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "Qty": 2, "UnitPrice": 75},
            },
            {"Amount": 100, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}},
        ],
        # python-quickbooks' Invoice() defaults (research §1.12)
        "DueDate": "",
        "TotalAmt": "",
        "PrivateNote": "",
        "InvoiceLink": "",
        "SyncToken": 0,
        "sparse": False,
        "domain": "QBO",
        "DocNumber": "SYNC-1",
    }
    r = api.post("/invoice", body)
    assert r.status_code == 200, r.text
    inv = r.json()["Invoice"]
    assert (inv["TotalAmt"], inv["Balance"], inv["DocNumber"]) == (150, 150, "SYNC-1")
    assert inv["CustomerRef"] == {"value": customer["Id"], "name": customer["DisplayName"]}
    assert inv["Line"][-1] == {
        "Amount": 150,
        "DetailType": "SubTotalLineDetail",
        "SubTotalLineDetail": {},
    }
    assert code_of(api.post("/invoice", body)) == "6140"  # duplicate DocNumber
    body["DocNumber"] = "X" * 22
    assert code_of(api.post("/invoice", body)) == "2050"
    del body["DocNumber"]
    auto = api.post("/invoice", body).json()["Invoice"]
    assert auto["DocNumber"].isdigit()
    r = api.post("/invoice", {"CustomerRef": {"value": customer["Id"]}})
    assert code_of(r) == "2020"
    inactive = next(c for c in qbo.all_customers() if not c["Active"])
    body["CustomerRef"] = {"value": inactive["Id"]}
    assert code_of(api.post("/invoice", body)) == "610"


# -- payments ------------------------------------------------------------------------------------


def test_payment_applies_to_invoice(
    qbo: QuickBooksSandbox, api: Any, open_invoices: list[dict[str, Any]], clock: FakeClock
) -> None:
    inv = open_invoices[0]
    total = money(inv["TotalAmt"])
    part = (total / 2).quantize(Decimal("0.01"))
    clock.advance(60)
    r = api.post("/payment", pqb_payment(inv, str(part), total=str(part + 5)))
    assert r.status_code == 200, r.text
    pay = r.json()["Payment"]
    assert money(pay["UnappliedAmt"]) == 5
    assert pay["DepositToAccountRef"]["value"] == qbo.undeposited_funds_id  # default
    assert pay["Line"][0]["LinkedTxn"] == [{"TxnId": inv["Id"], "TxnType": "Invoice"}]

    after = api.get(f"/invoice/{inv['Id']}").json()["Invoice"]
    assert money(after["Balance"]) == total - part
    assert after["LinkedTxn"] == [{"TxnId": pay["Id"], "TxnType": "Payment"}]
    assert int(after["SyncToken"]) == int(inv["SyncToken"]) + 1
    assert after["MetaData"]["LastUpdatedTime"] > inv["MetaData"]["LastUpdatedTime"]
    assert [p["Id"] for p in qbo.payments_for_invoice(inv["Id"])] == [pay["Id"]]

    over = api.post("/payment", pqb_payment(inv, str(total)))
    assert code_of(over) == "6000"
    assert "Business Validation Error" in over.json()["Fault"]["Error"][0]["Detail"]
    assert money(qbo.invoice(inv["Id"])["Balance"]) == total - part  # nothing applied

    # paying the rest closes it; voiding the payment reopens it
    rest = api.post("/payment", pqb_payment(inv, str(total - part))).json()["Payment"]
    assert qbo.invoice(inv["Id"])["Balance"] == 0
    r = api.post(
        "/payment",
        {"Id": rest["Id"], "SyncToken": rest["SyncToken"], "sparse": True},
        operation="update",
        include="void",
    )
    voided = r.json()["Payment"]
    assert (voided["TotalAmt"], voided["PrivateNote"], voided["SyncToken"]) == (0, "Voided", "1")
    assert money(qbo.invoice(inv["Id"])["Balance"]) == total - part
    r = api.post("/payment", {"Id": pay["Id"], "SyncToken": "0"}, operation="delete")
    assert r.json()["Payment"] == {"Id": pay["Id"], "status": "Deleted", "domain": "QBO"}
    assert money(qbo.invoice(inv["Id"])["Balance"]) == total
    assert qbo.invoice(inv["Id"])["LinkedTxn"] == []


def test_payment_validation(
    qbo: QuickBooksSandbox, api: Any, open_invoices: list[dict[str, Any]]
) -> None:
    inv, other = open_invoices[0], open_invoices[1]
    body = pqb_payment(inv, "1.00")
    del body["TotalAmt"]
    assert code_of(api.post("/payment", body)) == "6000"
    body = pqb_payment(inv, "5.00", total="4.00")  # applies more than received
    assert code_of(api.post("/payment", body)) == "6000"
    body = pqb_payment(inv, "1.00")
    body["Line"][0]["LinkedTxn"][0]["TxnType"] = 0  # a bare python-quickbooks LinkedTxn()
    assert code_of(api.post("/payment", body)) == "2170"
    if other["CustomerRef"] != inv["CustomerRef"]:
        body = pqb_payment(inv, "1.00")
        body["Line"][0]["LinkedTxn"][0]["TxnId"] = other["Id"]
        assert code_of(api.post("/payment", body)) == "6000"
    assert qbo.payments_for_invoice(inv["Id"]) == []


def test_void_and_delete_invoice(
    qbo: QuickBooksSandbox, api: Any, open_invoices: list[dict[str, Any]], clock: FakeClock
) -> None:
    inv, paid = open_invoices[0], open_invoices[1]
    clock.advance(300)
    r = api.post("/invoice", {"Id": inv["Id"], "SyncToken": inv["SyncToken"]}, operation="void")
    assert r.status_code == 200, r.text
    voided = r.json()["Invoice"]
    assert (voided["TotalAmt"], voided["Balance"], voided["PrivateNote"]) == (0, 0, "Voided")
    assert all(line["Amount"] == 0 for line in voided["Line"])
    assert voided["DocNumber"] == inv["DocNumber"]
    assert int(voided["SyncToken"]) == int(inv["SyncToken"]) + 1
    assert voided["MetaData"]["LastUpdatedTime"] > inv["MetaData"]["LastUpdatedTime"]

    qbo.add_payment(paid["Id"], "1.00")
    fresh = qbo.invoice(paid["Id"])
    refused = api.post(
        "/invoice", {"Id": paid["Id"], "SyncToken": fresh["SyncToken"]}, operation="void"
    )
    assert code_of(refused) == "6000"

    target = open_invoices[2]
    r = api.post(
        "/invoice", {"Id": target["Id"], "SyncToken": target["SyncToken"]}, operation="delete"
    )
    assert r.json()["Invoice"] == {"Id": target["Id"], "status": "Deleted", "domain": "QBO"}
    assert code_of(api.get(f"/invoice/{target['Id']}")) == "610"
    assert target["Id"] in qbo.deleted_ids("Invoice")
    rows = api.rows(qbo_select("Invoice", [("Id", "=", target["Id"])]), "Invoice")
    assert rows == []


# -- deposits ------------------------------------------------------------------------------------


def test_deposit_with_fee_line_locks_payments(
    qbo: QuickBooksSandbox, api: Any, open_invoices: list[dict[str, Any]]
) -> None:
    inv = open_invoices[0]
    gross = money(inv["Balance"])
    pay = api.post("/payment", pqb_payment(inv, str(gross))).json()["Payment"]
    fee = card_fee(gross)
    checking = qbo.account_by_name("Checking")["Id"]
    fees = qbo.account_by_name("Merchant Fees")["Id"]
    line_pay = {"Amount": str(gross), "LinkedTxn": [{"TxnId": pay["Id"], "TxnType": "Payment"}]}
    line_fee = {
        "Amount": str(-fee),
        "DetailType": "DepositLineDetail",
        "DepositLineDetail": {
            "AccountRef": {"value": fees},
            "Entity": {"value": inv["CustomerRef"]["value"], "type": "CUSTOMER"},
        },
    }
    bad = {**line_pay, "DetailType": "DepositLineDetail"}  # python-quickbooks' DepositLine()
    r = api.post("/deposit", {"DepositToAccountRef": {"value": checking}, "Line": [bad]})
    assert code_of(r) == "2020"
    assert "Line.DepositLineDetail.AccountRef" in r.json()["Fault"]["Error"][0]["Detail"]
    r = api.post(
        "/deposit",
        {"DepositToAccountRef": {"value": qbo.undeposited_funds_id}, "Line": [line_pay]},
    )
    assert code_of(r) == "6000"

    r = api.post(
        "/deposit",
        {"DepositToAccountRef": {"value": checking}, "Line": [line_pay, line_fee]},
    )
    assert r.status_code == 200, r.text
    dep = r.json()["Deposit"]
    assert money(dep["TotalAmt"]) == gross - fee
    assert dep["Line"][0]["LinkedTxn"][0]["TxnType"] == "Payment"
    assert dep["Line"][1]["DepositLineDetail"]["AccountRef"]["name"] == "Merchant Fees"
    assert qbo.deposit_of(pay["Id"]) == dep["Id"]

    for params in ({}, {"operation": "delete"}, {"operation": "update", "include": "void"}):
        r = api.post("/payment", {"Id": pay["Id"], "SyncToken": "0", "sparse": True}, **params)
        assert code_of(r) == "6540", params
    again = api.post("/deposit", {"DepositToAccountRef": {"value": checking}, "Line": [line_pay]})
    assert code_of(again) == "6000"  # already deposited

    r = api.post("/deposit", {"Id": dep["Id"], "SyncToken": "0"}, operation="delete")
    assert r.json()["Deposit"]["status"] == "Deleted"
    assert qbo.deposit_of(pay["Id"]) is None
    edit = api.post("/payment", {"Id": pay["Id"], "SyncToken": "0", "sparse": True, "Memo": "x"})
    assert edit.status_code == 200


# -- requestid -----------------------------------------------------------------------------------


def test_requestid_replays_without_side_effects(
    qbo: QuickBooksSandbox, api: Any, open_invoices: list[dict[str, Any]], clock: FakeClock
) -> None:
    inv = open_invoices[0]
    before = len(qbo.all_payments())
    body = pqb_payment(inv, "10.00")
    first = api.post("/payment", body, requestid="syncd-pay-1")
    clock.advance(5)
    second = api.post("/payment", body, requestid="syncd-pay-1")
    assert first.status_code == second.status_code == 200
    assert first.content == second.content  # the stored response, byte for byte
    assert len(qbo.all_payments()) == before + 1
    assert money(qbo.invoice(inv["Id"])["Balance"]) == money(inv["Balance"]) - 10
    third = api.post("/payment", body, requestid="syncd-pay-2")
    assert third.json()["Payment"]["Id"] != first.json()["Payment"]["Id"]
    r = api.post("/payment", body, requestid="x" * 51)
    assert code_of(r) == "2050"
    assert len(qbo.all_payments()) == before + 2
    # a fault is replayed as well: the retry must not suddenly succeed twice
    over = pqb_payment(inv, "999999.00")
    assert code_of(api.post("/payment", over, requestid="syncd-pay-3")) == "6000"
    assert api.post("/payment", body, requestid="syncd-pay-3").status_code == 400


# -- batch ---------------------------------------------------------------------------------------


def test_batch_items_fail_alone(qbo: QuickBooksSandbox, api: Any) -> None:
    existing = next(c for c in qbo.all_customers() if c["Active"])
    items = [
        {"bId": "1", "operation": "create", "Customer": {"DisplayName": "Batch One"}},
        {"bId": "2", "operation": "create", "Customer": {"DisplayName": existing["DisplayName"]}},
        {"bId": "3", "Query": "SELECT * FROM Customer WHERE DisplayName = 'Batch One'"},
        {"bId": "4", "Query": "SELECT * FROM Customer WHERE a = 1 OR b = 2"},
        {"bId": "5", "operation": "update", "Customer": {"Id": existing["Id"], "SyncToken": "9"}},
    ]
    r = api.post("/batch", {"BatchItemRequest": items})
    assert r.status_code == 200
    out = {item["bId"]: item for item in r.json()["BatchItemResponse"]}
    assert out["1"]["Customer"]["DisplayName"] == "Batch One"
    assert out["2"]["Fault"]["Error"][0]["code"] == "6240"
    assert out["2"]["Fault"]["type"] == "ValidationFault"
    assert out["3"]["QueryResponse"]["Customer"][0]["Id"] == out["1"]["Customer"]["Id"]
    assert out["4"]["Fault"]["Error"][0]["code"] == "4000"
    assert out["5"]["Fault"]["Error"][0]["code"] == "5010"

    many = [{"bId": str(i), "Query": "SELECT * FROM Item"} for i in range(31)]
    assert api.post("/batch", {"BatchItemRequest": many}).status_code == 400

    replay_items = [{"bId": "a", "operation": "create", "Customer": {"DisplayName": "Once"}}]
    first = api.post("/batch", {"BatchItemRequest": replay_items}, requestid="batch-1")
    second = api.post("/batch", {"BatchItemRequest": replay_items}, requestid="batch-1")
    assert first.content == second.content
    assert "Customer" in first.json()["BatchItemResponse"][0]
    long_bid = [{"bId": "b" * 11, "Query": "SELECT * FROM Item"}]
    assert (
        api.post("/batch", {"BatchItemRequest": long_bid}, requestid="batch-2").status_code == 400
    )


# -- webhooks --------------------------------------------------------------------------------


def test_webhook_payloads_and_signature(
    qbo: QuickBooksSandbox, open_invoices: list[dict[str, Any]]
) -> None:
    inv = open_invoices[0]
    assert qbo.changes() == []  # seed data is not reported
    qbo.update_invoice(inv["Id"], PrivateNote="changed")
    qbo.add_payment(inv["Id"], "1.00")
    body, headers = qbo.webhook()
    payload = json.loads(body)
    entities = payload["eventNotifications"][0]["dataChangeEvent"]["entities"]
    assert payload["eventNotifications"][0]["realmId"] == qbo.realm_id
    assert [(e["name"], e["operation"]) for e in entities] == [
        ("Invoice", "Update"),
        ("Payment", "Create"),
        ("Invoice", "Update"),
    ]
    assert entities[0]["lastUpdated"].endswith("Z")
    expected = hmac.new(qbo.verifier_token.encode(), body, hashlib.sha256).digest()
    assert base64.b64decode(headers["intuit-signature"]) == expected

    qbo.void_invoice(open_invoices[1]["Id"])
    body, headers = qbo.webhook(cloudevents=True)
    events = json.loads(body)
    assert isinstance(events, list)
    assert events[0]["type"] == "qbo.invoice.voided.v1"
    assert events[0]["intuitaccountid"] == qbo.realm_id
    assert events[0]["intuitentityid"] == open_invoices[1]["Id"]
    assert events[0]["specversion"] == "1.0"
    assert headers["intuit-signature"] == qbo.sign(body)


def test_helpers_bump_sync_token_and_time(
    qbo: QuickBooksSandbox, open_invoices: list[dict[str, Any]], clock: FakeClock
) -> None:
    inv = open_invoices[0]
    clock.advance(dt.timedelta(hours=2).total_seconds())
    changed = qbo.update_invoice(inv["Id"], PrivateNote="late change")
    assert int(changed["SyncToken"]) == int(inv["SyncToken"]) + 1
    assert changed["MetaData"]["LastUpdatedTime"] == "2026-03-01T07:00:00-07:00"
    cust = qbo.add_customer("Helper Co")
    qbo.add_invoice(cust["Id"], "42.00")
    assert qbo.customer(cust["Id"])["Balance"] == 42
    deactivated = qbo.deactivate_customer(cust["Id"])
    assert deactivated["Active"] is False


def test_churn_and_page_hooks_change_records_between_pages(
    qbo: QuickBooksSandbox, api: Any
) -> None:
    served: list[Any] = []
    qbo.server.on_page_served(lambda request, info: served.append(info))
    before = {i["Id"]: i["SyncToken"] for i in qbo.all_invoices()}
    qbo.faults.inject(Fault.CHURN, route="/query", times=5)
    for start in range(1, 126, 25):
        assert api.query(qbo_select("Invoice", start_position=start, max_results=25)).ok
    after = {i["Id"]: i["SyncToken"] for i in qbo.all_invoices()}
    assert before != after
    assert [s["start"] for s in served] == [1, 26, 51, 76, 101]
    assert qbo.faults.count(Fault.CHURN) == 5


def test_malformed_bodies_are_faults(api: Any) -> None:
    r = api.session.post(
        api.qbo.company_url + "/customer",
        data=b"{not json",
        params={"minorversion": 75},
        timeout=5,
    )
    assert code_of(r) == "2010"
    assert code_of(api.post("/customer", ["a list"])) == "2010"
    assert code_of(api.post("/batch", {"BatchItemRequest": []})) == "2020"
    assert api.post("/widget", {}).json()["Fault"]["Error"][0]["code"] == "500"
