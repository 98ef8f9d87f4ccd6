"""``syncd payments import FILE.csv`` (one payment per row, each row its own transaction) and
``syncd payouts import FILE.csv`` (one payment of a payout per row, each payout its own).

Payments: the header names the columns, in any order (``HEADER``); ``amount`` is required, and
each row needs an ``invoice_number`` or a ``memo`` (a payment whose invoice is not synced yet is
held with its memo). Rows are independent: a refused row changes nothing and the others go on;
the report names each row by its line in the file (the header is row 1) and says what became of
it. Because a processor reference is unique, importing the same file again records nothing new.

Payouts (``PAYOUT_HEADER``), the shape of a processor's payout reconciliation report: each row
names a ``payout`` reference and one payment in it (``payment_id``, syncd's, or
``payment_reference``, the processor's), with that payment's ``fee``; rows of one payout make
one payout whose fee is the sum of theirs. ``paid_at`` (when it reached the bank) must agree
among a payout's rows. Each payout is recorded or refused whole; importing again is a no-op.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy.engine import Engine

from syncd.payments.inputs import optional, parse_amount, parse_method, parse_when
from syncd.payments.ledger import (
    Duplicate,
    NewPayment,
    PaymentRefused,
    Recorded,
    record_payment,
)
from syncd.payments.payouts import NewPayout, PayoutDuplicate, PayoutRefused, record_payout

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
PAYOUT_HEADER = ("payout", "payment_id", "payment_reference", "fee", "paid_at", "memo")


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


# -- payouts -------------------------------------------------------------------------------------


@dataclass
class _Payout:
    rows: list[int] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    fee: Decimal = Decimal(0)
    paid_at: set[str] = field(default_factory=set)
    memo: str | None = None
    problem: str | None = None


@dataclass
class PayoutReport:
    lines: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        c = self.counts
        total = sum(c.values())
        return (
            f"{total} payouts: {c['recorded']} recorded, {c['duplicate']} already recorded, "
            f"{c['refused']} refused"
        )


def import_payouts(engine: Engine, lines: Iterable[str], *, now: dt.datetime) -> PayoutReport:
    """Record every payout of a CSV text; raise ``PayoutRefused`` only for a bad header."""
    reader = csv.reader(lines)
    header = [name.strip().lower() for name in next(reader, [])]
    _check_payout_header(header)
    grouped: dict[str, _Payout] = {}
    for values in reader:
        if not any(v.strip() for v in values):
            continue
        cells = dict(zip(header, values, strict=False))
        reference = optional(cells.get("payout"))
        row = reader.line_num
        if reference is None:
            grouped.setdefault("", _Payout()).rows.append(row)
            grouped[""].problem = f"row {row} names no payout"
            continue
        payout = grouped.setdefault(reference, _Payout())
        payout.rows.append(row)
        try:
            _payout_row(payout, cells, len(values) > len(header))
        except (PaymentRefused, PayoutRefused) as exc:
            payout.problem = payout.problem or f"row {row}: {exc}"
    report = PayoutReport()
    for reference, payout in grouped.items():
        rows = ", ".join(str(r) for r in payout.rows)
        where = f"payout {reference or '(none)'} (row{'s' if len(payout.rows) > 1 else ''} {rows})"
        outcome, message = _record(engine, reference, payout, now)
        report.counts[outcome] += 1
        report.lines.append(f"{where}: {message}")
    return report


def _check_payout_header(header: list[str]) -> None:
    expected = ",".join(PAYOUT_HEADER)
    if not header:
        raise PayoutRefused(f"the file is empty; its first line must be the header: {expected}")
    unknown = [name for name in header if name not in PAYOUT_HEADER]
    if unknown:
        raise PayoutRefused(
            f"unknown column(s) {', '.join(map(repr, unknown))}; the header may name: {expected}"
        )
    if len(set(header)) != len(header):
        raise PayoutRefused("a column is named twice in the header")
    if "payout" not in header or not {"payment_id", "payment_reference"} & set(header):
        raise PayoutRefused("the header needs payout, and payment_id or payment_reference")


def _payout_row(payout: _Payout, cells: dict[str, str], too_long: bool) -> None:
    if too_long:
        raise PayoutRefused("more fields than the header has (quote values that contain a comma)")
    payment_id = optional(cells.get("payment_id"))
    reference = optional(cells.get("payment_reference"))
    if (payment_id is None) == (reference is None):
        raise PayoutRefused("give payment_id or payment_reference (one of them)")
    if payment_id is not None:
        if not payment_id.isdigit():
            raise PayoutRefused(f"payment_id {payment_id!r} is not a syncd payment id")
        payout.ids.append(int(payment_id))
    if reference is not None:
        payout.references.append(reference)
    payout.fee += parse_amount(optional(cells.get("fee")) or "0", "fee")
    when = optional(cells.get("paid_at"))
    if when is not None:
        payout.paid_at.add(when)
    payout.memo = payout.memo or optional(cells.get("memo"))


def _record(engine: Engine, reference: str, payout: _Payout, now: dt.datetime) -> tuple[str, str]:
    if payout.problem:
        return "refused", f"refused: {payout.problem}"
    if len(payout.paid_at) > 1:
        return "refused", f"refused: its rows give different paid_at ({sorted(payout.paid_at)})"
    try:
        new = NewPayout(
            reference=reference,
            fee=payout.fee,
            paid_at=parse_when(next(iter(payout.paid_at), None), now),
            payment_ids=tuple(payout.ids),
            payment_references=tuple(payout.references),
            memo=payout.memo,
        )
        outcome = record_payout(engine, new, now=now)
    except (PaymentRefused, PayoutRefused) as exc:
        return "refused", f"refused: {exc}"
    if isinstance(outcome, PayoutDuplicate):
        return "duplicate", f"already recorded as payout {outcome.payout_id}; nothing changed"
    return "recorded", (
        f"recorded payout {outcome.payout_id}: {len(outcome.payment_ids)} payment(s), "
        f"{outcome.amount} - {outcome.fee} fee = {outcome.net} {outcome.currency}"
    )


__all__ = [
    "HEADER",
    "PAYOUT_HEADER",
    "ImportReport",
    "PayoutReport",
    "RowReport",
    "import_payouts",
    "import_rows",
]
