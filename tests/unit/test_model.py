"""The canonical model refuses what would corrupt money or time, with messages that say why."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from pydantic import ValidationError

from syncd.model import Customer, Invoice, InvoiceStatus, Payment, derive_status

T0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def invoice(**overrides: object) -> Invoice:
    fields: dict[str, object] = {
        "connection": "cw",
        "external_id": "1",
        "source_updated_at": T0,
        "number": "INV-1",
        "customer_external_id": "10",
        "currency": "USD",
        "total": Decimal("100.00"),
        "balance": Decimal("40.00"),
        "status": InvoiceStatus.PARTIALLY_PAID,
    }
    fields.update(overrides)
    return Invoice.model_validate(fields)


def test_times_are_normalised_to_utc() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    record = invoice(source_updated_at=dt.datetime(2026, 3, 1, 14, tzinfo=plus_two))
    assert record.source_updated_at == T0
    assert record.source_updated_at.tzinfo is dt.UTC


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"source_updated_at": dt.datetime(2026, 3, 1)}, "must carry a timezone"),
        ({"currency": "XXX"}, "not an ISO 4217"),
        ({"total": Decimal("-1")}, "negative"),
        ({"balance": Decimal("100.01")}, "outside 0..total"),
        ({"total": Decimal("NaN")}, "finite"),
        ({"number": ""}, "at least 1 character"),
    ],
)
def test_invoice_refuses_bad_values(overrides: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        invoice(**overrides)
    assert fragment in str(caught.value)


def test_money_is_decimal_even_from_strings() -> None:
    record = invoice(total="0.30", balance="0.10")
    assert record.total == Decimal("0.30")
    assert isinstance(record.balance, Decimal)


@pytest.mark.parametrize(
    ("total", "balance", "flags", "expected"),
    [
        ("100", "100", {}, InvoiceStatus.OPEN),
        ("100", "40", {}, InvoiceStatus.PARTIALLY_PAID),
        ("100", "0", {}, InvoiceStatus.PAID),
        ("100", "100", {"void": True}, InvoiceStatus.VOID),
        ("100", "100", {"draft": True}, InvoiceStatus.DRAFT),
    ],
)
def test_derive_status(total: str, balance: str, flags: dict[str, bool], expected: str) -> None:
    assert derive_status(total=Decimal(total), balance=Decimal(balance), **flags) == expected


@pytest.mark.parametrize(
    ("amount", "fee", "currency", "fragment"),
    [
        ("12.345", "0", "USD", "more decimals than USD"),
        ("100.5", "0", "JPY", "more decimals than JPY"),
        ("0", "0", "USD", "must be positive"),
        ("-5", "0", "USD", "must be positive"),
        ("10", "10", "USD", "not less than the amount"),
        ("10", "-1", "USD", "must not be negative"),
    ],
)
def test_payment_refuses_bad_amounts(amount: str, fee: str, currency: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Payment(amount=Decimal(amount), fee=Decimal(fee), currency=currency, received_at=T0)
    assert fragment in str(caught.value)


def test_payment_accepts_trailing_zeros_and_three_decimal_currencies() -> None:
    assert Payment(amount=Decimal("12.300"), currency="USD", received_at=T0).amount == Decimal(
        "12.3"
    )
    assert Payment(amount=Decimal("1.234"), currency="KWD", received_at=T0).currency == "KWD"


def test_customer_keeps_its_payload() -> None:
    raw = {"id": 7, "name": "O'Brien & Sons"}
    customer = Customer(
        connection="cw", external_id="7", source_updated_at=T0, name=raw["name"], raw=raw
    )
    assert customer.raw == raw
    with pytest.raises(ValidationError):
        customer.name = "changed"  # type: ignore[misc]
