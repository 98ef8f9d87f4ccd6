"""The canonical model: what syncd means by a customer, an invoice and a payment.

Connectors turn vendor payloads into these; the store, reconcile and payments only ever see these.
Money is ``Decimal`` with an ISO 4217 code, never float. Datetimes are timezone-aware and normalised
to UTC on construction; a naive datetime is refused, because guessing a zone is how payments end up
on the wrong day. Models are frozen and validate when built, so a bad record fails at the connector
boundary with a message that names the field.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from syncd.currency import has_valid_precision, is_currency


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must carry a timezone (syncd stores UTC)")
    return value.astimezone(dt.UTC)


def _currency(value: str) -> str:
    if not is_currency(value):
        raise ValueError(f"{value!r} is not an ISO 4217 currency code")
    return value


def _finite(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("amount must be a finite number")
    return value


UtcDatetime = Annotated[dt.datetime, AfterValidator(_utc)]
CurrencyCode = Annotated[str, Field(min_length=3, max_length=3), AfterValidator(_currency)]
Amount = Annotated[Decimal, Field(allow_inf_nan=False), AfterValidator(_finite)]


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    VOID = "void"
    DELETED = "deleted"


class PaymentMethod(StrEnum):
    CARD = "card"
    ACH = "ach"
    CHECK = "check"
    OTHER = "other"


class PaymentStatus(StrEnum):
    APPLIED = "applied"  # allocated to its invoice(s); pushes queued
    UNAPPLIED = "unapplied"  # invoice not in the store yet; held with its memo
    REVERSED = "reversed"  # refunded or charged back


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class SourceRecord(_Frozen):
    """What every pulled record keeps: where it came from, when it last changed, and the payload."""

    connection: str = Field(min_length=1)
    external_id: str = Field(min_length=1)
    source_updated_at: UtcDatetime
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)


class Customer(SourceRecord):
    name: str = Field(min_length=1)
    email: str | None = None
    currency: CurrencyCode | None = None
    active: bool = True
    tax_id: str | None = None
    # An id of this customer in another system, when the source keeps one (e.g. the accounting
    # id stored on a PSA company). Cross-connection linking trusts it before any fuzzy match.
    xref: str | None = None


class Invoice(SourceRecord):
    number: str = Field(min_length=1)
    customer_external_id: str = Field(min_length=1)
    currency: CurrencyCode
    total: Amount
    balance: Amount
    status: InvoiceStatus
    issued_on: dt.date | None = None
    due_date: dt.date | None = None

    @field_validator("total")
    @classmethod
    def _total_not_negative(cls, value: Decimal) -> Decimal:
        if value < 0:
            raise ValueError("invoice total is negative (credit memos are not invoices)")
        return value

    @model_validator(mode="after")
    def _balance_within_total(self) -> Invoice:
        if self.balance < 0 or self.balance > self.total:
            raise ValueError(f"balance {self.balance} is outside 0..total ({self.total})")
        return self


def derive_status(
    *, total: Decimal, balance: Decimal, void: bool = False, draft: bool = False
) -> InvoiceStatus:
    """The status implied by an invoice's amounts, for sources that do not state one."""
    if void:
        return InvoiceStatus.VOID
    if draft:
        return InvoiceStatus.DRAFT
    if balance <= 0:
        return InvoiceStatus.PAID
    if balance < total:
        return InvoiceStatus.PARTIALLY_PAID
    return InvoiceStatus.OPEN


class SourcePayment(SourceRecord):
    """A payment that exists in a source system (``payments:read``), pulled for reconciliation."""

    amount: Amount
    currency: CurrencyCode
    invoice_external_ids: tuple[str, ...] = ()
    received_on: dt.date | None = None
    reference: str | None = None


class Payment(_Frozen):
    """A payment a customer made, as recorded in syncd's own ledger before it is pushed out."""

    amount: Amount
    currency: CurrencyCode
    fee: Amount = Decimal(0)
    method: PaymentMethod = PaymentMethod.OTHER
    reference: str | None = None
    invoice_number: str | None = None
    memo: str | None = None
    received_at: UtcDatetime

    @model_validator(mode="after")
    def _amounts(self) -> Payment:
        if self.amount <= 0:
            raise ValueError(f"amount must be positive, got {self.amount}")
        if self.fee < 0:
            raise ValueError(f"fee must not be negative, got {self.fee}")
        if self.fee >= self.amount:
            raise ValueError(f"fee {self.fee} is not less than the amount {self.amount}")
        for label, value in (("amount", self.amount), ("fee", self.fee)):
            if not has_valid_precision(value, self.currency):
                raise ValueError(f"{label} {value} has more decimals than {self.currency} allows")
        return self


Record = Customer | Invoice | SourcePayment

__all__ = [
    "Amount",
    "CurrencyCode",
    "Customer",
    "Invoice",
    "InvoiceStatus",
    "Payment",
    "PaymentMethod",
    "PaymentStatus",
    "Record",
    "SourcePayment",
    "SourceRecord",
    "UtcDatetime",
    "derive_status",
]
