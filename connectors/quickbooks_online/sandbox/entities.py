"""One QBO company: entity tables, write rules and the invoice/payment/deposit arithmetic.

Sources (research §1.5 unless noted; tags as in ``research/accounting-apis.md``):

- every entity carries ``Id`` (string), ``SyncToken`` (string, +1 on each change), ``domain:
  "QBO"``, ``sparse`` and ``MetaData{CreateTime, LastUpdatedTime}`` in company-local time with
  offset [PQB ``mixins.py``; Intuit sample gist e0f09cdb…];
- update = POST with ``Id`` + ``SyncToken``; a wrong SyncToken is 5010 Stale Object Error
  (Intuit error-codes page); ``"sparse": true`` changes only the fields sent, a full update
  replaces every writable field [PQB ``VoidMixin.get_void_data``];
- Customer is a name list, never hard-deleted ("deleted" = ``Active=false``); ``DisplayName`` is
  unique (6240) [PQB ``objects/customer.py``; I error codes 6240];
- Invoice: ``Balance = TotalAmt - payments applied``; an applied Payment adds
  ``LinkedTxn{TxnId, TxnType:"Payment"}`` (developer.intuit.com …/manage-linked-transactions);
  void keeps the invoice with ``TotalAmt``/``Balance`` 0, lines at 0 and ``PrivateNote``
  "Voided" (QuickBooks-V3-PHP-SDK#167; node-quickbooks#105); ``DocNumber`` ≤ 21 chars, duplicates
  are 6140 when the company warns on duplicates;
- Payment: ``CustomerRef`` and ``TotalAmt`` required, ``Line[]{Amount, LinkedTxn[{TxnId, TxnType:
  "Invoice", TxnLineId?}]}``, ``UnappliedAmt`` read-only, lines replaced all-or-nothing; void is
  ``operation=update&include=void`` [PQB ``objects/payment.py``, ``VoidMixin``]; a Payment in a
  Deposit cannot be changed: 6540 (I error codes);
- Deposit: lines either ``{Amount, LinkedTxn:[{TxnId, TxnType:"Payment", TxnLineId:"0"}]}``
  without ``DetailType`` — a DetailType there yields 2020 "Required parameter
  Line.DepositLineDetail.AccountRef is missing" (routablehq/python-quickbooks#329) — or
  ``{Amount, DetailType:"DepositLineDetail", DepositLineDetail:{AccountRef, Entity, …}}``, which
  may be negative (a card fee, research §1.6 pattern A); total = sum of lines - CashBack;
- deletes answer ``{"<Entity>":{"Id","status":"Deleted","domain":"QBO"}}`` and leave a CDC
  tombstone ``{"Id","status":"Deleted","MetaData":{"LastUpdatedTime"}}`` (research §1.4).

Rows are never mutated once stored: every change stores a new dict, so a page being serialised
or a cached result set is never torn by a concurrent write.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from connectors.quickbooks_online.sandbox.common import (
    QBOFault,
    Row,
    business,
    dec,
    local_seconds,
    not_found,
    num,
    parse_instant,
    required,
    too_long,
)
from connectors.quickbooks_online.sandbox.query import (
    EntitySchema,
    Kind,
    Query,
    predicate,
    sort_rows,
)
from connectors.quickbooks_online.sandbox.webhooks import ChangeEvent

HOME_CURRENCY = {"value": "USD", "name": "United States Dollar"}
UNDEPOSITED_FUNDS = "Undeposited Funds"
ZERO = Decimal(0)

SCHEMAS: dict[str, EntitySchema] = {
    s.name: s
    for s in (
        EntitySchema.build(
            "Customer",
            [
                ("DisplayName", Kind.STR),
                ("CompanyName", Kind.STR),
                ("GivenName", Kind.STR),
                ("FamilyName", Kind.STR),
                ("FullyQualifiedName", Kind.STR),
                ("PrimaryEmailAddr", Kind.STR),
                ("Active", Kind.BOOL),
                ("Balance", Kind.NUM),
                ("Job", Kind.BOOL),
            ],
            name_list=True,
        ),
        EntitySchema.build(
            "Invoice",
            [
                ("DocNumber", Kind.STR),
                ("TxnDate", Kind.DATE),
                ("DueDate", Kind.DATE),
                ("CustomerRef", Kind.REF),
                ("TotalAmt", Kind.NUM),
                ("Balance", Kind.NUM),
                ("EmailStatus", Kind.STR),
                ("PrintStatus", Kind.STR),
            ],
        ),
        EntitySchema.build(
            "Payment",
            [
                ("TxnDate", Kind.DATE),
                ("CustomerRef", Kind.REF),
                ("TotalAmt", Kind.NUM),
                ("PaymentRefNum", Kind.STR),
            ],
        ),
        EntitySchema.build("Deposit", [("TxnDate", Kind.DATE), ("TotalAmt", Kind.NUM)]),
        EntitySchema.build(
            "Account",
            [
                ("Name", Kind.STR),
                ("FullyQualifiedName", Kind.STR),
                ("AccountType", Kind.STR),
                ("AccountSubType", Kind.STR),
                ("Classification", Kind.STR),
                ("Active", Kind.BOOL),
                ("CurrentBalance", Kind.NUM),
            ],
            name_list=True,
        ),
        EntitySchema.build(
            "PaymentMethod",
            [("Name", Kind.STR), ("Type", Kind.STR), ("Active", Kind.BOOL)],
            name_list=True,
        ),
        EntitySchema.build(
            "Item",
            [("Name", Kind.STR), ("Type", Kind.STR), ("Active", Kind.BOOL)],
            name_list=True,
        ),
        EntitySchema.build("CompanyInfo", [("CompanyName", Kind.STR)]),
    )
}
TRANSACTIONS = ("Invoice", "Payment", "Deposit")
WRITABLE = frozenset({"Customer", *TRANSACTIONS})
# Ids: one sequence per name list, one shared by all transactions (QBO numbers txns together).
_READ_ONLY = frozenset({"Id", "SyncToken", "MetaData", "domain", "sparse", "status", "time"})
_COMPUTED: dict[str, frozenset[str]] = {
    "Customer": frozenset({"Balance", "BalanceWithJobs", "FullyQualifiedName", "CurrencyRef"}),
    "Invoice": frozenset(
        {"TotalAmt", "Balance", "HomeBalance", "HomeTotalAmt", "LinkedTxn", "CurrencyRef"}
    ),
    "Payment": frozenset({"UnappliedAmt", "CurrencyRef"}),
    "Deposit": frozenset({"TotalAmt", "HomeTotalAmt", "CurrencyRef"}),
}
_FLAT_KEYS = ("CustomerMemo", "BillEmail", "SalesTermRef", "PaymentMethodRef", "ClassRef")
MAX_DOC_NUMBER = 21  # research §1.5
MAX_PAYMENT_REF = 21  # same limit as DocNumber (UNVERIFIED)
STALE_DETAIL = (
    "Stale Object Error : You and root were working on this at the same time. root finished "
    "before you did, so your work was not saved."
)  # Intuit error-codes page (research §1.9)


def clean(value: Any) -> Any:
    """A request body as the emulator reads it: python-quickbooks sends ``None``-free JSON full
    of empty strings and blank refs (``"DueDate": ""``, ``{"value": "", "name": "", "type":
    ""}``, research §1.12); those mean "not given"."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if v is None or v == "":
                continue
            out[k] = clean(v)
        return out
    if isinstance(value, list):
        return [clean(v) for v in value if v is not None and v != ""]
    return value


def ref_value(ref: Any) -> str | None:
    """``{"value": "42"}`` → ``"42"``; a blank or missing ref → None."""
    if isinstance(ref, dict):
        value = ref.get("value")
        if isinstance(value, int | str) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return None


def sync_token(raw: Any) -> int:
    """SyncToken as sent: a string in QBO's own JSON, an int from python-quickbooks."""
    if raw is None or raw == "":
        raise required("SyncToken")
    try:
        return int(str(raw).strip())
    except ValueError:
        raise QBOFault(2010, f"Invalid SyncToken {raw!r}", element="SyncToken") from None


def as_bool(value: Any, field_name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise QBOFault(2010, f"Invalid boolean for {field_name}: {value!r}", element=field_name)


def iso_date(value: Any, field_name: str) -> str:
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        raise QBOFault(
            2010, f"Invalid date for {field_name}: {value!r}", element=field_name
        ) from None


@dataclass
class Table:
    entity: str
    rows: dict[int, Row] = field(default_factory=dict)
    tombstones: dict[int, str] = field(default_factory=dict)  # id -> LastUpdatedTime
    version: int = 0


class Company:
    """The state of one realm and every rule that changes it. Not thread-safe: callers lock."""

    def __init__(
        self,
        *,
        tz: dt.tzinfo,
        now: Callable[[], dt.datetime],
        duplicate_doc_number_error: bool = True,
    ) -> None:
        self.tz = tz
        self.now = now
        self.duplicate_doc_number_error = duplicate_doc_number_error
        self.tables: dict[str, Table] = {name: Table(name) for name in SCHEMAS}
        self._next_id: dict[str, int] = {}
        # derived state
        self.applied: dict[int, dict[int, Decimal]] = {}  # invoice -> payment -> amount
        self.payment_apps: dict[int, dict[int, Decimal]] = {}  # payment -> invoice -> amount
        self.deposited_in: dict[int, int] = {}  # payment -> deposit
        self.deposit_links: dict[int, set[int]] = {}  # deposit -> payments
        self.voided: dict[str, set[int]] = {"Invoice": set(), "Payment": set()}
        self.customer_invoices: dict[int, set[int]] = {}
        self.customer_balance: dict[int, Decimal] = {}
        self.doc_numbers: dict[str, int] = {}  # invoice DocNumber -> id
        self.display_names: dict[str, int] = {}  # casefolded DisplayName -> customer id
        self.events: deque[ChangeEvent] = deque(maxlen=10_000)
        self.recording = True
        self._cache: OrderedDict[tuple[Any, ...], list[Row]] = OrderedDict()
        self._shared: dict[tuple[Any, ...], Row] = {}
        self._next_doc = 1001

    # -- ids, stamps, storage --------------------------------------------------------------------

    def next_id(self, entity: str) -> int:
        key = "txn" if entity in TRANSACTIONS else entity
        value = self._next_id.get(key, 100 if key == "txn" else 1)
        self._next_id[key] = value + 1
        return value

    def stamp(self, at: dt.datetime) -> str:
        return local_seconds(at, self.tz)

    def touch(self, row: Row, at: dt.datetime, *, created: bool) -> None:
        when = self.stamp(at)
        if created:
            row["SyncToken"] = "0"
            row["MetaData"] = {"CreateTime": when, "LastUpdatedTime": when}
        else:
            row["SyncToken"] = str(int(row["SyncToken"]) + 1)
            row["MetaData"] = {"CreateTime": row["MetaData"]["CreateTime"], "LastUpdatedTime": when}

    def put(self, entity: str, row: Row, operation: str | None, at: dt.datetime) -> Row:
        """Store ``row`` (replacing any previous version) and return it."""
        table = self.tables[entity]
        table.rows[int(row["Id"])] = row
        table.version += 1
        if operation and self.recording:
            self.events.append(ChangeEvent(entity, row["Id"], operation, at))
        return row

    def flat(self, value: Any) -> Any:
        """One shared copy of each equal small reference (``{"value": "3", "name": "Net 30"}``,
        ``ItemRef``, ``BillEmail`` …): 100 000 invoices then hold one copy each. Safe because
        stored rows and their parts are never mutated."""
        if not isinstance(value, dict) or len(value) > 4:
            return value
        try:
            ident = tuple((k, type(v), v) for k, v in value.items())
            return self._shared.setdefault(ident, value)
        except TypeError:  # a nested value: leave it alone
            return value

    def _tombstone(self, entity: str, rid: int, at: dt.datetime) -> Row:
        table = self.tables[entity]
        del table.rows[rid]
        table.tombstones[rid] = self.stamp(at)
        table.version += 1
        if self.recording:
            self.events.append(ChangeEvent(entity, str(rid), "Delete", at))
        return {"Id": str(rid), "status": "Deleted", "domain": "QBO"}

    def row(self, entity: str, rid: Any) -> Row:
        """A stored row; 610 when it never existed or was deleted."""
        text = str(rid).strip()
        row = self.tables[entity].rows.get(int(text)) if text.isdigit() else None
        if row is None:
            raise not_found(entity, rid)
        return row

    def find(self, entity: str, **match: Any) -> Row | None:
        for row in self.tables[entity].rows.values():
            if all(row.get(k) == v for k, v in match.items()):
                return row
        return None

    def account_id(self, name: str) -> int:
        row = self.find("Account", Name=name)
        if row is None:
            raise KeyError(name)
        return int(row["Id"])

    def _ref(self, entity: str, ref: Any, element: str, *, active: bool = True) -> Row:
        """The row a request's reference points at: 2500 when unknown, 610 when inactive or
        deleted (research §1.9: 610 "inactive ref or deleted txn")."""
        value = ref_value(ref)
        if value is None:
            raise required(element)
        table = self.tables[entity]
        row = table.rows.get(int(value)) if value.isdigit() else None
        if row is None:
            if value.isdigit() and int(value) in table.tombstones:
                raise not_found(entity, value)
            raise QBOFault(
                2500,
                f"Invalid Reference Id : {entity} element id {value} not found",
                element=element,
            )
        if active and row.get("Active") is False:
            raise not_found(entity, value)
        return row

    def _named(self, row: Row, name_key: str = "DisplayName") -> Row:
        name = row.get(name_key) or row.get("Name", "")
        return self.flat({"value": row["Id"], "name": name})  # type: ignore[no-any-return]

    def _writable(self, entity: str, body: Row) -> Row:
        skip = _READ_ONLY | _COMPUTED.get(entity, frozenset())
        return {k: v for k, v in body.items() if k not in skip}

    def _existing_writable(self, entity: str, row: Row) -> Row:
        return self._writable(entity, row)  # stored parts are never mutated: no copy needed

    def _check_sync(self, row: Row, body: Row) -> None:
        if str(sync_token(body.get("SyncToken"))) != row["SyncToken"]:
            raise QBOFault(5010, STALE_DETAIL, element="SyncToken")

    # -- dispatch --------------------------------------------------------------------------------

    def save(self, entity: str, body: Any, at: dt.datetime | None = None) -> Row:
        """Create (no ``Id``) or update (``Id`` + ``SyncToken``; ``sparse`` honoured)."""
        if entity not in WRITABLE:
            raise QBOFault(
                500,
                f"Operation Create/Update is not supported for {entity} by this emulator",
                element=entity,
            )
        if not isinstance(body, dict):
            raise QBOFault(2010, "Request body must be a JSON object")
        data = clean(body)
        at = at or self.now()
        rid = str(data.get("Id", "")).strip()
        if rid and rid != "0":
            row = self.row(entity, rid)
            self._check_sync(row, data)
            sparse = data.get("sparse") in (True, "true")
            fields = self._writable(entity, data)
            if sparse:
                fields = {**self._existing_writable(entity, row), **fields}
            return self._write(entity, fields, row, at)
        return self._write(entity, self._writable(entity, data), None, at)

    def create(self, entity: str, body: Any, at: dt.datetime | None = None) -> Row:
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if k not in ("Id", "SyncToken")}
        return self.save(entity, body, at)

    def update(self, entity: str, body: Any, at: dt.datetime | None = None) -> Row:
        if not isinstance(body, dict) or not str(body.get("Id") or "").strip():
            raise required("Id")
        return self.save(entity, body, at)

    def _write(self, entity: str, fields: Row, row: Row | None, at: dt.datetime) -> Row:
        if entity == "Customer":
            return self._write_customer(fields, row, at)
        if entity == "Invoice":
            return self._write_invoice(fields, row, at)
        if entity == "Payment":
            return self._write_payment(fields, row, at)
        return self._write_deposit(fields, row, at)

    def delete(self, entity: str, body: Any, at: dt.datetime | None = None) -> Row:
        """``operation=delete``: transactions only (Customer is a name list: research §1.5)."""
        if entity not in TRANSACTIONS:
            raise QBOFault(
                500, f"Operation Delete is not supported for {entity}", element=entity
            )  # exact answer for name lists UNVERIFIED
        data = clean(body) if isinstance(body, dict) else {}
        row = self.row(entity, data.get("Id", ""))
        self._check_sync(row, data)
        at = at or self.now()
        rid = int(row["Id"])
        if entity == "Invoice":
            if self.applied.get(rid):
                raise business(
                    "This transaction has payments applied to it. Delete or unapply the payments "
                    "first.",
                    "Invoice",
                )  # UNVERIFIED rule and text
            self.doc_numbers.pop(str(row.get("DocNumber", "")).casefold(), None)
            customer = int(row["CustomerRef"]["value"])
            self.customer_invoices.get(customer, set()).discard(rid)
            self._adjust_customer(customer, -dec(row["Balance"]))
            self.voided["Invoice"].discard(rid)
        elif entity == "Payment":
            self._refuse_if_deposited(rid)
            self._apply_payment(rid, {}, at)
            self.voided["Payment"].discard(rid)
        else:
            self._link_deposit(rid, set())
        return self._tombstone(entity, rid, at)

    def void(self, entity: str, body: Any, at: dt.datetime | None = None) -> Row:
        """Invoice ``operation=void``; Payment ``operation=update&include=void`` (research §1.5)."""
        if entity not in ("Invoice", "Payment"):
            raise QBOFault(500, f"Operation Void is not supported for {entity}", element=entity)
        data = clean(body) if isinstance(body, dict) else {}
        row = self.row(entity, data.get("Id", ""))
        self._check_sync(row, data)
        at = at or self.now()
        rid = int(row["Id"])
        new = dict(row)
        if entity == "Invoice":
            if self.applied.get(rid):
                raise business(
                    "You can't void this transaction because it has payments applied to it.",
                    "Invoice",
                )  # third-party MCP doc only (research §1.5): UNVERIFIED
            new["Line"] = [self._zero_line(line) for line in row["Line"]]
            new["TotalAmt"] = 0
            new["Balance"] = 0
            new["TxnTaxDetail"] = self.flat({"TotalTax": 0})
            self._adjust_customer(int(row["CustomerRef"]["value"]), -dec(row["Balance"]))
        else:
            self._refuse_if_deposited(rid)
            self._apply_payment(rid, {}, at)
            new["Line"] = [{**line, "Amount": 0} for line in row.get("Line", [])]
            new["TotalAmt"] = 0
            new["UnappliedAmt"] = 0
        new["PrivateNote"] = "Voided"
        self.voided[entity].add(rid)
        self.touch(new, at, created=False)
        return self.put(entity, new, "Void", at)

    @staticmethod
    def _zero_line(line: Row) -> Row:
        out = {**line, "Amount": 0}
        detail = line.get("SalesItemLineDetail")
        if isinstance(detail, dict):
            out["SalesItemLineDetail"] = {**detail, "Qty": 0}
        return out

    # -- customers -------------------------------------------------------------------------------

    def _write_customer(self, fields: Row, row: Row | None, at: dt.datetime) -> Row:
        display = str(fields.get("DisplayName") or "").strip()
        if not display:
            parts = [fields.get(k) for k in ("Title", "GivenName", "MiddleName", "FamilyName")]
            display = " ".join(str(p) for p in parts if p) or str(fields.get("CompanyName") or "")
        if not display:
            raise required("DisplayName")  # QBO needs a name of some kind (wording UNVERIFIED)
        key = display.casefold()
        holder = self.display_names.get(key)
        if holder is not None and (row is None or holder != int(row["Id"])):
            # research §1.8 batch sample / §1.9 (case-insensitive match: UNVERIFIED)
            raise QBOFault(
                6240,
                "The name supplied already exists. : Another customer, vendor or employee is "
                f"already using this name. Please use a different name. (DisplayName={display})",
                element="DisplayName",
            )
        active = as_bool(fields.get("Active", True), "Active")
        rid = int(row["Id"]) if row else self.next_id("Customer")
        balance = self.customer_balance.get(rid, ZERO)
        new: Row = {
            "Id": str(rid),
            "SyncToken": row["SyncToken"] if row else "0",
            "domain": "QBO",
            "sparse": False,
            "Taxable": False,
            "Job": False,
            "BillWithParent": False,
            "IsProject": False,
            "PreferredDeliveryMethod": "Print",
            "PrintOnCheckName": display,
        }
        for k, v in fields.items():
            if k != "Active":
                new[k] = v
        new["DisplayName"] = display
        new["FullyQualifiedName"] = display
        new["Active"] = active
        new["Balance"] = num(balance)
        new["BalanceWithJobs"] = num(balance)
        new["CurrencyRef"] = HOME_CURRENCY
        if row:
            new["MetaData"] = row["MetaData"]
            self.display_names.pop(str(row["DisplayName"]).casefold(), None)
        self.touch(new, at, created=row is None)
        self.display_names[key] = rid
        return self.put("Customer", new, "Update" if row else "Create", at)

    def _adjust_customer(self, customer_id: int, delta: Decimal) -> None:
        """Keep ``Customer.Balance`` = open invoice balances. It changes without a SyncToken or
        LastUpdatedTime bump (emulator choice, UNVERIFIED)."""
        if not delta:
            return
        balance = self.customer_balance.get(customer_id, ZERO) + delta
        self.customer_balance[customer_id] = balance
        row = self.tables["Customer"].rows.get(customer_id)
        if row is not None:
            new = {**row, "Balance": num(balance), "BalanceWithJobs": num(balance)}
            self.put("Customer", new, None, self.now())

    # -- invoices --------------------------------------------------------------------------------

    def _invoice_lines(self, lines_in: Any) -> tuple[list[Row], Decimal]:
        if not isinstance(lines_in, list) or not lines_in:
            raise required("Line")
        lines: list[Row] = []
        subtotal = discount = ZERO
        n = 0
        for line in lines_in:
            if not isinstance(line, dict):
                raise QBOFault(2010, "Invalid Line", element="Line")
            kind = line.get("DetailType")
            if kind == "SubTotalLineDetail":
                continue  # recomputed below, as QBO does
            if kind is None:
                raise required("Line.DetailType")
            n += 1
            out: Row = {"Id": str(n), "LineNum": n}
            if "Description" in line:
                out["Description"] = line["Description"]
            if kind in ("SalesItemLineDetail", "GroupLineDetail"):
                detail = dict(line.get(kind) or {})
                if "Amount" in line:
                    amount = dec(line["Amount"], "Line.Amount")
                elif "Qty" in detail and "UnitPrice" in detail:
                    amount = dec(detail["Qty"], "Qty") * dec(detail["UnitPrice"], "UnitPrice")
                else:
                    raise required("Line.Amount")
                for key in ("Qty", "UnitPrice"):
                    if key in detail:
                        detail[key] = num(dec(detail[key], key))
                if kind == "SalesItemLineDetail":
                    item = (
                        self._ref("Item", detail["ItemRef"], "Line.SalesItemLineDetail.ItemRef")
                        if ref_value(detail.get("ItemRef"))
                        else self.row("Item", 1)  # default "Services" item (UNVERIFIED)
                    )
                    detail["ItemRef"] = self._named(item, "Name")
                    detail["TaxCodeRef"] = self.flat(detail.get("TaxCodeRef") or {"value": "NON"})
                out["Amount"] = num(amount)
                subtotal += amount
                out["DetailType"] = kind
                out[kind] = detail
            elif kind == "DiscountLineDetail":
                amount = abs(dec(line.get("Amount"), "Line.Amount"))
                discount += amount
                out.update({"Amount": num(amount), "DetailType": kind, kind: line.get(kind) or {}})
            elif kind == "DescriptionOnly":
                out.update({"DetailType": kind, "DescriptionLineDetail": {}})
            else:
                raise QBOFault(2170, f"Invalid Enumeration : {kind}", element="Line.DetailType")
            lines.append(out)
        lines.append(
            {
                "Amount": num(subtotal),
                "DetailType": "SubTotalLineDetail",
                "SubTotalLineDetail": self.flat({}),
            }
        )
        return lines, subtotal - discount

    def _write_invoice(self, fields: Row, row: Row | None, at: dt.datetime) -> Row:
        rid = int(row["Id"]) if row else None
        if rid is not None and rid in self.voided["Invoice"]:
            raise business("A voided transaction cannot be edited.", "Invoice")  # UNVERIFIED
        customer = self._ref("Customer", fields.get("CustomerRef"), "CustomerRef")
        if row and self.applied.get(rid or 0) and row["CustomerRef"]["value"] != customer["Id"]:
            raise business(
                "The customer of an invoice with payments applied cannot change.", "CustomerRef"
            )  # UNVERIFIED
        self._home_currency(fields)
        lines, net = self._invoice_lines(fields.get("Line"))
        tax = dec((fields.get("TxnTaxDetail") or {}).get("TotalTax"), "TotalTax")
        total = net + tax
        applied = sum(self.applied.get(rid, {}).values(), ZERO) if rid is not None else ZERO
        if total < applied:
            raise business(
                "The invoice amount cannot be less than the payments applied to it.", "TotalAmt"
            )  # UNVERIFIED text
        doc = str(fields.get("DocNumber") or "").strip()
        if not doc:
            doc = str(row.get("DocNumber", "")) if row else self._auto_doc_number()
        if len(doc) > MAX_DOC_NUMBER:
            raise too_long("DocNumber", MAX_DOC_NUMBER, len(doc))
        holder = self.doc_numbers.get(doc.casefold())
        if self.duplicate_doc_number_error and holder is not None and holder != rid:
            raise QBOFault(
                6140,
                "Duplicate Document Number Error : You must specify a different number. This "
                f"number has already been used. DocNumber={doc} is assigned to TxnType=Invoice "
                f"with TxnId={holder}",
                element="DocNumber",
            )  # code per research §1.9; detail wording UNVERIFIED
        today = at.astimezone(self.tz).date()
        txn_date = iso_date(fields["TxnDate"], "TxnDate") if "TxnDate" in fields else None
        txn_date = txn_date or (row["TxnDate"] if row else today.isoformat())
        due = (
            iso_date(fields["DueDate"], "DueDate")
            if "DueDate" in fields
            else (dt.date.fromisoformat(txn_date) + dt.timedelta(days=30)).isoformat()
        )
        rid = rid if rid is not None else self.next_id("Invoice")
        new: Row = {
            "Id": str(rid),
            "SyncToken": row["SyncToken"] if row else "0",
            "domain": "QBO",
            "sparse": False,
            "AllowIPNPayment": False,
            "AllowOnlinePayment": False,
            "AllowOnlineCreditCardPayment": False,
            "AllowOnlineACHPayment": False,
            "ApplyTaxAfterDiscount": False,
            "PrintStatus": "NotSet",
            "EmailStatus": "NotSet",
            "SalesTermRef": self.flat({"value": "3", "name": "Net 30"}),
        }
        for k, v in fields.items():
            new[k] = self.flat(v) if k in _FLAT_KEYS else v
        new.update(
            {
                "DocNumber": doc,
                "TxnDate": txn_date,
                "DueDate": due,
                "CurrencyRef": HOME_CURRENCY,
                "CustomerRef": self._named(customer),
                "Line": lines,
                "TxnTaxDetail": self.flat({"TotalTax": num(tax)}),
                "TotalAmt": num(total),
                "Deposit": 0,
            }
        )
        if row:
            new["MetaData"] = row["MetaData"]
            old_customer = int(row["CustomerRef"]["value"])
            self.customer_invoices.get(old_customer, set()).discard(rid)
            self._adjust_customer(old_customer, -dec(row["Balance"]))
            self.doc_numbers.pop(str(row.get("DocNumber", "")).casefold(), None)
        self.touch(new, at, created=row is None)
        self._links(new, rid, total)
        self.customer_invoices.setdefault(int(customer["Id"]), set()).add(rid)
        self._adjust_customer(int(customer["Id"]), dec(new["Balance"]))
        if doc:
            self.doc_numbers[doc.casefold()] = rid
        return self.put("Invoice", new, "Update" if row else "Create", at)

    def _auto_doc_number(self) -> str:
        while str(self._next_doc).casefold() in self.doc_numbers:
            self._next_doc += 1
        doc = str(self._next_doc)
        self._next_doc += 1
        return doc

    def _home_currency(self, fields: Row) -> None:
        code = ref_value(fields.get("CurrencyRef"))
        if code is not None and code != HOME_CURRENCY["value"]:
            raise business(
                f"Currency {code} is not the home currency; multicurrency is off for this company.",
                "CurrencyRef",
            )  # UNVERIFIED text

    def _links(self, invoice: Row, rid: int, total: Decimal) -> None:
        """``Balance`` and the Payment ``LinkedTxn`` entries from the applications."""
        apps = self.applied.get(rid, {})
        invoice["Balance"] = num(total - sum(apps.values(), ZERO))
        invoice["LinkedTxn"] = [{"TxnId": str(pid), "TxnType": "Payment"} for pid in sorted(apps)]

    def _relink_invoice(self, rid: int, at: dt.datetime) -> None:
        row = self.tables["Invoice"].rows.get(rid)
        if row is None:
            return
        new = dict(row)
        self._links(new, rid, dec(row["TotalAmt"]))
        if new["Balance"] == row["Balance"] and new["LinkedTxn"] == row.get("LinkedTxn"):
            return
        # Applying a payment changes the invoice (Balance, LinkedTxn): SyncToken and
        # LastUpdatedTime move too, so incremental pulls see it (UNVERIFIED but relied upon).
        self.touch(new, at, created=False)
        self._adjust_customer(
            int(row["CustomerRef"]["value"]), dec(new["Balance"]) - dec(row["Balance"])
        )
        self.put("Invoice", new, "Update", at)

    # -- payments --------------------------------------------------------------------------------

    def _refuse_if_deposited(self, payment_id: int) -> None:
        deposit = self.deposited_in.get(payment_id)
        if deposit is not None:
            raise QBOFault(
                6540,
                "Deposited Transaction cannot be changed : This transaction has been deposited. "
                "If you want to change or delete it, you must edit the deposit it appears on "
                f"(Deposit Id={deposit}) and remove it first.",
                element="Payment",
            )  # code per Intuit error codes; detail wording UNVERIFIED

    def _payment_apps(
        self, lines_in: Any, customer_id: int, payment_id: int | None
    ) -> tuple[list[Row], dict[int, Decimal]]:
        if lines_in is None:
            return [], {}
        if not isinstance(lines_in, list):
            raise QBOFault(2010, "Invalid Line", element="Line")
        previous = self.payment_apps.get(payment_id, {}) if payment_id is not None else {}
        lines: list[Row] = []
        apps: dict[int, Decimal] = {}
        for line in lines_in:
            if not isinstance(line, dict):
                raise QBOFault(2010, "Invalid Line", element="Line")
            amount = dec(line.get("Amount"), "Line.Amount")
            if amount < 0:
                raise business("Amounts applied must not be negative.", "Line.Amount")
            links = [x for x in line.get("LinkedTxn") or [] if isinstance(x, dict) and x]
            if not links:
                raise required("Line.LinkedTxn")
            if len(links) > 1:
                raise business("A payment line links exactly one transaction.", "Line.LinkedTxn")
            link = links[0]
            kind = link.get("TxnType")
            if kind not in ("Invoice", "CreditMemo"):
                raise QBOFault(
                    2170, f"Invalid Enumeration : TxnType {kind!r}", element="LinkedTxn.TxnType"
                )
            if kind == "CreditMemo":
                raise QBOFault(
                    2500,
                    "Invalid Reference Id : CreditMemo is not emulated",
                    element="LinkedTxn.TxnId",
                )
            invoice = self._ref("Invoice", {"value": link.get("TxnId")}, "LinkedTxn.TxnId")
            if invoice["CustomerRef"]["value"] != str(customer_id):
                raise business(
                    f"Invoice {invoice['Id']} belongs to another customer.", "LinkedTxn.TxnId"
                )  # UNVERIFIED
            iid = int(invoice["Id"])
            apps[iid] = apps.get(iid, ZERO) + amount
            lines.append(
                {"Amount": num(amount), "LinkedTxn": [{"TxnId": str(iid), "TxnType": "Invoice"}]}
            )
        for iid, amount in apps.items():
            invoice = self.tables["Invoice"].rows[iid]
            available = dec(invoice["Balance"]) + previous.get(iid, ZERO)
            if amount > available:
                # research §1.13.7: a 6000-class business error; exact text UNVERIFIED
                raise business(
                    f"The payment amount {amount} applied to invoice {invoice.get('DocNumber')} "
                    f"(Id {iid}) exceeds its open balance {available}.",
                    "Line.Amount",
                )
        return lines, {k: v for k, v in apps.items() if v}

    def _apply_payment(self, payment_id: int, apps: dict[int, Decimal], at: dt.datetime) -> None:
        old = self.payment_apps.pop(payment_id, {})
        for iid in old:
            self.applied.get(iid, {}).pop(payment_id, None)
        if apps:
            self.payment_apps[payment_id] = dict(apps)
        for iid, amount in apps.items():
            self.applied.setdefault(iid, {})[payment_id] = amount
        for iid in sorted(set(old) | set(apps)):
            self._relink_invoice(iid, at)

    def _write_payment(self, fields: Row, row: Row | None, at: dt.datetime) -> Row:
        rid = int(row["Id"]) if row else None
        if rid is not None:
            self._refuse_if_deposited(rid)
            if rid in self.voided["Payment"]:
                raise business("A voided transaction cannot be edited.", "Payment")  # UNVERIFIED
        customer = self._ref("Customer", fields.get("CustomerRef"), "CustomerRef")
        self._home_currency(fields)
        if "TotalAmt" not in fields:
            # "Payment without TotalAmt" → 6000 (Intuit error codes, research §1.9)
            raise business("TotalAmt is required for a payment.", "TotalAmt")
        total = dec(fields["TotalAmt"], "TotalAmt")
        if total < 0:
            raise business("The payment amount must not be negative.", "TotalAmt")
        lines, apps = self._payment_apps(fields.get("Line"), int(customer["Id"]), rid)
        applied = sum(apps.values(), ZERO)
        if applied > total:
            raise business(
                f"The amounts applied ({applied}) exceed the payment total ({total}).", "TotalAmt"
            )  # UNVERIFIED text
        deposit_ref = fields.get("DepositToAccountRef")
        account = (
            self._ref("Account", deposit_ref, "DepositToAccountRef")
            if ref_value(deposit_ref)
            else self.row("Account", self.account_id(UNDEPOSITED_FUNDS))
        )  # default = Undeposited Funds (research §1.5: UNVERIFIED)
        method = fields.get("PaymentMethodRef")
        if ref_value(method):
            self._ref("PaymentMethod", method, "PaymentMethodRef")
        ref_num = str(fields.get("PaymentRefNum") or "")
        if len(ref_num) > MAX_PAYMENT_REF:
            raise too_long("PaymentRefNum", MAX_PAYMENT_REF, len(ref_num))
        txn_date = (
            iso_date(fields["TxnDate"], "TxnDate")
            if "TxnDate" in fields
            else (row["TxnDate"] if row else at.astimezone(self.tz).date().isoformat())
        )
        rid = rid if rid is not None else self.next_id("Payment")
        new: Row = {
            "Id": str(rid),
            "SyncToken": row["SyncToken"] if row else "0",
            "domain": "QBO",
            "sparse": False,
            "ProcessPayment": False,
        }
        for k, v in fields.items():
            new[k] = self.flat(v) if k in _FLAT_KEYS else v
        new.update(
            {
                "CustomerRef": self._named(customer),
                "DepositToAccountRef": self.flat({"value": account["Id"]}),
                "TotalAmt": num(total),
                "UnappliedAmt": num(total - applied),
                "TxnDate": txn_date,
                "CurrencyRef": HOME_CURRENCY,
                "Line": lines,
            }
        )
        if row:
            new["MetaData"] = row["MetaData"]
        self.touch(new, at, created=row is None)
        stored = self.put("Payment", new, "Update" if row else "Create", at)
        self._apply_payment(rid, apps, at)
        return stored

    # -- deposits --------------------------------------------------------------------------------

    def _deposit_lines(
        self, lines_in: Any, deposit_id: int | None
    ) -> tuple[list[Row], Decimal, set[int]]:
        if not isinstance(lines_in, list) or not lines_in:
            raise required("Line")
        undeposited = str(self.account_id(UNDEPOSITED_FUNDS))
        lines: list[Row] = []
        total = ZERO
        payments: set[int] = set()
        for n, line in enumerate(lines_in, start=1):
            if not isinstance(line, dict):
                raise QBOFault(2010, "Invalid Line", element="Line")
            amount = dec(line.get("Amount"), "Line.Amount")
            links = [x for x in line.get("LinkedTxn") or [] if isinstance(x, dict) and x]
            out: Row = {"Id": str(n), "LineNum": n}
            if "Description" in line:
                out["Description"] = line["Description"]
            if links:
                if line.get("DetailType"):
                    # routablehq/python-quickbooks#329: a LinkedTxn line must not say DetailType
                    raise required("Line.DepositLineDetail.AccountRef")
                out_links = []
                for link in links:
                    if link.get("TxnType") != "Payment":
                        raise QBOFault(
                            2500,
                            f"Invalid Reference Id : deposits link Payments, not "
                            f"{link.get('TxnType')!r} (emulator scope)",
                            element="LinkedTxn.TxnType",
                        )
                    payment = self._ref("Payment", {"value": link.get("TxnId")}, "LinkedTxn.TxnId")
                    pid = int(payment["Id"])
                    holder = self.deposited_in.get(pid)
                    if (holder is not None and holder != deposit_id) or pid in payments:
                        raise business(
                            f"Payment {pid} is already in a deposit.", "LinkedTxn.TxnId"
                        )  # UNVERIFIED
                    if payment["DepositToAccountRef"]["value"] != undeposited:
                        raise business(
                            f"Payment {pid} is not in {UNDEPOSITED_FUNDS}.", "LinkedTxn.TxnId"
                        )  # UNVERIFIED
                    if pid in self.voided["Payment"]:
                        raise business(f"Payment {pid} is voided.", "LinkedTxn.TxnId")
                    if amount != dec(payment["TotalAmt"]):
                        raise business(
                            f"The deposit line amount {amount} must equal payment {pid}'s "
                            f"amount {payment['TotalAmt']}.",
                            "Line.Amount",
                        )  # UNVERIFIED: deposit the gross, book the fee on its own line
                    payments.add(pid)
                    # TxnLineId "0" as python-quickbooks users send it (exact value UNVERIFIED)
                    out_links.append({"TxnId": str(pid), "TxnType": "Payment", "TxnLineId": "0"})
                out["Amount"] = num(amount)
                out["LinkedTxn"] = out_links
            else:
                if line.get("DetailType") != "DepositLineDetail":
                    raise required("Line.DetailType")
                detail = dict(line.get("DepositLineDetail") or {})
                if not ref_value(detail.get("AccountRef")):
                    raise required("Line.DepositLineDetail.AccountRef")
                account = self._ref(
                    "Account", detail["AccountRef"], "Line.DepositLineDetail.AccountRef"
                )
                detail["AccountRef"] = self._named(account, "Name")
                if ref_value(detail.get("PaymentMethodRef")):
                    self._ref("PaymentMethod", detail["PaymentMethodRef"], "PaymentMethodRef")
                entity = detail.get("Entity")
                if ref_value(entity):  # flat {value, type} (quickbooks-online-mcp-server#125)
                    customer = self._ref("Customer", entity, "Entity", active=False)
                    detail["Entity"] = {**self._named(customer), "type": "CUSTOMER"}
                out.update(
                    {"Amount": num(amount), "DetailType": "DepositLineDetail"},
                    DepositLineDetail=detail,
                )
            total += amount
            lines.append(out)
        return lines, total, payments

    def _write_deposit(self, fields: Row, row: Row | None, at: dt.datetime) -> Row:
        rid = int(row["Id"]) if row else None
        self._home_currency(fields)
        target = fields.get("DepositToAccountRef")
        if not ref_value(target):
            raise required("DepositToAccountRef")
        account = self._ref("Account", target, "DepositToAccountRef")
        if account["Name"] == UNDEPOSITED_FUNDS:
            # routablehq/python-quickbooks#391 quotes this text
            raise business("Select a bank account for this deposit", "DepositToAccountRef")
        lines, total, payments = self._deposit_lines(fields.get("Line"), rid)
        cash_back = fields.get("CashBack")
        if isinstance(cash_back, dict) and cash_back.get("Amount") is not None:
            total -= dec(cash_back["Amount"], "CashBack.Amount")
        txn_date = (
            iso_date(fields["TxnDate"], "TxnDate")
            if "TxnDate" in fields
            else (row["TxnDate"] if row else at.astimezone(self.tz).date().isoformat())
        )
        rid = rid if rid is not None else self.next_id("Deposit")
        new: Row = {"Id": str(rid), "SyncToken": row["SyncToken"] if row else "0"}
        new.update({"domain": "QBO", "sparse": False})
        for k, v in fields.items():
            new[k] = self.flat(v) if k in _FLAT_KEYS else v
        new.update(
            {
                "DepositToAccountRef": self._named(account, "Name"),
                "TxnDate": txn_date,
                "TotalAmt": num(total),
                "CurrencyRef": HOME_CURRENCY,
                "Line": lines,
            }
        )
        if row:
            new["MetaData"] = row["MetaData"]
        self.touch(new, at, created=row is None)
        self._link_deposit(rid, payments)
        return self.put("Deposit", new, "Update" if row else "Create", at)

    def _link_deposit(self, deposit_id: int, payments: set[int]) -> None:
        for pid in self.deposit_links.pop(deposit_id, set()):
            self.deposited_in.pop(pid, None)
        if payments:
            self.deposit_links[deposit_id] = set(payments)
            for pid in payments:
                self.deposited_in[pid] = deposit_id

    # -- reads: query and CDC --------------------------------------------------------------------

    def matched(self, query: Query) -> list[Row]:
        """Every row the query's WHERE matches, in ORDERBY order; cached until the next write to
        that entity, so paging through 100 000 rows filters once, not once per page."""
        table = self.tables[query.entity]
        key = (*query.filter_key(), table.version)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        test = predicate(query, self.tz)
        rows = [row for row in table.rows.values() if test(row)]
        rows = sort_rows(rows, query.order, self.tz)
        self._cache[key] = rows
        while len(self._cache) > 16:
            self._cache.popitem(last=False)
        return rows

    def changed_since(self, entity: str, since: float) -> list[Row]:
        """Rows and tombstones whose LastUpdatedTime ≥ ``since``, oldest first (research §1.4)."""
        table = self.tables[entity]
        found: list[tuple[float, int, Row]] = []
        for rid, row in table.rows.items():
            instant = parse_instant(row["MetaData"]["LastUpdatedTime"], self.tz)
            if instant is not None and instant >= since:
                found.append((instant, rid, row))
        for rid, stamp in table.tombstones.items():
            instant = parse_instant(stamp, self.tz)
            if instant is not None and instant >= since:
                tomb = {
                    "Id": str(rid),
                    "status": "Deleted",
                    "domain": "QBO",
                    "MetaData": {"LastUpdatedTime": stamp},
                }
                found.append((instant, rid, tomb))
        found.sort(key=lambda t: (t[0], t[1]))
        return [row for _, _, row in found]

    def payments_for_invoice(self, invoice_id: int) -> dict[int, Decimal]:
        return dict(self.applied.get(invoice_id, {}))

    def all_rows(self, entity: str) -> Iterable[Row]:
        table = self.tables[entity]
        return (table.rows[k] for k in sorted(table.rows))


__all__ = [
    "HOME_CURRENCY",
    "SCHEMAS",
    "STALE_DETAIL",
    "TRANSACTIONS",
    "UNDEPOSITED_FUNDS",
    "WRITABLE",
    "Company",
    "Table",
    "clean",
    "ref_value",
    "sync_token",
]
