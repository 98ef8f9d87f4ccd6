"""Mappings as data: realistic payloads in, canonical records (or precise errors) out."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import jmespath
import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.connector import Rejected
from syncd.errors import ConfigError, SkippableError
from syncd.mapping import Mapping, MappingFailed, _compile_path, load_mapping, parse_mapping
from syncd.model import Customer, Invoice, InvoiceStatus, SourcePayment

CW_TOML = """
[custom_fields]
list = "customFields"
key = "caption"
value = "value"

[customers]
external_id = "id"
name = "name"
email = "invoiceToEmailAddress"
currency = "currency.currencyCode"
active = "!deletedFlag"
tax_id = "taxCode.name"
xref = { custom_field = "Accounting ID" }
source_updated_at = "_info.lastUpdated"

[invoices]
external_id = "id"
number = "invoiceNumber"
customer_external_id = "company.id"
currency = { path = "currency.currencyCode", default = "USD" }
total = { path = "total", transform = "decimal" }
balance = "balance"
issued_on = "date"
due_date = { path = "dueDate", transform = "date" }
source_updated_at = "_info.lastUpdated"

[invoices.status]                 # a long spec reads better as a table
path = "status.name"

[invoices.status.map]
New = "open"
Sent = "open"
"Partially Paid" = "partially_paid"
Paid = "paid"
Voided = "void"
"""

CW_COMPANY: dict[str, Any] = {
    "id": 250,
    "identifier": "OBrien",
    "name": "O'Brien & Sons \"Best\" \\ Co",
    "status": {"id": 1, "name": "Active"},
    "invoiceToEmailAddress": "",
    "currency": {"id": 7, "currencyCode": "EUR", "symbol": "€"},
    "deletedFlag": False,
    "customFields": [
        {"id": 3, "caption": "Region", "type": "Text", "entryMethod": "List", "value": "EMEA"},
        {"id": 9, "caption": "Accounting ID", "type": "Text", "entryMethod": "EntryField",
         "numberOfDecimals": 0, "value": "QBO-58"},
    ],
    "_info": {"lastUpdated": "2024-05-02T10:00:00Z", "updatedBy": "jdoe"},
}  # fmt: skip

CW_INVOICE: dict[str, Any] = {
    "id": 1234,
    "invoiceNumber": "INV-1234",
    "type": "Standard",
    "status": {"id": 2, "name": "Sent"},
    "company": {"id": 250, "identifier": "OBrien", "name": "O'Brien & Sons"},
    "date": "2024-05-01T00:00:00Z",
    "dueDate": "2024-05-31T00:00:00Z",
    "currency": {"currencyCode": "USD", "symbol": "$", "numberOfDecimals": 2},
    "subtotal": 1150.5,
    "total": 1250.1,
    "balance": 250.1,
    "customFields": [{"id": 7, "caption": "Legacy No", "type": "Text", "value": "L-0099"}],
    "_info": {"lastUpdated": "2024-05-02T10:00:00Z"},
}

QBO_TOML = """
[custom_fields]
list = "CustomField"
key = "Name"
value = "StringValue"

[invoices]
external_id = "Id"
number = "DocNumber"
customer_external_id = "CustomerRef.value"
currency = { path = "CurrencyRef.value", default = "USD" }
total = "TotalAmt"
balance = "Balance"
status = { transform = "derive_status", void = "PrivateNote == 'Voided' && TotalAmt == `0`" }
issued_on = "TxnDate"
due_date = "DueDate"
source_updated_at = "MetaData.LastUpdatedTime"

[payments]
external_id = "Id"
amount = "TotalAmt"
currency = { path = "CurrencyRef.value", default = "USD" }
invoice_external_ids = "Line[].LinkedTxn[?TxnType=='Invoice'].TxnId | []"
received_on = "TxnDate"
reference = { custom_field = "Crew #" }
source_updated_at = "MetaData.LastUpdatedTime"
"""

QBO_INVOICE: dict[str, Any] = {
    "Id": "130",
    "SyncToken": "2",
    "domain": "QBO",
    "sparse": False,
    "DocNumber": "1037",
    "TxnDate": "2024-05-01",
    "DueDate": "2024-05-31",
    "CustomerRef": {"value": "58", "name": "O'Brien & Sons"},
    "Line": [{"Id": "1", "LineNum": 1, "Amount": 362.07, "DetailType": "SalesItemLineDetail"}],
    "TotalAmt": 362.07,
    "Balance": 100.0,
    "PrivateNote": "",
    "MetaData": {
        "CreateTime": "2024-05-01T13:12:00-07:00",
        "LastUpdatedTime": "2024-05-02T09:10:11-07:00",
    },
}

QBO_PAYMENT: dict[str, Any] = {
    "Id": "901",
    "TotalAmt": 262.07,
    "TxnDate": "2024-05-03",
    "CurrencyRef": {"value": "USD", "name": "United States Dollar"},
    "CustomField": [
        {"DefinitionId": "1", "Name": "Crew #", "Type": "StringType", "StringValue": "102"}
    ],
    "Line": [
        {"Amount": 262.07, "LinkedTxn": [{"TxnId": "130", "TxnType": "Invoice"}]},
        {"Amount": 0, "LinkedTxn": [{"TxnId": "77", "TxnType": "CreditMemo"}]},
        {"Amount": 0, "LinkedTxn": [{"TxnId": "131", "TxnType": "Invoice"}]},
    ],
    "MetaData": {"LastUpdatedTime": "2024-05-03T08:00:00-07:00"},
}


@pytest.fixture(scope="module")
def cw() -> Mapping:
    return parse_mapping(CW_TOML, origin="mappings/connectwise.toml")


@pytest.fixture(scope="module")
def qbo() -> Mapping:
    return parse_mapping(QBO_TOML, origin="mappings/quickbooks.toml")


def write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, name: str) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mappings").mkdir(exist_ok=True)
    path = Path("mappings") / name
    path.write_text(text, encoding="utf-8")
    return path


def with_invoice_field(field_line: str) -> str:
    """CW_TOML with one [invoices] field replaced by ``field_line``."""
    key = field_line.split("=", 1)[0].strip()
    lines, section = [], ""
    for line in CW_TOML.splitlines():
        section = line.split("#")[0].strip() if line.startswith("[") else section
        if section.startswith(f"[invoices.{key}") or (
            section == "[invoices]" and line.startswith(f"{key} =")
        ):
            continue
        lines.append(line)
    return "\n".join(lines).replace("[invoices]", "[invoices]\n" + field_line, 1)


def config_problems(text: str, **kwargs: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_mapping(text, origin="mappings/connectwise.toml", **kwargs)
    return caught.value.problems


def failure(mapping: Mapping, stream: str, raw: dict[str, Any]) -> MappingFailed:
    with pytest.raises(MappingFailed) as caught:
        mapping.apply(stream, raw, connection="acme-cw")
    assert isinstance(caught.value, SkippableError)
    return caught.value


# --- happy paths --------------------------------------------------------------------------------


def test_connectwise_invoice(cw: Mapping) -> None:
    record = cw.apply("invoices", CW_INVOICE, connection="acme-cw")
    assert isinstance(record, Invoice)
    assert record.external_id == "1234"
    assert record.customer_external_id == "250"
    assert record.total == Decimal("1250.1")  # not 1250.0999999999999090505…
    assert record.balance == Decimal("250.1")
    assert record.status is InvoiceStatus.OPEN
    assert record.issued_on == dt.date(2024, 5, 1)
    assert record.due_date == dt.date(2024, 5, 31)
    assert record.source_updated_at == dt.datetime(2024, 5, 2, 10, tzinfo=dt.UTC)
    assert record.connection == "acme-cw"
    assert record.raw == CW_INVOICE


def test_connectwise_customer_with_custom_field(cw: Mapping) -> None:
    record = cw.apply("customers", CW_COMPANY, connection="acme-cw")
    assert isinstance(record, Customer)
    assert record.name == 'O\'Brien & Sons "Best" \\ Co'
    assert record.xref == "QBO-58"
    assert record.email is None  # blank means no value
    assert record.currency == "EUR"
    assert record.active is True
    assert record.tax_id is None
    deleted = cw.apply("customers", {**CW_COMPANY, "deletedFlag": True}, connection="c")
    assert isinstance(deleted, Customer)
    assert deleted.active is False
    no_fields = cw.apply("customers", {**CW_COMPANY, "customFields": []}, connection="c")
    assert isinstance(no_fields, Customer)
    assert no_fields.xref is None


def test_autotask_user_defined_fields() -> None:
    mapping = parse_mapping(
        """
        [custom_fields]
        list = "userDefinedFields"
        key = "name"
        value = "value"

        [customers]
        external_id = "id"
        name = "companyName"
        active = "isActive"
        xref = { custom_field = "Accounting ID" }
        source_updated_at = "lastActivityDate"
        """,
        origin="mappings/autotask.toml",
    )
    company = {
        "id": 29683,
        "companyName": "100% Café 🧾",
        "isActive": True,
        "lastActivityDate": "2024-03-01T15:30:00.1234567Z",
        "userDefinedFields": [
            {"name": "Accounting ID", "value": "X-1"},
            {"name": "Other", "value": None},
        ],
    }
    record = mapping.apply("customers", company, connection="at")
    assert isinstance(record, Customer)
    assert (record.name, record.xref) == ("100% Café 🧾", "X-1")
    assert record.source_updated_at == dt.datetime(2024, 3, 1, 15, 30, 0, 123456, tzinfo=dt.UTC)


def test_quickbooks_invoice_derives_status_and_converts_offsets(qbo: Mapping) -> None:
    record = qbo.apply("invoices", QBO_INVOICE, connection="acme-qbo")
    assert isinstance(record, Invoice)
    assert record.currency == "USD"  # single-currency companies omit CurrencyRef
    assert record.total == Decimal("362.07")
    assert record.status is InvoiceStatus.PARTIALLY_PAID
    assert record.source_updated_at == dt.datetime(2024, 5, 2, 16, 10, 11, tzinfo=dt.UTC)
    paid = qbo.apply("invoices", {**QBO_INVOICE, "Balance": 0}, connection="q")
    assert isinstance(paid, Invoice)
    assert paid.status is InvoiceStatus.PAID
    voided = {**QBO_INVOICE, "TotalAmt": 0, "Balance": 0, "PrivateNote": "Voided"}
    void = qbo.apply("invoices", voided, connection="q")
    assert isinstance(void, Invoice)
    assert void.status is InvoiceStatus.VOID


def test_quickbooks_payment(qbo: Mapping) -> None:
    record = qbo.apply("payments", QBO_PAYMENT, connection="acme-qbo")
    assert isinstance(record, SourcePayment)
    assert record.amount == Decimal("262.07")
    assert record.invoice_external_ids == ("130", "131")
    assert record.received_on == dt.date(2024, 5, 3)
    assert record.reference == "102"
    unlinked = qbo.apply("payments", {**QBO_PAYMENT, "Line": []}, connection="q")
    assert isinstance(unlinked, SourcePayment)
    assert unlinked.invoice_external_ids == ()


def test_xero_msdate_and_formats() -> None:
    mapping = parse_mapping(
        """
        [payments]
        external_id = "PaymentID"
        amount = "Amount"
        currency = { const = "NZD" }
        received_on = { path = "Date", transform = "msdate" }
        source_updated_at = { path = "UpdatedDateUTC", transform = "msdate" }
        """,
        origin="mappings/xero.toml",
    )
    payment = {
        "PaymentID": "b26fd49a-cbae-470a-a8f8-bcbc119e0379",
        "Amount": "500.00",
        "Date": "/Date(1419937200000+1300)/",  # 2014-12-30T11:00Z, the 31st in Auckland
        "UpdatedDateUTC": "/Date(1700000000000+0000)/",
    }
    record = mapping.apply("payments", payment, connection="xero")
    assert isinstance(record, SourcePayment)
    assert record.received_on == dt.date(2014, 12, 31)
    assert record.source_updated_at == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)
    assert record.amount == Decimal("500.00")
    assert str(record.amount) == "500.00"
    assert record.currency == "NZD"


def test_strptime_formats_and_assumed_zone() -> None:
    toml = """
    [payments]
    external_id = "id"
    amount = "amount"
    currency = "currency"
    received_on = { path = "day", format = "%d/%m/%Y" }
    source_updated_at.path = "stamp"
    source_updated_at.format = "%d/%m/%Y %H:%M"
    source_updated_at.assume_tz = "America/New_York"
    """
    mapping = parse_mapping(toml, origin="mappings/legacy.toml")
    raw = {
        "id": 7,
        "amount": 10,
        "currency": "USD",
        "day": "31/01/2024",
        "stamp": "31/01/2024 19:00",
    }
    record = mapping.apply("payments", raw, connection="legacy")
    assert isinstance(record, SourcePayment)
    assert record.received_on == dt.date(2024, 1, 31)
    assert record.source_updated_at == dt.datetime(2024, 2, 1, 0, 0, tzinfo=dt.UTC)


def test_loads_from_file_and_enum_value_without_map(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        monkeypatch,
        """
        [invoices]
        external_id = "id"
        number = "number"
        customer_external_id = "customer"
        currency = "currency"
        total = "total"
        balance = "balance"
        status = "status"
        source_updated_at = "updated"
        """,
        "halo.toml",
    )
    mapping = load_mapping(path)
    assert mapping.origin == "mappings/halo.toml"
    assert mapping.streams == frozenset({"invoices"})
    raw = {"id": "9", "number": "9", "customer": "1", "currency": "GBP", "total": "10",
           "balance": "0", "status": "paid", "updated": "2024-01-01T00:00:00+00:00"}  # fmt: skip
    record = mapping.apply("invoices", raw, connection="halo")
    assert isinstance(record, Invoice)
    assert record.status is InvoiceStatus.PAID
    failed = failure(mapping, "invoices", {**raw, "status": "settled"})
    assert (
        "unknown value 'settled' (allowed: deleted, draft, open, paid, partially_paid, void)"
        in (str(failed))
    )


# --- overrides ----------------------------------------------------------------------------------


def test_override_replaces_one_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, monkeypatch, CW_TOML, "connectwise.toml")
    mapping = load_mapping(
        path,
        overrides={
            "invoices": {"number": "customFields[?caption=='Legacy No'].value | [0]"},
            "customers": {"xref": {"custom_field": "Region"}},
        },
    )
    invoice = mapping.apply("invoices", CW_INVOICE, connection="acme-cw")
    assert isinstance(invoice, Invoice)
    assert invoice.number == "L-0099"
    assert invoice.total == Decimal("1250.1")  # the rest of the file still applies
    customer = mapping.apply("customers", CW_COMPANY, connection="acme-cw")
    assert isinstance(customer, Customer)
    assert customer.xref == "EMEA"
    default = load_mapping(path).apply("invoices", CW_INVOICE, connection="acme-cw")
    assert isinstance(default, Invoice)
    assert default.number == "INV-1234"


def test_override_errors_name_their_origin() -> None:
    problems = config_problems(
        CW_TOML,
        overrides={"invoices": {"total": {"path": "total", "transform": "money"}}, "bills": {}},
        overrides_origin="config.toml: connections.acme.mapping",
    )
    assert problems == [
        "config.toml: connections.acme.mapping: bills: unknown stream "
        "(known: customers, invoices, payments)",
        'config.toml: connections.acme.mapping: invoices.total: unknown transform "money" '
        "(known: bool, date, datetime, decimal, derive_status, enum, int, list, msdate, str)",
    ]
    [default_origin] = config_problems(CW_TOML, overrides={"invoices": {"number": "a..b"}})
    assert default_origin.startswith(
        "mappings/connectwise.toml (connection override): invoices.number: bad JMESPath expression"
    )


# --- load-time errors ---------------------------------------------------------------------------


def test_unknown_transform_names_file_stream_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = CW_TOML.replace('transform = "decimal"', 'transform = "money"')
    path = write(tmp_path, monkeypatch, text, "connectwise.toml")
    with pytest.raises(ConfigError) as caught:
        load_mapping(path)
    assert str(caught.value).startswith(
        'mappings/connectwise.toml: invoices.total: unknown transform "money"'
    )


@pytest.mark.parametrize(
    ("field_line", "expected"),
    [
        ('total = "total[?"', "invoices.total: bad JMESPath expression 'total[?'"),
        ('totl = "total"', "invoices.totl: unknown canonical field (known: external_id,"),
        ('connection = "x"', "invoices.connection: is filled by syncd and cannot be mapped"),
        ("total = 12", "invoices.total: expected a JMESPath string or an inline table, got int"),
        ('total = { path = "total", tranform = "decimal" }', "invoices.total: tranform: Extra"),
        ('total = { path = "total", required = "yes" }', "invoices.total: required: Input should"),
        (
            'total = { path = "total", const = "1" }',
            "needs exactly one of path, custom_field or const",
        ),
        ("total = { }", "invoices.total: needs exactly one of path, custom_field or const"),
        (
            'total = { path = "total", transform = "date" }',
            'transform "date" cannot fill a decimal',
        ),
        ('total = { path = "total", required = false }', "the canonical model requires this field"),
        (
            'total = { path = "total", default = "lots" }',
            "invoices.total: bad default: bad decimal",
        ),
        ('total = { path = "total", format = "%Y" }', '"format" only goes with transform date'),
        (
            'due_date = { path = "dueDate", map = { a = "b" } }',
            'transform "enum" cannot fill a date field',
        ),
        (
            'status = { path = "s", map = { Sent = "sent" } }',
            "map targets 'sent' are not canonical values (allowed: deleted, draft,",
        ),
        (
            'source_updated_at = { path = "x", assume_tz = "Mars/Olympus" }',
            "assume_tz 'Mars/Olympus' is not a known time zone",
        ),
        (
            'issued_on = { transform = "derive_status" }',
            'transform "derive_status" cannot fill a date field',
        ),
        (
            'currency = { path = "c", transform = "enum" }',
            'transform "enum" on a text field needs a map',
        ),
        (
            'number = { custom_field = "Legacy No", default = true }',
            "bad default: expected text, got bool",
        ),
    ],
)
def test_field_spec_errors(field_line: str, expected: str) -> None:
    problems = config_problems(with_invoice_field(field_line))
    assert any(expected in p for p in problems), problems
    assert all(p.startswith("mappings/connectwise.toml: ") for p in problems)


def test_file_level_errors_are_all_reported_at_once() -> None:
    text = """
    [invoice]
    id = "id"

    [customers]
    external_id = "id"
    xref = { custom_field = "Accounting ID" }
    name = { path = "name", transform = "money" }
    """
    assert config_problems(text) == [
        "mappings/connectwise.toml: invoice: unknown table "
        "(known: custom_fields, customers, invoices, payments)",
        "mappings/connectwise.toml: customers.xref: custom_field needs a [custom_fields] table "
        "(list, key, value) in the mapping file",
        'mappings/connectwise.toml: customers.name: unknown transform "money" '
        "(known: bool, date, datetime, decimal, derive_status, enum, int, list, msdate, str)",
        "mappings/connectwise.toml: customers.source_updated_at: "
        "required canonical field is not mapped",
    ]


def test_unreadable_or_invalid_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"mappings/nope\.toml: cannot read the mapping file"):
        load_mapping(Path("mappings/nope.toml"))
    path = write(tmp_path, monkeypatch, "[invoices\n", "broken.toml")
    with pytest.raises(ConfigError, match=r"mappings/broken\.toml: not valid TOML"):
        load_mapping(path)
    problems = config_problems('[custom_fields]\nlist = "customFields"\nkey = "caption"\n')
    assert problems == ["mappings/connectwise.toml: custom_fields.value: Field required"]


def test_derive_status_only_fills_invoice_status() -> None:
    problems = config_problems(
        with_invoice_field('status = { transform = "derive_status", path = "x" }')
    )
    assert problems == [
        'mappings/connectwise.toml: invoices.status: "derive_status" takes only void and draft '
        "(it reads total and balance)"
    ]


def test_unmapped_stream_is_a_config_error(cw: Mapping) -> None:
    with pytest.raises(ConfigError, match=r"no \[payments\] table \(this mapping has: customers"):
        cw.apply("payments", {}, connection="c")
    with pytest.raises(ConfigError):
        cw.map_page("payments", [{}], "c")


# --- record errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"invoiceNumber": None}, "number", "missing required value"),
        ({"invoiceNumber": "   "}, "number", "missing required value"),
        ({"total": "12,50"}, "total", "bad decimal '12,50'"),
        ({"total": "NaN"}, "total", "bad decimal 'NaN'"),
        ({"total": True}, "total", "bad decimal True (a boolean)"),
        ({"dueDate": "2024-13-01"}, "due_date", "malformed date '2024-13-01' (expected ISO 8601)"),
        ({"_info": {"lastUpdated": "2024-05-02T10:00:00"}}, "source_updated_at", "naive datetime"),
        (
            {"_info": {"lastUpdated": 1714644000}},
            "source_updated_at",
            "malformed datetime 1714644000",
        ),
        (
            {"status": {"name": "Closed"}},
            "status",
            "unknown value 'Closed' (the map knows 'New', 'Paid', 'Partially Paid', 'Sent', "
            "'Voided')",
        ),
        ({"company": {"id": {"nested": 1}}}, "customer_external_id", "expected text, got dict"),
        ({"balance": 9999}, "(record)", "balance 9999 is outside 0..total (1250.1)"),
        (
            {"currency": {"currencyCode": "XYZ"}},
            "currency",
            "'XYZ' is not an ISO 4217 currency code",
        ),
    ],
)
def test_record_errors_name_file_field_and_record(
    cw: Mapping, change: dict[str, Any], field: str, reason: str
) -> None:
    raw = {**copy.deepcopy(CW_INVOICE), **change}
    failed = failure(cw, "invoices", raw)
    assert failed.field == field
    assert reason in failed.reason
    assert failed.record_id == "1234"
    assert failed.mapping_file == "mappings/connectwise.toml"
    assert str(failed).startswith(f"mappings/connectwise.toml: record 1234: invoices.{field}: ")


def test_every_problem_of_a_record_is_reported(cw: Mapping) -> None:
    raw = {**CW_INVOICE, "id": None, "total": "abc", "dueDate": "soon"}
    failed = failure(cw, "invoices", raw)
    assert failed.record_id is None
    assert str(failed) == (
        "mappings/connectwise.toml: record with unresolved id: "
        "invoices.external_id: missing required value; "
        "invoices.total: bad decimal 'abc'; "
        "invoices.due_date: malformed date 'soon' (expected ISO 8601)"
    )


def test_map_page_quarantines_bad_records_and_keeps_the_rest(cw: Mapping) -> None:
    good = copy.deepcopy(CW_INVOICE)
    bad = {**copy.deepcopy(CW_INVOICE), "id": 1235, "total": "n/a"}
    also_good = {**copy.deepcopy(CW_INVOICE), "id": 1236}
    records, rejected = cw.map_page("invoices", [good, bad, also_good, "oops"], "acme-cw")  # type: ignore[list-item]
    assert [r.external_id for r in records] == ["1234", "1236"]
    assert len(rejected) == 2
    first, second = rejected
    assert isinstance(first, Rejected)
    assert first.external_id == "1235"
    assert first.payload == bad
    assert "invoices.total: bad decimal 'n/a'" in first.reason
    assert second.external_id is None
    assert second.payload == {"payload": "oops"}
    assert "payload is a str, not a JSON object" in second.reason


def test_expression_type_errors_become_record_errors() -> None:
    mapping = parse_mapping(
        """
        [customers]
        external_id = "id"
        name = "join(', ', names)"
        source_updated_at = "at"
        """,
        origin="mappings/x.toml",
    )
    failed = failure(mapping, "customers", {"id": 1, "names": "not a list", "at": "2024-01-01Z"})
    assert failed.field == "name"
    assert "expression \"join(', ', names)\" failed" in failed.reason


# --- transforms, exhaustively -------------------------------------------------------------------

AMOUNT_TOML = """
[payments]
external_id = { const = "p" }
amount = "a"
currency = { const = "USD" }
source_updated_at = { const = "2024-01-01T00:00:00Z" }
"""


@pytest.fixture(scope="module")
def amounts() -> Mapping:
    return parse_mapping(AMOUNT_TOML, origin="mappings/amounts.toml")


def amount_of(mapping: Mapping, value: object) -> Decimal:
    record = mapping.apply("payments", {"a": value}, connection="c")
    assert isinstance(record, SourcePayment)
    return record.amount


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_decimal_strings_round_trip_exactly(amounts: Mapping, value: Decimal) -> None:
    result = amount_of(amounts, str(value))
    assert result == value
    assert result.as_tuple() == value.as_tuple()  # same digits and exponent: "1.10" stays "1.10"


@given(st.from_regex(r"\A[+-]?(\d{1,30}(\.\d{0,20})?|\.\d{1,20})([eE][+-]?\d{1,3})?\Z"))
def test_any_plain_decimal_text_round_trips_exactly(amounts: Mapping, text: str) -> None:
    assert amount_of(amounts, text).as_tuple() == Decimal(text).as_tuple()


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_json_floats_keep_their_shortest_text(amounts: Mapping, value: float) -> None:
    assert amount_of(amounts, value) == Decimal(repr(value))


def test_other_transforms() -> None:
    mapping = parse_mapping(
        """
        [customers]
        external_id = { path = "id", transform = "int" }
        name = "name"
        active = "active"
        source_updated_at = "at"
        """,
        origin="mappings/t.toml",
    )

    def customer(**changes: object) -> Customer:
        raw = {"id": "0042", "name": "n", "active": "Yes", "at": "2024-01-01T00:00:00Z", **changes}
        record = mapping.apply("customers", raw, connection="c")
        assert isinstance(record, Customer)
        return record

    assert customer().external_id == "42"
    assert customer().active is True
    assert customer(active=0).active is False
    assert customer(active="FALSE").active is False
    assert customer(id=42.0).external_id == "42"
    assert customer(active=None).active is True  # optional field: the model default
    with pytest.raises(MappingFailed, match="bad boolean 'maybe'"):
        customer(active="maybe")
    with pytest.raises(MappingFailed, match=r"bad integer 4\.5"):
        customer(id=4.5)
    with pytest.raises(MappingFailed, match=r"malformed /Date"):
        parse_mapping(
            AMOUNT_TOML.replace(
                '{ const = "2024-01-01T00:00:00Z" }', '{ path = "t", transform = "msdate" }'
            ),
            origin="m",
        ).apply("payments", {"a": 1, "t": "/Date(abc)/"}, connection="c")


# --- compiled fast paths agree with JMESPath ----------------------------------------------------

JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.sampled_from(["X", "Y", ""]))
ENTRY = st.one_of(
    st.fixed_dictionaries(
        {}, optional={"caption": JSON_SCALARS, "value": JSON_SCALARS, "other": JSON_SCALARS}
    ),
    JSON_SCALARS,
)
PAYLOAD = st.fixed_dictionaries(
    {},
    optional={
        "a": st.one_of(JSON_SCALARS, st.fixed_dictionaries({}, optional={"b": JSON_SCALARS})),
        "customFields": st.one_of(st.lists(ENTRY, max_size=5), JSON_SCALARS),
        "nested": st.fixed_dictionaries({}, optional={"fields": st.lists(ENTRY, max_size=4)}),
    },
)


@pytest.mark.parametrize(
    "expression",
    [
        "a",
        "a.b",
        "a.b.c",
        '"a".b',
        "customFields[?caption=='X'].value | [0]",
        "nested.fields[?caption=='Y'].value | [0]",
        "customFields[?caption=='X'].value",  # no fast path: interpreted
    ],
)
@given(raw=PAYLOAD)
def test_fast_paths_match_jmespath(expression: str, raw: dict[str, Any]) -> None:
    assert _compile_path(expression)(raw) == jmespath.search(expression, raw)
