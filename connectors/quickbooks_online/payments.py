"""Payments into QuickBooks Online: one at a time, in batches, and card fees through deposits.

Exactly once, three ways (DESIGN "a payment reaches each target exactly once"):

- **requestid** (research/accounting-apis.md 1.7): every create carries one derived from the push's
  key (``client.request_id``), so a create whose answer was lost is re-sent and Intuit answers
  with the payment it already made;
- **a marker in ``PrivateNote``**: the push's marker, after the memo if there is one;
- **a search before any re-send** (``find_payment``): QBO filters only on an entity's indexed
  properties, and ``Payment.PrivateNote`` is not known to be one (unverified; the emulator
  refuses it), so we list the customer's payments created since the push's ``received_at`` (less
  a day of clock skew) with ``CustomerRef`` and ``MetaData.CreateTime``, and match the marker
  client-side.

Intuit replays *any* answer to a repeated requestid, a refusal included: a push refused (a closed
period, say) and re-queued after a person fixed the cause needs a new key, or it meets the same
refusal again.

A payment applies to its invoice through ``Line[].LinkedTxn`` (``TxnType: "Invoice"``), for the
gross amount the customer paid; Intuit then reduces the invoice's ``Balance`` and links the
payment back (research 1.5). It goes to the connection's ``deposit_account`` (default
``Undeposited Funds``, where QuickBooks Payments itself puts card payments, research 1.6).

**Card fees** (research 1.6, pattern A): the processor pays out the net, so the payout is booked as
a Deposit from Undeposited Funds to the bank (``deposit_bank_account``) with one ``LinkedTxn`` line
per payment (``TxnType: "Payment"``, no ``DetailType``: with one Intuit answers 2020,
python-quickbooks#329) and one negative ``DepositLineDetail`` line on the fee account, so the
deposit equals the money that reached the bank and the fee is an expense, never less revenue.
``book_deposit`` takes several payments, for payouts that group them; ``book_fee`` is the one-
payment case. A deposit is exactly-once the same way: ``requestid`` = key + ``-dep``, the marker
in its ``PrivateNote``, ``find_deposit`` to settle an uncertain one.

**Batch** (research 1.8): ``push_many`` sends up to 30 creates per ``POST /batch``. Its requestid
is a digest of the items' keys in order, so an in-process re-send of the same batch is a replay;
an item's ``Fault`` becomes the error a single create would have raised. A batch that failed as a
whole leaves each of its items uncertain: the outbox settles them with ``find_payment`` (the
markers are in every item) before sending any of them again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any, Final

from connectors.quickbooks_online.client import (
    MAX_BATCH_ITEMS,
    MAX_BATCH_REQUEST_ID,
    MAX_RESULTS,
    QuickBooksClient,
    request_id,
)
from connectors.quickbooks_online.errors import item_error
from syncd.connector import DepositLine, PaymentPush, PushReceipt
from syncd.currency import json_amount
from syncd.errors import ConnectorError, FatalError, SkippableError, UncertainWrite
from syncd.query import qbo_select

UNDEPOSITED_FUNDS: Final = "Undeposited Funds"
MAX_REF_NUM: Final = 21  # PaymentRefNum, as DocNumber (research 1.5; UNVERIFIED for payments)
MAX_NOTE: Final = 4000  # PrivateNote
SKEW: Final = dt.timedelta(days=1)


class PaymentWriter:
    """Writes payments and deposits for one company; names of accounts are looked up once."""

    def __init__(self, client: QuickBooksClient, *, bank_account: str | None) -> None:
        self.client = client
        self.bank_account = bank_account
        self._ids: dict[tuple[str, str], str] = {}

    # -- payments --------------------------------------------------------------------------------

    def push(self, push: PaymentPush) -> PushReceipt:
        created = self.client.create("Payment", self.payment_body(push), request_id=key_id(push))
        return PushReceipt(external_id=str(created["Id"]), raw=created)

    def find(self, push: PaymentPush) -> PushReceipt | None:
        where = [
            ("CustomerRef", "=", push.customer_external_id),
            ("MetaData.CreateTime", ">=", push.received_at - SKEW),
        ]
        for row in self._rows("Payment", where):
            if push.marker in str(row.get("PrivateNote") or ""):
                return PushReceipt(external_id=str(row["Id"]), raw=row)
        return None

    def push_many(self, pushes: Sequence[PaymentPush]) -> list[PushReceipt | ConnectorError]:
        """One result per push, in order: a receipt, or the error for that push alone."""
        results: dict[int, PushReceipt | ConnectorError] = {}
        items: list[tuple[int, dict[str, Any]]] = []
        for index, push in enumerate(pushes):
            try:
                items.append((index, self.payment_body(push)))
            except SkippableError as exc:
                results[index] = exc
        for chunk in _chunks(items, MAX_BATCH_ITEMS):
            keys = "\n".join(key_id(pushes[index]) for index, _ in chunk)
            batch_id = (
                "sdb-" + hashlib.sha256(keys.encode()).hexdigest()[: MAX_BATCH_REQUEST_ID - 4]
            )
            requests = [
                {"bId": str(n), "operation": "create", "Payment": body}
                for n, (_, body) in enumerate(chunk, 1)
            ]
            try:
                answered = self.client.batch(requests, request_id=batch_id)
            except ConnectorError as exc:  # the whole batch: each item has this outcome
                results.update((index, exc) for index, _ in chunk)
                continue
            answers = {str(answer.get("bId")): answer for answer in answered}
            for n, (index, _) in enumerate(chunk, 1):
                results[index] = _receipt(answers.get(str(n)), pushes[index])
        return [results[index] for index in range(len(pushes))]

    def payment_body(self, push: PaymentPush) -> dict[str, Any]:
        amount = json_amount(push.amount)
        body: dict[str, Any] = {
            "CustomerRef": {"value": push.customer_external_id},
            "TotalAmt": amount,
            "TxnDate": _date(push.received_at),
            "Line": [
                {
                    "Amount": amount,
                    "LinkedTxn": [{"TxnId": push.invoice_external_id, "TxnType": "Invoice"}],
                }
            ],
            "DepositToAccountRef": {"value": self.account_id(push.accounts.deposit_account)},
            "PrivateNote": note(push.memo, push.marker),
        }
        if push.accounts.payment_method:
            body["PaymentMethodRef"] = {
                "value": self.ref_id("PaymentMethod", push.accounts.payment_method)
            }
        if push.reference:
            body["PaymentRefNum"] = push.reference[:MAX_REF_NUM]
        return body

    # -- deposits --------------------------------------------------------------------------------

    def deposit(
        self,
        key: str,
        marker: str,
        lines: Sequence[DepositLine],
        fee: Decimal,
        *,
        fee_account: str | None,
        deposited_at: dt.datetime,
        memo: str | None = None,
    ) -> PushReceipt:
        if not lines:
            raise SkippableError("quickbooks_online: a deposit needs at least one payment")
        gross = sum((line.amount for line in lines), Decimal(0))
        if fee < 0 or fee >= gross:
            raise SkippableError(f"quickbooks_online: fee {fee} is outside 0..{gross} (gross)")
        if not self.bank_account:
            raise FatalError(
                "quickbooks_online: set deposit_bank_account (the bank account payouts reach) "
                "to book card fees through deposits"
            )
        body_lines: list[dict[str, Any]] = [
            {
                "Amount": json_amount(line.amount),
                "LinkedTxn": [{"TxnId": line.payment_id, "TxnType": "Payment", "TxnLineId": "0"}],
            }
            for line in lines
        ]
        if fee:
            if not fee_account:
                raise FatalError("quickbooks_online: set fee_account to book card fees")
            body_lines.append(
                {
                    "Amount": json_amount(-fee),
                    "DetailType": "DepositLineDetail",
                    "Description": "Card processing fees",
                    "DepositLineDetail": {"AccountRef": {"value": self.account_id(fee_account)}},
                }
            )
        body = {
            "DepositToAccountRef": {"value": self.account_id(self.bank_account)},
            "TxnDate": _date(deposited_at),
            "PrivateNote": note(memo, marker),
            "Line": body_lines,
        }
        created = self.client.create("Deposit", body, request_id=request_id(key, "-dep"))
        return PushReceipt(external_id=str(created["Id"]), raw=created)

    def find_deposit(self, marker: str, deposited_at: dt.datetime) -> PushReceipt | None:
        where = [("MetaData.CreateTime", ">=", deposited_at - SKEW)]
        for row in self._rows("Deposit", where):
            if marker in str(row.get("PrivateNote") or ""):
                return PushReceipt(external_id=str(row["Id"]), raw=row)
        return None

    # -- references ------------------------------------------------------------------------------

    def account_id(self, name: str | None) -> str:
        return self.ref_id("Account", name or UNDEPOSITED_FUNDS)

    def ref_id(self, entity: str, name: str) -> str:
        """The Id of an account or payment method named ``name`` (``Bank:Checking`` for a
        sub-account; a bare number is taken as an Id when no name matches). Cached."""
        key = (entity, name)
        if key not in self._ids:
            prop = "FullyQualifiedName" if ":" in name else "Name"
            rows = self.client.query_rows(entity, qbo_select(entity, [(prop, "=", name)]))
            if rows:
                self._ids[key] = str(rows[0]["Id"])
            elif name.isdigit():
                self._ids[key] = name
            else:
                raise FatalError(
                    f"quickbooks_online: no active {entity} named {name!r} in company "
                    f"{self.client.realm_id}; check the connection's account settings"
                )
        return self._ids[key]

    def _rows(
        self, entity: str, where: Sequence[tuple[str, str, object]]
    ) -> Iterator[dict[str, Any]]:
        start = 1
        while True:
            statement = qbo_select(
                entity,
                where,
                "MetaData.CreateTime DESC",
                start_position=start,
                max_results=MAX_RESULTS,
            )
            rows = self.client.query_rows(entity, statement)
            yield from rows
            if len(rows) < MAX_RESULTS:
                return
            start += len(rows)


def key_id(push: PaymentPush) -> str:
    return request_id(push.key)


def note(memo: str | None, marker: str) -> str:
    """``PrivateNote``: the memo, then our marker, within Intuit's 4000 characters."""
    if not memo:
        return marker
    room = MAX_NOTE - len(marker) - 1
    return f"{memo[:room]}\n{marker}" if room > 0 else marker


def _date(at: dt.datetime) -> str:
    """``TxnDate``: the UTC calendar date of the instant (syncd keeps instants in UTC)."""
    return at.astimezone(dt.UTC).date().isoformat()


def _receipt(answer: dict[str, Any] | None, push: PaymentPush) -> PushReceipt | ConnectorError:
    where = f"quickbooks_online batch item for {push.key}"
    if answer is None:
        return UncertainWrite(f"{where}: missing from the batch answer")
    if "Fault" in answer:
        fault = answer["Fault"]
        return item_error(fault if isinstance(fault, dict) else {}, where=where)
    payment = answer.get("Payment")
    if not isinstance(payment, dict) or "Id" not in payment:
        return UncertainWrite(f"{where}: answer without the Payment")
    return PushReceipt(external_id=str(payment["Id"]), raw=payment)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


__all__ = [
    "UNDEPOSITED_FUNDS",
    "DepositLine",
    "PaymentWriter",
    "json_amount",
    "key_id",
    "note",
]
