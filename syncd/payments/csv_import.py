"""``syncd payments import FILE.csv``: one payment per row, each row its own transaction.

The header names the columns, in any order (``HEADER``); ``amount`` is required, and each row
needs an ``invoice_number`` or a ``memo`` (a payment whose invoice is not synced yet is held with
its memo). Rows are independent: a refused row changes nothing and the others go on; the report
names each row by its line in the file (the header is row 1) and says what became of it. Because
a processor reference is unique, importing the same file again records nothing new.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from syncd.payments.inputs import optional, parse_amount, parse_method, parse_when
from syncd.payments.ledger import (
    Duplicate,
    NewPayment,
    PaymentRefused,
    Recorded,
    record_payment,
)

HEADER = (
    "invoice_number",
    "amount",
    "currency",
    "fee",
    "method",
    "reference",
    "received_at",
    "memo",
    "customer",
)


@dataclass(frozen=True)
class RowReport:
    row: int
    outcome: str  # recorded | held | duplicate | refused
    message: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.message}"


@dataclass
class ImportReport:
    rows: list[RowReport] = field(default_factory=list)

    @property
    def counts(self) -> Counter[str]:
        return Counter(r.outcome for r in self.rows)

    def summary(self) -> str:
        c = self.counts
        return (
            f"{len(self.rows)} rows: {c['recorded']} recorded, {c['held']} held as unapplied, "
            f"{c['duplicate']} already recorded, {c['refused']} refused"
        )


def import_rows(
    engine: Engine, lines: Iterable[str], targets: Sequence[str], *, now: dt.datetime
) -> ImportReport:
    """Record every row of a CSV text; raise ``PaymentRefused`` only for a bad header."""
    reader = csv.reader(lines)
    header = [name.strip().lower() for name in next(reader, [])]
    _check_header(header)
    report = ImportReport()
    for values in reader:
        if not any(v.strip() for v in values):
            continue
        row = reader.line_num
        if len(values) > len(header):
            report.rows.append(
                RowReport(
                    row,
                    "refused",
                    f"refused: {len(values)} fields, the header has "
                    f"{len(header)} (quote values that contain a comma)",
                )
            )
            continue
        cells = dict(zip(header, values, strict=False))
        report.rows.append(_one(engine, row, cells, targets, now))
    return report


def _check_header(header: list[str]) -> None:
    if not header:
        raise PaymentRefused(
            f"the file is empty; its first line must be the header: {','.join(HEADER)}"
        )
    unknown = [name for name in header if name not in HEADER]
    if unknown:
        raise PaymentRefused(
            f"unknown column(s) {', '.join(map(repr, unknown))}; the header may name: "
            f"{','.join(HEADER)}"
        )
    if len(set(header)) != len(header):
        raise PaymentRefused("a column is named twice in the header")
    if "amount" not in header or not {"invoice_number", "memo"} & set(header):
        raise PaymentRefused("the header needs amount, and invoice_number or memo (or both)")


def _one(
    engine: Engine, row: int, cells: dict[str, str], targets: Sequence[str], now: dt.datetime
) -> RowReport:
    try:
        new = NewPayment(
            amount=parse_amount(cells.get("amount", "")),
            fee=parse_amount(optional(cells.get("fee")) or "0", "fee"),
            currency=(optional(cells.get("currency")) or "").upper() or None,
            method=parse_method(cells.get("method")),
            reference=optional(cells.get("reference")),
            received_at=parse_when(cells.get("received_at"), now),
            invoice_number=optional(cells.get("invoice_number")),
            memo=optional(cells.get("memo")),
            customer=optional(cells.get("customer")),
        )
        if new.invoice_number is None and new.memo is None:
            raise PaymentRefused("give an invoice_number or a memo")
        outcome = record_payment(engine, new, targets, now=now)
    except PaymentRefused as exc:
        return RowReport(row, "refused", f"refused: {exc}")
    if isinstance(outcome, Duplicate):
        return RowReport(
            row,
            "duplicate",
            f"already recorded as payment {outcome.payment_id} (reference {outcome.reference})",
        )
    return RowReport(row, *_recorded(outcome, new))


def _recorded(outcome: Recorded, new: NewPayment) -> tuple[str, str]:
    what = f"payment {outcome.payment_id}: {new.amount} {outcome.currency}"
    if outcome.status == "unapplied":
        return "held", f"held {what} as unapplied: {outcome.held_because}"
    to = ", ".join(f"invoice {number}" for number, _ in outcome.lines) or "customer credit"
    credit = f" ({outcome.credit} kept as customer credit)" if outcome.credit else ""
    return "recorded", f"recorded {what} to {to}{credit}"


__all__ = ["HEADER", "ImportReport", "RowReport", "import_rows"]
