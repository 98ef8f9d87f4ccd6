"""Turning text (a command-line option, a CSV cell) into payment values, with plain refusals."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from syncd.model import PaymentMethod
from syncd.payments.allocation import Line
from syncd.payments.ledger import PaymentRefused

_PLAIN_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


def parse_amount(text: str, label: str = "amount") -> Decimal:
    """A plain decimal such as ``12.34``; thousands separators, exponents and symbols refused."""
    value = text.strip()
    if not _PLAIN_DECIMAL.fullmatch(value):
        raise PaymentRefused(f"{label} {text!r} is not a plain decimal amount such as 12.34")
    try:
        return Decimal(value)
    except InvalidOperation:
        raise PaymentRefused(f"{label} {text!r} is not a decimal amount") from None


def parse_when(text: str | None, now: dt.datetime) -> dt.datetime:
    """ISO 8601 with a timezone (``2026-11-22T10:00:00Z``), or a date (midnight UTC that day);
    empty means ``now``. A time without a zone is refused: guessing one moves payments a day."""
    if not text or not text.strip():
        return now
    value = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        day = dt.date.fromisoformat(value)
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise PaymentRefused(
            f"received_at {text!r} is not an ISO 8601 time such as 2026-11-22T10:00:00Z"
        ) from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise PaymentRefused(
            f"received_at {text!r} has no timezone: add one, e.g. 2026-11-22T10:00:00Z"
        )
    return when.astimezone(dt.UTC)


def parse_method(text: str | None) -> PaymentMethod:
    if not text or not text.strip():
        return PaymentMethod.OTHER
    try:
        return PaymentMethod(text.strip().lower())
    except ValueError:
        known = ", ".join(m.value for m in PaymentMethod)
        raise PaymentRefused(f"method {text!r} is not one of {known}") from None


def parse_allocation(text: str) -> Line:
    """``NUMBER=AMOUNT``: this much of the payment goes to invoice NUMBER."""
    number, sep, amount = text.rpartition("=")
    if not sep or not number.strip() or not amount.strip():
        raise PaymentRefused(f"allocation {text!r}: write INVOICE_NUMBER=AMOUNT, e.g. 1001=50.00")
    return Line(number.strip(), parse_amount(amount, f"allocation to invoice {number.strip()}"))


def optional(text: str | None) -> str | None:
    """A cell or option with only blanks is absent."""
    return text.strip() if text and text.strip() else None


__all__ = ["optional", "parse_allocation", "parse_amount", "parse_method", "parse_when"]
