"""ConnectWise Manage (ConnectWise PSA) REST API 3.0 emulator, on loopback, seeded and faultable.

It follows the vendor's public behaviour as collected in ``research/psa-apis.md`` section 1; each
behaviour cites its source beside the code. Shorthand (public repositories):

- ``pycw``: HealthITAU/pyconnectwise (client generated from ConnectWise's OpenAPI schema);
- ``djcw``: KerkhoffTechnologies/django-connectwise (production sync library);
- ``cwps``: christaylorcodes/ConnectWiseManageAPI (PowerShell module);
- ``nango``: NangoHQ/nango (``packages/server/lib/webhook/connectwise-psa-webhook-routing.ts``);
- CW "PSA API Requests" / "PSA Pagination" best-practice pages (developer.connectwise.com; copies
  at https://gitea.resolutionflow.com/chihlasm/resolutionflow/src/branch/main/docs/connectwise/);
- https://www.thelazyadministrator.com/2024/06/06/how-the-connectwise-manage-api-handles-pagination-with-powershell/

What it serves (everything under ``/{codebase}apis/3.0``, codebase ``v4_6_release/`` by default):

- ``GET /login/companyinfo/{company}`` (unauthenticated) → ``Codebase``, ``CompanyID``, …
- ``/company/companies`` (+ ``/count``, ``/{id}``: GET, POST, PATCH, DELETE = soft delete)
- ``/company/contacts`` (+ ``/count``, ``/{id}``: GET) with ``communicationItems``
- ``/finance/invoices`` (+ ``/count``, ``/{id}``: GET, POST, PATCH, DELETE = hard delete)
- ``/finance/invoices/{id}/payments`` (GET, POST, ``/count``) and ``…/payments/{paymentId}``
  (GET, DELETE)
- ``/system/info`` and an unauthenticated callback signing-key URL (``key_url``)

Behaviours the sources do not settle are emulator choices, listed in ``UNVERIFIED``.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import copy
import datetime as dt
import hashlib
import hmac
import json
import math
import random
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from connectors.connectwise.conditions import (
    ConditionError,
    Predicate,
    Schema,
    compile_conditions,
    parse_order_by,
    sort_key,
)
from syncd.clock import Clock, SystemClock
from syncd.sandbox.data import SeededData, iso_z
from syncd.sandbox.faults import Fault, FaultRule
from syncd.sandbox.kit import Sandbox, toml_table
from syncd.sandbox.routing import Handler, HTTPError, Request, Response
from syncd.sandbox.server import format_seconds

Row = dict[str, Any]

DEFAULT_COMPANY_ID = "sandbox"
DEFAULT_PUBLIC_KEY = "sandboxPublicKey"
DEFAULT_PRIVATE_KEY = "sandboxPrivateKey"
DEFAULT_CLIENT_ID = "2f1c5d6e-8a4b-4c3d-9e7f-0a1b2c3d4e5f"
DEFAULT_CODEBASE = "v4_6_release/"  # djcw api.py DEFAULT_CW_API_CODEBASE
API_VERSION = "2025.16"  # value echoed in ``api-current-version`` (cwps Invoke-CWMWebRequest.ps1)
API_MEMBER = "APIMember"
DEFAULT_PAGE_SIZE = 25  # djcw api.py; CW "PSA Pagination" page
MAX_PAGE_SIZE = 1000  # "hard limit of 1,000 records" (CW "PSA Pagination" page)

# SQL Server's timeout text: pyconnectwise retries a 500 whose body contains "timeout".
TIMEOUT_MESSAGE = (
    "Execution timeout expired. The timeout period elapsed prior to completion of the operation "
    "or the server is not responding."
)

UNVERIFIED: tuple[str, ...] = (
    "error bodies' exact messages (codes follow pycw/cwps/djcw; wording is ours)",
    "401 vs 404 body when credentials are wrong on cloud (404 mode answers a NotFound JSON body)",
    "missing or unknown clientId answers 401 Unauthorized",
    "429 body: Cloudflare's plain 'error code: 1015' (only Retry-After is documented)",
    "conditions: field names case-sensitive, string comparison case-insensitive, like uses % only,"
    " naive datetimes are UTC, malformed conditions answer 400 ApiFindCondition",
    "Link header: page/pageSize are the last query parameters; a single page sends no Link header;"
    " forward-only pages carry only rel=next",
    "forward-only with orderBy answers 400 InvalidObject",
    "payments: no invoice status change on payment; type defaults to 'Payment'; amounts with more"
    " decimals than the currency allows are refused",
    "company DELETE is a soft delete (deletedFlag=true); invoice DELETE is a hard delete",
    "the callback key URL path (/system/callbackkeys/{id}) and its being unauthenticated",
    "credit memos carry negative amounts",
    "invoice status names (tenant-defined in CW): New, Sent, Paid, Voided",
)

_SEED_START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
_SEED_END = dt.datetime(2025, 12, 1, tzinfo=dt.UTC)

# CurrencyReference (pycw models CurrencyReference: id, symbol, currencyCode, decimalSeparator,
# numberOfDecimals, thousandsSeparator, negativeParenthesesFlag, displaySymbolFlag,
# currencyIdentifier, displayIdFlag, rightAlign, name).
_CURRENCIES: dict[str, tuple[int, str, str]] = {
    "USD": (7, "$", "US Dollars"),
    "CAD": (3, "$", "Canadian Dollars"),
    "GBP": (5, "£", "British Pounds"),
    "EUR": (4, "€", "Euro"),
    "AUD": (1, "$", "Australian Dollars"),
}
_COMPANY_STATUSES = {1: "Active", 2: "Inactive", 3: "Credit Hold"}
# Billing statuses are tenant-defined; some tenants keep one for invoices they have voided.
_INVOICE_STATUSES = {1: "New", 2: "Sent", 3: "Paid", 4: "Voided"}
_BILLING_TERMS = {1: "Net 30", 2: "Net 15", 3: "Due on Receipt"}
_INVOICE_TYPES = ("Agreement", "CreditMemo", "DownPayment", "Miscellaneous", "Progress", "Standard")
# Fields written as references {"id": n} and stored as the referenced object's summary.
_REF_KEYS = frozenset(
    {
        "company",
        "billToCompany",
        "shipToCompany",
        "billingContact",
        "status",
        "billingTerms",
        "currency",
    }
)
_INFO_ALIASES = {
    # djcw sync.py uses "lastUpdated>[…]" and compares against _info/lastUpdated (L454, L2967).
    "lastUpdated": ("_info", "lastUpdated"),
    "dateEntered": ("_info", "dateEntered"),
    "updatedBy": ("_info", "updatedBy"),
    "enteredBy": ("_info", "enteredBy"),
}
# CustomFieldValue (pycw models L1087-1105; djcw utils.py parse_udf).
_CUSTOM_FIELD_SCHEMA = Schema(
    [("id",), ("caption",), ("type",), ("entryMethod",), ("numberOfDecimals",), ("value",)]
)


def _currency(code: str) -> Row:
    cid, symbol, name = _CURRENCIES[code]
    return {
        "id": cid,
        "symbol": symbol,
        "currencyCode": code,
        "decimalSeparator": ".",
        "numberOfDecimals": 2,
        "thousandsSeparator": ",",
        "negativeParenthesesFlag": False,
        "displaySymbolFlag": True,
        "currencyIdentifier": code,
        "displayIdFlag": False,
        "rightAlign": False,
        "name": name,
    }


_CURRENCY_REFS = {code: _currency(code) for code in _CURRENCIES}
_STATUS_REFS = {i: {"id": i, "name": n} for i, n in _COMPANY_STATUSES.items()}
_INVOICE_STATUS_REFS = {i: {"id": i, "name": n} for i, n in _INVOICE_STATUSES.items()}
_TERMS_REFS = {i: {"id": i, "name": n} for i, n in _BILLING_TERMS.items()}
_COUNTRY_US = {"id": 1, "name": "United States"}
_CLIENT_TYPE = [{"id": 1, "name": "Client"}]


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def _num(value: Decimal) -> float | int:
    """Money as a JSON number (CW sends plain numbers: 125.5, 0)."""
    q = value.quantize(Decimal("0.01"))
    return int(q) if q == q.to_integral_value() else float(q)


def _error(status: int, code: str, message: str, errors: list[Row] | None = None) -> Response:
    # Error body {"code", "message", "errors": [{"code","message","resource","field"}]}
    # (pycw clients/connectwise_client.py _make_request; cwps Invoke-CWMWebRequest.ps1).
    body: Row = {"code": code, "message": message}
    if errors:
        body["errors"] = errors
    return Response.json_body(body, status)


def _fail(status: int, code: str, message: str, errors: list[Row] | None = None) -> HTTPError:
    return HTTPError(_error(status, code, message, errors))


def _invalid(
    resource: str, field_name: str, message: str, code: str = "InvalidObject"
) -> HTTPError:
    return _fail(
        400,
        "InvalidObject",
        f"{resource} object is invalid",
        [{"code": code, "message": message, "resource": resource, "field": field_name}],
    )


def _parse_when(value: Any, resource: str, field_name: str) -> str:
    if not isinstance(value, str):
        raise _invalid(resource, field_name, f"{field_name} must be an ISO-8601 date-time string.")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise _invalid(resource, field_name, f"{field_name} is not a valid date-time.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return iso_z(parsed)


@dataclass(frozen=True)
class PageInfo:
    """What a list request served; handed to ``server.on_page_served`` callbacks."""

    resource: str
    ids: tuple[int, ...]
    page: int | None
    page_id: int | None
    forward_only: bool
    has_next: bool


@dataclass
class _Table:
    name: str  # "companies", "contacts", "invoices"
    label: str  # "Company", "Contact", "Invoice" (error messages)
    schema: Schema
    rows: dict[int, Row] = field(default_factory=dict)
    ids: list[int] = field(default_factory=list)  # sorted ascending
    version: int = 0
    last_id: int = 0

    def insert(self, row: Row) -> None:
        rid = int(row["id"])
        self.rows[rid] = row
        if not self.ids or rid > self.ids[-1]:
            self.ids.append(rid)
        else:
            bisect.insort(self.ids, rid)
        self.last_id = max(self.last_id, rid)
        self.version += 1

    def remove(self, rid: int) -> None:
        del self.rows[rid]
        i = bisect.bisect_left(self.ids, rid)
        del self.ids[i]
        self.version += 1

    def next_id(self) -> int:
        self.last_id += 1
        return self.last_id


class ConnectWiseSandbox(Sandbox):
    """A seeded ConnectWise Manage tenant. Defaults: 40 companies, 120 invoices, seed 0.

    Credentials it expects (``Authorization: Basic
    base64("{company_id}+{public_key}:{private_key}")`` and a ``clientId`` header) default to
    ``DEFAULT_*`` above. ``auth_failure_status`` is 401, or 404 to mimic
    cloud tenants that answer bad keys with 404 (CW "PSA API Requests" page).
    ``clock`` stamps ``_info.lastUpdated`` on every write (a ``syncd.testing.FakeClock`` in tests).
    """

    name = "connectwise"

    def __init__(
        self,
        *,
        seed: int = 0,
        companies: int = 40,
        invoices: int = 120,
        company_id: str = DEFAULT_COMPANY_ID,
        public_key: str = DEFAULT_PUBLIC_KEY,
        private_key: str = DEFAULT_PRIVATE_KEY,
        client_id: str = DEFAULT_CLIENT_ID,
        codebase: str = DEFAULT_CODEBASE,
        api_version: str = API_VERSION,
        clock: Clock | None = None,
        auth_failure_status: int = 401,
        is_cloud: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(seed=seed, host=host, port=port)
        if not codebase.endswith("/"):
            codebase += "/"
        self.company_id = company_id
        self.public_key = public_key
        self.private_key = private_key
        self.client_id = client_id
        self.codebase = codebase
        self.api_version = api_version
        self.clock: Clock = clock or SystemClock()
        self.auth_failure_status = auth_failure_status
        self.is_cloud = is_cloud
        self._lock = threading.RLock()
        self._data = SeededData(seed)
        self._churn_rng = random.Random(seed + 1)
        self.signing_key = self._data.token(40)
        self.key_id = str(uuid.UUID(int=self._data.rng.getrandbits(128), version=4))
        self.companies = _Table(
            "companies", "Company", Schema.from_record(self._company_template(), _INFO_ALIASES)
        )
        self.contacts = _Table(
            "contacts", "Contact", Schema.from_record(self._contact_template(), _INFO_ALIASES)
        )
        self.invoices = _Table(
            "invoices", "Invoice", Schema.from_record(self._invoice_template(), _INFO_ALIASES)
        )
        self._payment_schema = Schema.from_record(self._payment_template(), _INFO_ALIASES)
        self._payments: dict[int, dict[int, Row]] = {}
        self._last_payment_id = 0
        self._company_refs: dict[int, Row] = {}
        self._identifiers: set[str] = set()
        self._match_cache: OrderedDict[tuple[Any, ...], list[int]] = OrderedDict()
        self._predicates: dict[tuple[str, str], Predicate] = {}
        self._seed(companies, invoices)
        self._register_routes()

    # ==========================================================================================
    # configuration & identity
    # ==========================================================================================

    @property
    def api_url(self) -> str:
        """``http://127.0.0.1:<port>/v4_6_release/apis/3.0`` (no trailing slash)."""
        return f"{self.base_url}/{self.codebase}apis/3.0"

    @property
    def key_url(self) -> str:
        """Where a callback's ``Metadata.key_url`` points (``{"signing_key": …}``, nango)."""
        return f"{self.api_url}/system/callbackkeys/{self.key_id}"

    def auth_header(
        self,
        company_id: str | None = None,
        public_key: str | None = None,
        private_key: str | None = None,
    ) -> str:
        """The ``Authorization`` value a client must send (pycw manage_client _get_auth_string)."""
        user = f"{company_id or self.company_id}+{public_key or self.public_key}"
        raw = f"{user}:{private_key or self.private_key}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def headers(self, version: str | None = None) -> dict[str, str]:
        """Every header a well-behaved client sends (djcw api.py get_headers)."""
        accept = "application/json"
        if version:
            accept = f"application/vnd.connectwise.com+json; version={version}"
        return {
            "Authorization": self.auth_header(),
            "clientId": self.client_id,
            "Accept": accept,
            "Content-Type": "application/json",
        }

    def config_snippet(self, connection_name: str) -> str:
        values = {
            "connector": "connectwise",
            "base_url": self.base_url,
            "company_id": self.company_id,
            "public_key": self.public_key,
            "private_key": self.private_key,
            "client_id": self.client_id,
        }
        header = f"# ConnectWise Manage sandbox (seed {self.seed}) at {self.base_url}\n"
        return header + toml_table(("connections", connection_name), values)

    def set_clock(self, clock: Clock) -> None:
        with self._lock:
            self.clock = clock

    def move_codebase(self, codebase: str) -> None:
        """The tenant moved (CW upgrade): the old codebase answers 404 (djcw fetch_resource)."""
        with self._lock:
            self.codebase = codebase if codebase.endswith("/") else codebase + "/"

    def _now(self) -> str:
        return iso_z(self.clock.now())

    # ==========================================================================================
    # seeded data
    # ==========================================================================================

    def _info(self, entered: str, updated: str, by: str = API_MEMBER) -> Row:
        return {"lastUpdated": updated, "updatedBy": by, "dateEntered": entered, "enteredBy": by}

    @staticmethod
    def _company_custom_fields(region: str | None, autopay: bool | None) -> list[Row]:
        return [
            {
                "id": 11,
                "caption": "Billing Region",
                "type": "Text",
                "entryMethod": "EntryField",
                "numberOfDecimals": 0,
                "value": region,
            },
            {
                "id": 12,
                "caption": "Autopay",
                "type": "Checkbox",
                "entryMethod": "EntryField",
                "numberOfDecimals": 0,
                "value": autopay,
            },
        ]

    def _company_row(
        self,
        *,
        rid: int,
        identifier: str,
        name: str,
        status_id: int = 1,
        currency: str = "USD",
        billing_contact: Row | None = None,
        email: str | None = None,
        deleted: bool = False,
        entered: str,
        updated: str,
        region: str | None = None,
        autopay: bool | None = None,
        address: tuple[str | None, str | None, str | None, str | None] = (None, None, None, None),
        phone: str | None = None,
    ) -> Row:
        """Company, fields per pycw models ``Company`` (L7452+) and research 1.2."""
        line1, city, state, zip_code = address
        return {
            "id": rid,
            "identifier": identifier,
            "name": name,
            "status": _STATUS_REFS[status_id],
            "types": list(_CLIENT_TYPE),
            "addressLine1": line1,
            "addressLine2": None,
            "city": city,
            "state": state,
            "zip": zip_code,
            "country": _COUNTRY_US,
            "phoneNumber": phone,
            "website": None,
            "accountNumber": None,
            "billingContact": billing_contact,
            "billingTerms": _TERMS_REFS[1],
            "currency": _CURRENCY_REFS[currency],
            "invoiceToEmailAddress": email,
            "invoiceCCEmailAddress": None,
            "deletedFlag": deleted,
            "dateDeleted": updated if deleted else None,
            "deletedBy": API_MEMBER if deleted else None,
            "customFields": self._company_custom_fields(region, autopay),
            "_info": self._info(entered, updated),
        }

    def _company_template(self) -> Row:
        row = self._company_row(
            rid=1,
            identifier="x",
            name="x",
            billing_contact={"id": 1, "name": "x"},
            entered="x",
            updated="x",
        )
        row["deletedBy"] = row["dateDeleted"] = "x"
        return row

    def _contact_row(
        self,
        *,
        rid: int,
        first: str,
        last: str,
        company_ref: Row,
        emails: list[tuple[str, bool]],
        phone: str | None,
        entered: str,
        updated: str,
    ) -> Row:
        """Contact, fields per pycw ``ContactModel`` / ``ContactCommunicationItemModel``."""
        items: list[Row] = []
        for n, (address, default) in enumerate(emails, start=1):
            items.append(
                {
                    "id": rid * 10 + n,
                    "type": {"id": 1, "name": "Email"},
                    "value": address,
                    "extension": None,
                    "defaultFlag": default,
                    "communicationType": "Email",
                }
            )
        if phone:
            items.append(
                {
                    "id": rid * 10 + 9,
                    "type": {"id": 2, "name": "Direct"},
                    "value": phone,
                    "extension": None,
                    "defaultFlag": True,
                    "communicationType": "Phone",
                }
            )
        return {
            "id": rid,
            "firstName": first,
            "lastName": last,
            "company": company_ref,
            "title": "Accounts Payable",
            "inactiveFlag": False,
            "defaultFlag": True,
            "defaultBillingFlag": True,
            "communicationItems": items,
            "_info": self._info(entered, updated),
        }

    def _contact_template(self) -> Row:
        return self._contact_row(
            rid=1,
            first="x",
            last="x",
            company_ref={"id": 1, "identifier": "x", "name": "x"},
            emails=[],
            phone=None,
            entered="x",
            updated="x",
        )

    def _invoice_row(
        self,
        *,
        rid: int,
        number: str,
        kind: str,
        status_id: int,
        company_ref: Row,
        currency: Row,
        date: str,
        due: str,
        subtotal: Decimal,
        tax: Decimal,
        payments: Decimal,
        credits: Decimal,
        entered: str,
        updated: str,
    ) -> Row:
        """Invoice, fields per pycw models ``Invoice`` (L9442-9546) and research 1.3."""
        total = subtotal + tax
        return {
            "id": rid,
            "invoiceNumber": number,
            "type": kind,
            "status": _INVOICE_STATUS_REFS[status_id],
            "company": company_ref,
            "billToCompany": company_ref,
            "shipToCompany": company_ref,
            "applyToType": "All",
            "applyToId": None,
            "date": date,
            "dueDate": due,
            "billingTerms": _TERMS_REFS[1],
            "currency": currency,
            "subtotal": _num(subtotal),
            "total": _num(total),
            "salesTax": _num(tax),
            "payments": _num(payments),
            "credits": _num(credits),
            "balance": _num(total - payments - credits),
            "downpaymentApplied": 0,
            "reference": None,
            "customerPO": None,
            "internalNotes": None,
            "customFields": [],
            "_info": self._info(entered, updated),
        }

    def _invoice_template(self) -> Row:
        ref = {"id": 1, "identifier": "x", "name": "x"}
        zero = Decimal(0)
        row = self._invoice_row(
            rid=1,
            number="x",
            kind="Standard",
            status_id=1,
            company_ref=ref,
            currency=_CURRENCY_REFS["USD"],
            date="x",
            due="x",
            subtotal=zero,
            tax=zero,
            payments=zero,
            credits=zero,
            entered="x",
            updated="x",
        )
        row["applyToId"] = 1
        row["reference"] = row["customerPO"] = row["internalNotes"] = "x"
        return row

    def _payment_row(
        self, *, rid: int, invoice: Row, amount: Decimal, date: str, kind: str, by: str, now: str
    ) -> Row:
        """Payment, fields per pycw ``PaymentModel``: id, type, invoice, credit, amount,
        paymentDate, appliedBy, _info (``amount`` required: spinen connectwise-finance client)."""
        return {
            "id": rid,
            "type": kind,
            "invoice": {"id": invoice["id"], "identifier": invoice["invoiceNumber"]},
            "credit": None,
            "amount": _num(amount),
            "paymentDate": date,
            "appliedBy": by,
            "_info": self._info(now, now),
        }

    def _payment_template(self) -> Row:
        invoice = {"id": 1, "invoiceNumber": "x"}
        row = self._payment_row(
            rid=1, invoice=invoice, amount=Decimal(0), date="x", kind="x", by="x", now="x"
        )
        row["credit"] = {"id": 1, "identifier": "x"}
        return row

    def _seed(self, n_companies: int, n_invoices: int) -> None:
        d = self._data
        rng = d.rng
        plain_names: list[str] = []
        company_ids: list[int] = []
        cid, contact_id = 100, 500
        for i in range(n_companies):
            cid += rng.randint(1, 3)  # gaps, as in a real tenant with deleted history
            if i % 5 == 2:
                name = d.awkward_name(i // 5)
            elif i == 11 and plain_names:
                name = plain_names[0]  # two companies share a name: matching must not guess
            else:
                name = d.company_name()
                plain_names.append(name)
            identifier = d.identifier(name, self._identifiers)
            entered = d.datetime_between(_SEED_START, _SEED_START + dt.timedelta(days=400))
            updated = d.datetime_between(entered, _SEED_END)
            currency = "USD" if rng.random() < 0.8 else rng.choice(["CAD", "GBP", "EUR", "AUD"])
            ref = {"id": cid, "identifier": identifier, "name": name}
            self._company_refs[cid] = ref
            billing_ref: Row | None = None
            if i % 7 != 4:
                contact_id += rng.randint(1, 2)
                first, last = d.person(awkward=i % 9 == 3)
                emails: list[tuple[str, bool]] = []
                if i % 11 != 10:  # some billing contacts have no e-mail at all
                    emails.append((d.email(f"{first} {last}", name), i % 6 != 5))
                    if i % 6 == 5:  # two addresses, the second is the default
                        emails.append((d.email(f"ap {last}", name), True))
                self.contacts.insert(
                    self._contact_row(
                        rid=contact_id,
                        first=first,
                        last=last,
                        company_ref=ref,
                        emails=emails,
                        phone=f"555-01{rng.randint(0, 99):02d}",
                        entered=iso_z(entered),
                        updated=iso_z(updated),
                    )
                )
                billing_ref = {"id": contact_id, "name": f"{first} {last}"}
            deleted = i % 13 == 7  # soft-deleted companies (deletedFlag, research 1.2)
            self.companies.insert(
                self._company_row(
                    rid=cid,
                    identifier=identifier,
                    name=name,
                    status_id=2 if deleted else (3 if i % 17 == 16 else 1),
                    currency=currency,
                    billing_contact=billing_ref,
                    email=d.email("billing", name) if rng.random() < 0.7 else None,
                    deleted=deleted,
                    entered=iso_z(entered),
                    updated=iso_z(updated),
                    region=rng.choice(["West", "East", "Central", None]),
                    autopay=rng.random() < 0.3,
                    address=(f"{rng.randint(1, 9999)} Main St", "Springfield", "IL", "62701"),
                    phone=f"555-02{rng.randint(0, 99):02d}",
                )
            )
            company_ids.append(cid)
        self._seed_invoices(n_invoices, company_ids)
        self.companies.version = self.contacts.version = self.invoices.version = 0

    def _seed_invoices(self, n: int, company_ids: list[int]) -> None:
        if not company_ids:
            return
        d = self._data
        rng = d.rng
        iid = 1000
        for j in range(n):
            iid += rng.randint(1, 2)
            company = self.companies.rows[rng.choice(company_ids)]
            date = d.datetime_between(_SEED_START, _SEED_END).replace(hour=0, minute=0, second=0)
            updated = d.datetime_between(date, _SEED_END)
            subtotal = d.money(50, 5000)
            tax = (subtotal * Decimal("0.08")).quantize(Decimal("0.01")) if j % 2 else Decimal(0)
            kind = "CreditMemo" if j % 12 == 5 else ("Agreement" if j % 7 == 3 else "Standard")
            credits = Decimal(0)
            pays: list[Decimal] = []
            if kind == "CreditMemo":
                subtotal, tax = -subtotal, -tax
                status = 2
            else:
                total = subtotal + tax
                bucket = j % 10
                if bucket in (0, 1):  # fully paid, sometimes in two instalments
                    if j % 20 == 0:
                        first = (total / 3).quantize(Decimal("0.01"))
                        pays = [first, total - first]
                    else:
                        pays = [total]
                    status = 3
                elif bucket in (2, 3):  # partially paid
                    pays = [
                        (total * Decimal(rng.choice([25, 40, 50, 75])) / 100).quantize(
                            Decimal("0.01")
                        )
                    ]
                    status = 2
                else:
                    status = rng.choice([1, 2])
                    if j % 23 == 6:  # a tenant status for an invoice voided in the UI
                        status = 4
                if j % 17 == 9 and not pays:
                    credits = (total / 4).quantize(Decimal("0.01"))
            row = self._invoice_row(
                rid=iid,
                number=str(iid + 9000),
                kind=kind,
                status_id=status,
                company_ref=self._company_refs[company["id"]],
                currency=company["currency"],
                date=iso_z(date),
                due=iso_z(date + dt.timedelta(days=30)),
                subtotal=subtotal,
                tax=tax,
                payments=sum(pays, Decimal(0)),
                credits=credits,
                entered=iso_z(date),
                updated=iso_z(updated),
            )
            self.invoices.insert(row)
            for n_pay, amount in enumerate(pays):
                self._last_payment_id += 1
                when = iso_z(date + dt.timedelta(days=5 + 10 * n_pay))
                payment = self._payment_row(
                    rid=self._last_payment_id,
                    invoice=row,
                    amount=amount,
                    date=when,
                    kind="Payment",
                    by=API_MEMBER,
                    now=when,
                )
                self._payments.setdefault(iid, {})[payment["id"]] = payment

    # ==========================================================================================
    # HTTP plumbing: routes, auth, codebase, errors
    # ==========================================================================================

    def _register_routes(self) -> None:
        r = self.router
        api = "/{codebase}/apis/3.0"
        # Unauthenticated codebase discovery (pycw _try_get_codebase_from_api; djcw
        # CompanyInfoManager).
        r.add("GET", "/login/companyinfo/{company}", self._companyinfo)
        r.add(
            "GET", api + "/system/callbackkeys/{key_id}", self._wrap(self._signing_key, auth=False)
        )
        r.add("GET", api + "/system/info", self._wrap(self._system_info))
        for table, base in (
            (self.companies, "/company/companies"),
            (self.contacts, "/company/contacts"),
            (self.invoices, "/finance/invoices"),
        ):
            r.add("GET", api + base + "/count", self._wrap(self._counter(table)))
            r.add("GET", api + base, self._wrap(self._lister(table)))
            r.add("GET", api + base + "/{id:int}", self._wrap(self._getter(table)))
        pay = api + "/finance/invoices/{id:int}/payments"
        r.add("GET", pay + "/count", self._wrap(self._count_payments))
        r.add("GET", pay, self._wrap(self._list_payments))
        r.add("POST", pay, self._wrap(self._post_payment))
        r.add("GET", pay + "/{payment_id:int}", self._wrap(self._get_payment))
        r.add("DELETE", pay + "/{payment_id:int}", self._wrap(self._delete_payment))
        r.add("POST", api + "/company/companies", self._wrap(self._post_company))
        r.add("PATCH", api + "/company/companies/{id:int}", self._wrap(self._patch_company))
        r.add("DELETE", api + "/company/companies/{id:int}", self._wrap(self._delete_company))
        r.add("POST", api + "/finance/invoices", self._wrap(self._post_invoice))
        r.add("PATCH", api + "/finance/invoices/{id:int}", self._wrap(self._patch_invoice))
        r.add("DELETE", api + "/finance/invoices/{id:int}", self._wrap(self._delete_invoice))

    def _wrap(self, handler: Handler, *, auth: bool = True) -> Handler:
        def wrapped(request: Request) -> Response:
            try:
                # The tenant's codebase only; another one is a 404 (djcw re-fetches companyinfo).
                if request.params.get("codebase", "") + "/" != self.codebase:
                    raise _fail(
                        404, "NotFound", f"codebase {request.params.get('codebase')}/ not found."
                    )
                if auth:
                    self._authenticate(request)
                if request.method in ("POST", "PATCH", "PUT"):
                    ctype = (request.header("content-type") or "").split(";")[0].strip().lower()
                    if ctype != "application/json":  # 415 (CW "PSA API Requests" page)
                        raise _fail(
                            415, "UnsupportedMediaType", "Content-Type must be application/json."
                        )
                response = handler(request)
            except HTTPError as exc:
                response = exc.response
            except ConditionError as exc:
                # Unknown field → 400 ApiFindCondition (LabtechConsulting/ConnectWise-Manage-
                # Powershell issue #4).
                response = _error(400, ConditionError.code, str(exc))
            # Responses carry api-current-version (cwps Invoke-CWMWebRequest.ps1).
            response.headers.setdefault("api-current-version", self.api_version)
            return response

        return wrapped

    def _auth_failure(self, message: str) -> HTTPError:
        if self.auth_failure_status == 404:
            # "on cloud … you may have incorrect authentication" (CW "PSA API Requests" page).
            return _fail(404, "NotFound", "The requested resource was not found.")
        return _fail(self.auth_failure_status, "Unauthorized", message)

    def _authenticate(self, request: Request) -> None:
        """Basic base64("{company}+{public}:{private}") AND clientId (pycw _get_headers; djcw)."""
        header = request.header("authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic" or not token:
            raise self._auth_failure("Authorization header is missing or is not Basic.")
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise self._auth_failure("Authorization header could not be decoded.") from None
        user, _, password = decoded.partition(":")
        company, _, public = user.partition("+")
        ok = (
            company.casefold() == self.company_id.casefold()
            and hmac.compare_digest(public.encode(), self.public_key.encode())
            and hmac.compare_digest(password.encode(), self.private_key.encode())
        )
        if not ok:
            raise self._auth_failure("The credentials provided are invalid.")
        client_id = (request.header("clientid") or "").strip()
        if not client_id:
            raise self._auth_failure("A clientId header is required.")
        if client_id.lower() != self.client_id.lower():
            raise self._auth_failure("The clientId provided is not valid.")

    def fault_response(self, kind: Fault, request: Request, rule: FaultRule) -> Response:
        if kind is Fault.RATE_LIMIT:
            # 429 "will include a Retry-After header with a numeric value that indicates the
            # number of seconds to wait" (CW "PSA API Requests" page); enforced by Cloudflare
            # (pyconnectwise PR #41), whose rate-limit body is plain text.
            return Response.text(
                rule.message or "error code: 1015",
                429,
                {"Retry-After": format_seconds(rule.retry_after), **rule.headers},
            )
        if kind is Fault.EXPIRED_TOKEN:
            # CW has no tokens: revoked or rotated API keys look like bad credentials.
            response = self._auth_failure(
                rule.message or "The credentials provided are invalid."
            ).response
            response.headers.update(rule.headers)
            response.headers.setdefault("api-current-version", self.api_version)
            return response
        # 500 "retry; some are timeouts" (CW page); pycw retries when the body says "timeout".
        response = _error(rule.status, "ConnectWiseApi", rule.message or "An error has occurred.")
        response.headers.update(rule.headers)
        return response

    def _companyinfo(self, request: Request) -> Response:
        company = request.params["company"]
        if company.casefold() != self.company_id.casefold():
            return _error(404, "NotFound", f"Company {company} was not found.")
        # Keys as returned by a real tenant (KelvinTegelaar/PowerShellWarrantyReports PR #32).
        return Response.json_body(
            {
                "CompanyName": "Sandbox MSP",
                "Codebase": self.codebase,
                "VersionCode": "v" + self.api_version.split(".")[0] + ".1",
                "VersionNumber": "v4.6.12345",
                "CompanyID": self.company_id,
                "IsCloud": self.is_cloud,
                "SiteUrl": request.base_url.split("://", 1)[-1],
                "AllowedOrigins": ["*.myconnectwise.net"],
            }
        )

    def _system_info(self, request: Request) -> Response:
        # cwps Connect-CWM validates credentials with GET /system/info.
        return Response.json_body(
            {
                "version": f"v{self.api_version}.12345",
                "isCloud": self.is_cloud,
                "serverTimeZone": "Eastern Standard Time",
                "cloudRegion": "NA",
            }
        )

    def _signing_key(self, request: Request) -> Response:
        if request.params["key_id"] != self.key_id:
            return _error(404, "NotFound", "Signing key not found.")
        return Response.json_body({"signing_key": self.signing_key})

    # ==========================================================================================
    # listing: conditions, orderBy, fields, paging, Link headers
    # ==========================================================================================

    @staticmethod
    def _params(request: Request) -> dict[str, str]:
        """Query parameters by lower-case name (CW accepts ``PageSize`` and ``pagesize``)."""
        return {k.lower(): v for k, v in request.query.items()}

    @staticmethod
    def _int_param(params: Mapping[str, str], name: str, default: int) -> int:
        raw = params.get(name.lower(), "").strip()
        if not raw:
            return default
        try:
            return int(raw)
        except ValueError:
            raise _fail(400, "InvalidObject", f"{name} must be an integer.") from None

    def _predicate(self, resource: str, schema: Schema, text: str) -> Predicate:
        key = (resource, text)
        pred = self._predicates.get(key)
        if pred is None:
            pred = compile_conditions(text, schema)
            if len(self._predicates) > 256:
                self._predicates.clear()
            self._predicates[key] = pred
        return pred

    def _filter(
        self,
        resource: str,
        schema: Schema,
        rows: Mapping[int, Row],
        ids: list[int],
        params: Mapping[str, str],
    ) -> list[int]:
        """Ids that match conditions/customFieldConditions, in orderBy order (default id asc)."""
        if params.get("childconditions", "").strip():
            raise _fail(400, "InvalidObject", "childConditions is not supported by this sandbox.")
        preds: list[Predicate] = []
        conditions = params.get("conditions", "").strip()
        if conditions:
            preds.append(self._predicate(resource, schema, conditions))
        cf_conditions = params.get("customfieldconditions", "").strip()
        if cf_conditions:
            cf_pred = self._predicate("customFields", _CUSTOM_FIELD_SCHEMA, cf_conditions)
            preds.append(lambda row: any(cf_pred(cf) for cf in row.get("customFields") or ()))
        order = params.get("orderby", "").strip()
        order_keys = parse_order_by(order, schema) if order else []
        if len(preds) == 1:
            only = preds[0]
            matched = [i for i in ids if only(rows[i])]
        elif preds:
            matched = [i for i in ids if all(p(rows[i]) for p in preds)]
        else:
            matched = list(ids)
        for get, descending in reversed(order_keys):
            key = sort_key(get)
            matched.sort(key=lambda i: key(rows[i]), reverse=descending)
        return matched

    def _matched(self, table: _Table, params: Mapping[str, str]) -> list[int]:
        key = (
            table.name,
            table.version,
            params.get("conditions", "").strip(),
            params.get("customfieldconditions", "").strip(),
            params.get("childconditions", "").strip(),
            params.get("orderby", "").strip(),
        )
        cached = self._match_cache.get(key)
        if cached is not None:
            self._match_cache.move_to_end(key)
            return cached
        matched = self._filter(table.name, table.schema, table.rows, table.ids, params)
        self._match_cache[key] = matched
        while len(self._match_cache) > 32:
            self._match_cache.popitem(last=False)
        return matched

    @staticmethod
    def _project(row: Row, fields_param: str) -> Row:
        """``fields=id,name,company/name`` keeps only those paths (pycw types.py ``fields``)."""
        if not fields_param:
            return row
        out: Row = {}
        for raw in fields_param.split(","):
            path = [p for p in raw.strip().split("/") if p]
            if not path:
                continue
            src: Any = row
            for p in path:
                src = src.get(p) if isinstance(src, dict) else None
                if src is None:
                    break
            if src is None and not (len(path) == 1 and path[0] in row):
                continue
            dst = out
            for p in path[:-1]:
                dst = dst.setdefault(p, {})
            dst[path[-1]] = src
        return out

    @staticmethod
    def _link(request: Request, size: int, **position: int) -> str:
        keep = [
            (k, v)
            for k, v in parse_qsl(request.raw_query, keep_blank_values=True)
            if k.lower() not in ("page", "pagesize", "pageid")
        ]
        keep.append(("pageSize", str(size)))
        keep += [(k, str(v)) for k, v in position.items()]
        return f"{request.base_url}{request.path}?{urlencode(keep, quote_via=quote)}"

    def _page(
        self,
        request: Request,
        resource: str,
        rows: Mapping[int, Row],
        matched: list[int],
        params: Mapping[str, str],
    ) -> tuple[Response, PageInfo]:
        """Paging (research 1.4): ``page`` 1-based, ``pageSize`` default 25 capped at 1000,
        RFC 5988 ``Link`` with first/prev/next/last (pycw utils/helpers.py parse_link_headers
        reads ``page=(\\d+)>; rel="…"``, so ``page`` comes last); ``pagination-type:
        forward-only`` ignores ``page``, forbids ``orderBy`` and pages by ``pageId`` (= id >
        pageId) with only a ``next`` link (cwps Invoke-CWMAllResult.ps1; lazyadministrator post).
        """
        size = self._int_param(params, "pageSize", DEFAULT_PAGE_SIZE)
        size = DEFAULT_PAGE_SIZE if size < 1 else min(size, MAX_PAGE_SIZE)  # silently capped
        forward = (request.header("pagination-type") or "").strip().lower() == "forward-only"
        links: list[str] = []
        if forward:
            page_id = self._int_param(params, "pageId", 0)
            start = bisect.bisect_right(matched, page_id)
            page_ids = matched[start : start + size]
            has_next = start + size < len(matched)
            if has_next:
                links.append(f'<{self._link(request, size, pageId=page_ids[-1])}>; rel="next"')
            info = PageInfo(resource, tuple(page_ids), None, page_id, True, has_next)
        else:
            page = max(self._int_param(params, "page", 1), 1)
            last = max(math.ceil(len(matched) / size), 1)
            page_ids = matched[(page - 1) * size : page * size]
            has_next = page < last
            if page > 1:
                links.append(f'<{self._link(request, size, page=1)}>; rel="first"')
                links.append(f'<{self._link(request, size, page=min(page - 1, last))}>; rel="prev"')
            if has_next:
                links.append(f'<{self._link(request, size, page=page + 1)}>; rel="next"')
                links.append(f'<{self._link(request, size, page=last)}>; rel="last"')
            info = PageInfo(resource, tuple(page_ids), page, None, False, has_next)
        fields_param = params.get("fields", "").strip()
        body = [self._project(rows[i], fields_param) for i in page_ids]
        headers = {"Link": ", ".join(links)} if links else {}
        return Response.json_body(body, 200, headers), info

    def _lister(self, table: _Table) -> Handler:
        def handler(request: Request) -> Response:
            params = self._params(request)
            forward = (request.header("pagination-type") or "").strip().lower() == "forward-only"
            if forward and params.get("orderby", "").strip():
                raise _fail(
                    400, "InvalidObject", "orderBy is not supported with forward-only pagination."
                )
            with self._lock:
                matched = self._matched(table, params)
                response, info = self._page(request, table.name, table.rows, matched, params)
            self.server.page_served(request, info)
            return response

        return handler

    def _counter(self, table: _Table) -> Handler:
        def handler(request: Request) -> Response:
            with self._lock:
                matched = self._matched(table, self._params(request))
            return Response.json_body({"count": len(matched)})  # model Count (pycw L1013)

        return handler

    def _getter(self, table: _Table) -> Handler:
        def handler(request: Request) -> Response:
            rid = int(request.params["id"])
            with self._lock:
                row = table.rows.get(rid)
                if row is None:
                    raise _fail(404, "NotFound", f"{table.label} with id {rid} was not found.")
                return Response.json_body(
                    self._project(row, self._params(request).get("fields", ""))
                )

        return handler

    # ==========================================================================================
    # writes: companies & invoices (POST 201, PATCH ops, DELETE 204)
    # ==========================================================================================

    def _touch(self, row: Row) -> None:
        """Every write bumps ``_info.lastUpdated`` (research 1.1: ``yyyy-MM-ddTHH:mm:ssZ`` UTC)."""
        info = dict(row.get("_info") or {})
        info["lastUpdated"] = self._now()
        info["updatedBy"] = API_MEMBER
        row["_info"] = info

    def _body_object(self, request: Request, resource: str) -> Row:
        body = request.json()
        if not isinstance(body, dict):
            raise _fail(
                400, "InvalidObject", f"{resource} object is invalid: expected a JSON object."
            )
        return body

    def _ref_id(self, value: Any, resource: str, field_name: str) -> int:
        if (
            isinstance(value, dict)
            and isinstance(value.get("id"), int)
            and not isinstance(value.get("id"), bool)
        ):
            return int(value["id"])
        raise _invalid(resource, field_name, f'{field_name} must be a reference {{"id": n}}.')

    def _resolve_ref(self, key: str, value: Any, resource: str) -> Any:
        """References are written as ``{"id": n}`` (djcw _format_patch_request_body)."""
        if value is None:
            return None
        if key in ("company", "billToCompany", "shipToCompany"):
            rid = self._ref_id(value, resource, key)
            if rid not in self._company_refs:
                raise _invalid(resource, key, f"Company with id {rid} was not found.")
            return self._company_refs[rid]
        if key == "billingContact":
            rid = self._ref_id(value, resource, key)
            contact = self.contacts.rows.get(rid)
            if contact is None:
                raise _invalid(resource, key, f"Contact with id {rid} was not found.")
            return {"id": rid, "name": f"{contact['firstName']} {contact['lastName']}"}
        if key == "status":
            rid = self._ref_id(value, resource, key)
            table = _STATUS_REFS if resource == "company" else _INVOICE_STATUS_REFS
            if rid not in table:
                raise _invalid(resource, key, f"status id {rid} is not valid.")
            return table[rid]
        if key == "billingTerms":
            rid = self._ref_id(value, resource, key)
            if rid not in _TERMS_REFS:
                raise _invalid(resource, key, f"billingTerms id {rid} is not valid.")
            return _TERMS_REFS[rid]
        if key == "currency":
            if isinstance(value, dict) and value.get("currencyCode") in _CURRENCY_REFS:
                return _CURRENCY_REFS[value["currencyCode"]]
            rid = self._ref_id(value, resource, key)
            for ref in _CURRENCY_REFS.values():
                if ref["id"] == rid:
                    return ref
            raise _invalid(resource, key, f"currency id {rid} is not valid.")
        return value

    @staticmethod
    def _check_custom_fields(value: Any, resource: str) -> list[Row]:
        if not isinstance(value, list) or not all(
            isinstance(cf, dict) and isinstance(cf.get("id"), int) for cf in value
        ):
            raise _invalid(resource, "customFields", "customFields must be a list of {id, value}.")
        return [dict(cf) for cf in value]

    _COMPANY_READ_ONLY = frozenset({"id", "_info", "dateDeleted", "deletedBy"})
    _INVOICE_READ_ONLY = frozenset({"id", "_info", "total", "payments", "balance"})
    _INVOICE_MONEY = frozenset({"subtotal", "salesTax", "credits", "downpaymentApplied"})

    def _apply_ops(self, row: Row, ops: Any, resource: str, read_only: frozenset[str]) -> Row:
        """PATCH body: ``[{"op": "replace", "path": "name", "value": …}]``, ops add/replace/
        remove, path = bare field name (djcw _format_patch_request_body; pycw types.py Patch).
        ``customFields`` is replaced whole ([secondary]: one element wipes the others)."""
        if not isinstance(ops, list) or not ops:
            raise _fail(
                400, "InvalidObject", "PATCH body must be a non-empty JSON array of operations."
            )
        changed = dict(row)
        for op in ops:
            if not isinstance(op, dict) or not isinstance(op.get("path"), str):
                raise _fail(400, "InvalidObject", "each operation needs op, path and value.")
            kind = str(op.get("op", "")).lower()
            key = op["path"].strip().lstrip("/")
            if kind not in ("add", "replace", "remove"):
                raise _fail(400, "InvalidObject", f"op {op.get('op')!r} is not supported.")
            if "/" in key or key not in row:
                raise _invalid(resource, key, f"{key} is not a valid field.")
            if key in read_only:
                raise _invalid(resource, key, f"{key} is read-only.")
            if kind == "remove":
                changed[key] = [] if isinstance(row[key], list) else None
                continue
            if "value" not in op:
                raise _fail(400, "InvalidObject", f"operation on {key} has no value.")
            value = op["value"]
            if key == "customFields":
                value = self._check_custom_fields(value, resource)
            elif key in _REF_KEYS:
                value = self._resolve_ref(key, value, resource)
            elif (
                key in self._INVOICE_MONEY
                and resource == "invoice"
                and (isinstance(value, bool) or not isinstance(value, int | float))
            ):
                raise _invalid(resource, key, f"{key} must be a number.")
            changed[key] = value
        return changed

    def _recompute(self, row: Row) -> None:
        total = _dec(row["subtotal"]) + _dec(row["salesTax"])
        row["total"] = _num(total)
        row["balance"] = _num(total - _dec(row["payments"]) - _dec(row["credits"]))

    def _patch_company(self, request: Request) -> Response:
        rid = int(request.params["id"])
        ops = request.json()
        with self._lock:
            row = self._require(self.companies, rid)
            changed = self._apply_ops(row, ops, "company", self._COMPANY_READ_ONLY)
            self._check_company(changed, exclude=rid)
            self._store_company(changed)
            return Response.json_body(changed)

    def _check_company(self, row: Row, exclude: int | None) -> None:
        for key, limit in (("identifier", 25), ("name", 50)):
            value = row.get(key)
            if not isinstance(value, str) or not value.strip():
                raise _invalid("company", key, f"{key} is required.", code="NullObject")
            if len(value) > limit:
                raise _invalid("company", key, f"{key} may be at most {limit} characters.")
        ident = row["identifier"].lower()
        for other in self.companies.rows.values():
            if other["id"] != exclude and other["identifier"].lower() == ident:
                # ObjectExists (research 1.7 error codes).
                raise _invalid(
                    "company", "identifier", "The identifier is already in use.", "ObjectExists"
                )

    def _store_company(self, row: Row) -> None:
        """Write (insert or replace) a company row, bumping lastUpdated and the shared ref."""
        rid = row["id"]
        if row.get("deletedFlag") and not row.get("dateDeleted"):
            row["dateDeleted"], row["deletedBy"] = self._now(), API_MEMBER
        if not row.get("deletedFlag"):
            row["dateDeleted"] = row["deletedBy"] = None
        self._touch(row)
        ref = self._company_refs.setdefault(rid, {"id": rid})
        if ref.get("identifier") != row["identifier"] or ref.get("name") != row["name"]:
            ref["identifier"], ref["name"] = row["identifier"], row["name"]
            self.invoices.version += 1  # references are joins: filters on company/name change
            self.contacts.version += 1
        if rid in self.companies.rows:
            self.companies.rows[rid] = row
            self.companies.version += 1
        else:
            self.companies.insert(row)

    def _post_company(self, request: Request) -> Response:
        body = self._body_object(request, "company")
        with self._lock:
            now = self._now()
            row = self._company_row(
                rid=0,
                identifier=str(body.get("identifier") or ""),
                name=str(body.get("name") or ""),
                entered=now,
                updated=now,
            )
            for key, value in body.items():
                if key in row and key not in self._COMPANY_READ_ONLY:
                    if key == "customFields":
                        row[key] = self._check_custom_fields(value, "company")
                    elif key in _REF_KEYS:
                        row[key] = self._resolve_ref(key, value, "company")
                    else:
                        row[key] = value
            self._check_company(row, exclude=None)
            row["id"] = self.companies.next_id()
            self._store_company(row)
            return Response.json_body(row, 201)  # POST returns 201 + record (CW page)

    def _delete_company(self, request: Request) -> Response:
        rid = int(request.params["id"])
        with self._lock:
            row = dict(self._require(self.companies, rid))
            row["deletedFlag"] = True
            self._store_company(row)
        return Response.empty(204)

    def _require(self, table: _Table, rid: int) -> Row:
        row = table.rows.get(rid)
        if row is None:
            raise _fail(404, "NotFound", f"{table.label} with id {rid} was not found.")
        return row

    def _store_invoice(self, row: Row) -> None:
        self._touch(row)
        if row["id"] in self.invoices.rows:
            self.invoices.rows[row["id"]] = row
            self.invoices.version += 1
        else:
            self.invoices.insert(row)

    def _patch_invoice(self, request: Request) -> Response:
        rid = int(request.params["id"])
        ops = request.json()
        with self._lock:
            row = self._require(self.invoices, rid)
            changed = self._apply_ops(row, ops, "invoice", self._INVOICE_READ_ONLY)
            if changed["type"] not in _INVOICE_TYPES:
                raise _invalid(
                    "invoice", "type", f"type must be one of {', '.join(_INVOICE_TYPES)}."
                )
            self._recompute(changed)
            self._store_invoice(changed)
            return Response.json_body(changed)

    def _post_invoice(self, request: Request) -> Response:
        body = self._body_object(request, "invoice")
        with self._lock:
            if "company" not in body:
                raise _invalid("invoice", "company", "company is required.", code="NullObject")
            company_ref = self._resolve_ref("company", body["company"], "invoice")
            kind = body.get("type", "Standard")
            if kind not in _INVOICE_TYPES:
                raise _invalid(
                    "invoice", "type", f"type must be one of {', '.join(_INVOICE_TYPES)}."
                )
            company = self.companies.rows[company_ref["id"]]
            now = self._now()
            rid = self.invoices.next_id()
            money: dict[str, Decimal] = {}
            for key in ("subtotal", "salesTax", "credits"):
                value = body.get(key, 0)
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise _invalid("invoice", key, f"{key} must be a number.")
                money[key] = _dec(value)
            date = _parse_when(body["date"], "invoice", "date") if "date" in body else now
            due = _parse_when(body["dueDate"], "invoice", "dueDate") if "dueDate" in body else date
            row = self._invoice_row(
                rid=rid,
                number=str(body.get("invoiceNumber") or rid + 9000),
                kind=kind,
                status_id=1,
                company_ref=company_ref,
                currency=company["currency"],
                date=date,
                due=due,
                subtotal=money["subtotal"],
                tax=money["salesTax"],
                payments=Decimal(0),
                credits=money["credits"],
                entered=now,
                updated=now,
            )
            for key in (
                "reference",
                "customerPO",
                "internalNotes",
                "status",
                "billingTerms",
                "applyToType",
                "applyToId",
            ):
                if key in body:
                    row[key] = self._resolve_ref(key, body[key], "invoice")
            if "customFields" in body:
                row["customFields"] = self._check_custom_fields(body["customFields"], "invoice")
            self._store_invoice(row)
            return Response.json_body(row, 201)

    def _delete_invoice(self, request: Request) -> Response:
        rid = int(request.params["id"])
        with self._lock:
            self._require(self.invoices, rid)
            self._remove_invoice(rid)
        return Response.empty(204)  # hard delete: it vanishes from lists (research 1.3)

    def _remove_invoice(self, rid: int) -> None:
        self.invoices.remove(rid)
        self._payments.pop(rid, None)

    # ==========================================================================================
    # payments (research 1.6: GET/POST …/payments, GET/DELETE …/payments/{paymentId})
    # ==========================================================================================

    def _payment_rows(self, invoice_id: int) -> dict[int, Row]:
        self._require(self.invoices, invoice_id)
        return self._payments.get(invoice_id, {})

    def _list_payments(self, request: Request) -> Response:
        invoice_id = int(request.params["id"])
        params = self._params(request)
        forward = (request.header("pagination-type") or "").strip().lower() == "forward-only"
        if forward and params.get("orderby", "").strip():
            raise _fail(
                400, "InvalidObject", "orderBy is not supported with forward-only pagination."
            )
        with self._lock:
            rows = self._payment_rows(invoice_id)
            matched = self._filter("payments", self._payment_schema, rows, sorted(rows), params)
            response, info = self._page(request, "payments", rows, matched, params)
        self.server.page_served(request, info)
        return response

    def _count_payments(self, request: Request) -> Response:
        invoice_id = int(request.params["id"])
        with self._lock:
            rows = self._payment_rows(invoice_id)
            matched = self._filter(
                "payments", self._payment_schema, rows, sorted(rows), self._params(request)
            )
        return Response.json_body({"count": len(matched)})

    def _get_payment(self, request: Request) -> Response:
        invoice_id, pid = int(request.params["id"]), int(request.params["payment_id"])
        with self._lock:
            row = self._payment_rows(invoice_id).get(pid)
            if row is None:
                raise _fail(404, "NotFound", f"Payment with id {pid} was not found.")
            return Response.json_body(row)

    def _post_payment(self, request: Request) -> Response:
        invoice_id = int(request.params["id"])
        body = self._body_object(request, "payment")
        with self._lock:
            invoice = self._require(self.invoices, invoice_id)
            payment = self._add_payment(invoice, body)
            return Response.json_body(payment, 201)

    def _add_payment(self, invoice: Row, body: Mapping[str, Any]) -> Row:
        """POST a payment: ``amount`` required and positive, at most the balance; updates the
        invoice's ``payments`` and ``balance`` (research 1.6) and bumps its lastUpdated."""
        amount_raw = body.get("amount")
        if amount_raw is None:
            raise _invalid("payment", "amount", "amount is required.", code="NullObject")
        if isinstance(amount_raw, bool) or not isinstance(amount_raw, int | float | str):
            raise _invalid("payment", "amount", "amount must be a number.")
        try:
            amount = Decimal(str(amount_raw))
        except InvalidOperation:
            raise _invalid("payment", "amount", "amount must be a number.") from None
        if not amount.is_finite() or amount <= 0:
            raise _invalid("payment", "amount", "amount must be greater than zero.")
        places = int(invoice["currency"].get("numberOfDecimals", 2))
        if amount != amount.quantize(Decimal(1).scaleb(-places)):
            raise _invalid("payment", "amount", f"amount may have at most {places} decimals.")
        balance = _dec(invoice["balance"])
        if amount > balance:
            raise _invalid(
                "payment", "amount", "The payment amount cannot exceed the invoice balance."
            )
        now = self._now()
        date = (
            _parse_when(body["paymentDate"], "payment", "paymentDate")
            if body.get("paymentDate")
            else now
        )
        kind = body.get("type") or "Payment"
        by = body.get("appliedBy") or API_MEMBER
        if not isinstance(kind, str) or not isinstance(by, str):
            raise _invalid("payment", "type", "type and appliedBy must be strings.")
        self._last_payment_id += 1
        payment = self._payment_row(
            rid=self._last_payment_id,
            invoice=invoice,
            amount=amount,
            date=date,
            kind=kind,
            by=by,
            now=now,
        )
        self._payments.setdefault(invoice["id"], {})[payment["id"]] = payment
        updated = dict(invoice)
        updated["payments"] = _num(_dec(invoice["payments"]) + amount)
        updated["balance"] = _num(balance - amount)
        self._store_invoice(updated)
        return payment

    def _delete_payment(self, request: Request) -> Response:
        invoice_id, pid = int(request.params["id"]), int(request.params["payment_id"])
        with self._lock:
            self.remove_payment(invoice_id, pid)
        return Response.empty(204)

    # ==========================================================================================
    # test-side helpers (no HTTP): read, add, update, delete, churn, callbacks
    # ==========================================================================================

    def company(self, company_id: int) -> Row:
        with self._lock:
            return copy.deepcopy(self._require(self.companies, company_id))

    def contact(self, contact_id: int) -> Row:
        with self._lock:
            return copy.deepcopy(self._require(self.contacts, contact_id))

    def invoice(self, invoice_id: int) -> Row:
        with self._lock:
            return copy.deepcopy(self._require(self.invoices, invoice_id))

    def all_companies(self) -> list[Row]:
        with self._lock:
            return [copy.deepcopy(self.companies.rows[i]) for i in self.companies.ids]

    def all_contacts(self) -> list[Row]:
        with self._lock:
            return [copy.deepcopy(self.contacts.rows[i]) for i in self.contacts.ids]

    def expected_ids(self, stream: str) -> set[str]:
        """What a connector must deliver (as records or quarantined rejects) on a full pull:
        every company, soft-deleted ones included, and every invoice but credit memos, which
        are credits, not invoices a customer pays."""
        with self._lock:
            if stream == "customers":
                return {str(i) for i in self.companies.ids}
            if stream == "invoices":
                return {
                    str(i)
                    for i in self.invoices.ids
                    if self.invoices.rows[i].get("type") != "CreditMemo"
                }
        raise KeyError(f"the ConnectWise sandbox has no stream {stream!r}")

    def all_invoices(self) -> list[Row]:
        with self._lock:
            return [copy.deepcopy(self.invoices.rows[i]) for i in self.invoices.ids]

    def payments(self, invoice_id: int) -> list[Row]:
        """An invoice's payments, oldest first."""
        with self._lock:
            rows = self._payment_rows(invoice_id)
            return [copy.deepcopy(rows[k]) for k in sorted(rows)]

    def add_company(self, name: str, identifier: str | None = None, **fields: Any) -> Row:
        """Create a company (bumps lastUpdated); ``fields`` override any top-level field."""
        with self._lock:
            now = self._now()
            row = self._company_row(
                rid=self.companies.next_id(),
                identifier=identifier or self._data.identifier(name, self._identifiers),
                name=name,
                entered=now,
                updated=now,
            )
            row.update(fields)
            self._store_company(row)
            return copy.deepcopy(row)

    def add_contact(
        self,
        company_id: int,
        first: str,
        last: str,
        emails: list[tuple[str, bool]] | None = None,
        *,
        billing: bool = False,
    ) -> Row:
        """Create a contact; ``emails`` are (address, defaultFlag); ``billing=True`` makes it the
        company's ``billingContact``."""
        with self._lock:
            self._require(self.companies, company_id)
            now = self._now()
            row = self._contact_row(
                rid=self.contacts.next_id(),
                first=first,
                last=last,
                company_ref=self._company_refs[company_id],
                emails=list(emails or []),
                phone=None,
                entered=now,
                updated=now,
            )
            self._touch(row)
            self.contacts.insert(row)
            if billing:
                self.update_company(company_id, billingContact={"id": row["id"]})
            return copy.deepcopy(row)

    def update_company(self, company_id: int, **changes: Any) -> Row:
        """Replace top-level fields (``status={"id": 2}`` style references are resolved)."""
        with self._lock:
            row = dict(self._require(self.companies, company_id))
            for key, value in changes.items():
                is_ref = key in _REF_KEYS and isinstance(value, dict)
                row[key] = self._resolve_ref(key, value, "company") if is_ref else value
            self._store_company(row)
            return copy.deepcopy(row)

    def delete_company(self, company_id: int) -> None:
        """Soft delete (deletedFlag=true), as the API does."""
        self.update_company(company_id, deletedFlag=True)

    def add_invoice(
        self,
        company_id: int,
        subtotal: Decimal | float | str = "100.00",
        *,
        sales_tax: Decimal | float | str = 0,
        kind: str = "Standard",
        **fields: Any,
    ) -> Row:
        """Create an open invoice for ``company_id`` (bumps lastUpdated)."""
        with self._lock:
            company = self._require(self.companies, company_id)
            now = self._now()
            rid = self.invoices.next_id()
            row = self._invoice_row(
                rid=rid,
                number=str(rid + 9000),
                kind=kind,
                status_id=1,
                company_ref=self._company_refs[company_id],
                currency=company["currency"],
                date=now,
                due=iso_z(self.clock.now() + dt.timedelta(days=30)),
                subtotal=_dec(subtotal),
                tax=_dec(sales_tax),
                payments=Decimal(0),
                credits=Decimal(0),
                entered=now,
                updated=now,
            )
            row.update(fields)
            self._recompute(row)
            self._store_invoice(row)
            return copy.deepcopy(row)

    def update_invoice(self, invoice_id: int, **changes: Any) -> Row:
        """Replace top-level fields; total and balance follow subtotal/salesTax/credits."""
        with self._lock:
            row = dict(self._require(self.invoices, invoice_id))
            for key, value in changes.items():
                is_ref = key in _REF_KEYS and isinstance(value, dict)
                row[key] = self._resolve_ref(key, value, "invoice") if is_ref else value
            if not {"total", "balance"} & changes.keys():
                self._recompute(row)
            self._store_invoice(row)
            return copy.deepcopy(row)

    def delete_invoice(self, invoice_id: int) -> None:
        """Hard delete, as the API does."""
        with self._lock:
            self._require(self.invoices, invoice_id)
            self._remove_invoice(invoice_id)

    def add_payment(self, invoice_id: int, amount: Decimal | float | str, **fields: Any) -> Row:
        """Record a payment as POST does (same validation, same balance update)."""
        with self._lock:
            invoice = self._require(self.invoices, invoice_id)
            return copy.deepcopy(self._add_payment(invoice, {"amount": str(amount), **fields}))

    def remove_payment(self, invoice_id: int, payment_id: int) -> None:
        """Delete a payment and give its amount back to the invoice balance."""
        with self._lock:
            invoice = self._require(self.invoices, invoice_id)
            rows = self._payments.get(invoice_id, {})
            payment = rows.pop(payment_id, None)
            if payment is None:
                raise _fail(404, "NotFound", f"Payment with id {payment_id} was not found.")
            amount = _dec(payment["amount"])
            updated = dict(invoice)
            updated["payments"] = _num(_dec(invoice["payments"]) - amount)
            updated["balance"] = _num(_dec(invoice["balance"]) + amount)
            self._store_invoice(updated)

    def churn(self, request: Request) -> None:
        """Records change under the client (``Fault.CHURN``): an update, an insert or a delete
        in the resource being listed, drawn from a RNG seeded with ``seed + 1``."""
        with self._lock:
            rng = self._churn_rng
            roll = rng.random()
            if "/company/companies" in request.path or "/company/contacts" in request.path:
                ids = self.companies.ids
                if roll < 0.6 and ids:
                    self.update_company(
                        rng.choice(ids), phoneNumber=f"555-03{rng.randint(0, 99):02d}"
                    )
                elif roll < 0.9 or not ids:
                    self.add_company(self._data.company_name())
                else:
                    self.delete_company(rng.choice(ids))
                return
            ids = self.invoices.ids
            if roll < 0.6 and ids:
                self.update_invoice(rng.choice(ids), internalNotes=f"churn {rng.randint(0, 9999)}")
            elif (roll < 0.9 or not ids) and self.companies.ids:
                self.add_invoice(rng.choice(self.companies.ids), self._data.money(10, 900))
            elif ids:
                self._remove_invoice(rng.choice(ids))

    def callback_payload(
        self, action: str, type_: str, record_id: int, entity: Mapping[str, Any] | None = None
    ) -> Row:
        """A callback body as CW would POST it (nango webhook/types.ts L251; djcw views.py):
        ``Action`` is ``added``/``updated``/``deleted``; ``Entity`` is a JSON string."""
        return {
            "MessageId": str(uuid.UUID(int=self._churn_rng.getrandbits(128), version=4)),
            "FromUrl": self.base_url,
            "CompanyId": self.company_id,
            "MemberId": API_MEMBER,
            "Action": action,
            "Type": type_,
            "ID": record_id,
            "ProductInstanceId": None,
            "PartnerId": None,
            "Entity": json.dumps(entity) if entity is not None else None,
            "Metadata": {"key_url": self.key_url},
            "CallbackObjectRecId": 1,
        }

    def sign(self, body: bytes) -> str:
        """``x-content-signature`` for ``body``: base64(HMAC-SHA256(key=SHA256(signing_key),
        message=raw body)) (nango connectwise-psa-webhook-routing.ts validateSignature)."""
        return sign_callback(self.signing_key, body)


def sign_callback(signing_key: str, body: bytes) -> str:
    key = hashlib.sha256(signing_key.encode("utf-8")).digest()
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode("ascii")


def start(seed: int = 0, **options: Any) -> ConnectWiseSandbox:
    """Entry point for ``BaseConnector.sandbox`` ("connectors.connectwise.sandbox:start")."""
    return ConnectWiseSandbox(seed=seed, **options).start()


__all__ = [
    "API_VERSION",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CODEBASE",
    "DEFAULT_COMPANY_ID",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_PRIVATE_KEY",
    "DEFAULT_PUBLIC_KEY",
    "MAX_PAGE_SIZE",
    "TIMEOUT_MESSAGE",
    "UNVERIFIED",
    "ConnectWiseSandbox",
    "PageInfo",
    "sign_callback",
    "start",
]
