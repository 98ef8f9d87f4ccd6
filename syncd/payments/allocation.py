"""Which invoice(s) a payment pays, and whether it may: pure decisions, no I/O.

A payment names an invoice *number*, the identity the systems share; each connection keeps its
own copy of the invoice (``InvoiceCopy``). The amount still open is the smallest, over the copies,
of the copy's balance minus syncd's own payments that this copy does not show yet
(``unreflected``), so two quick payments cannot overpay an invoice between two pulls. A payment
that fits is applied; one larger than what is open is refused unless the payer allowed the excess
to stay as customer credit; one whose invoice is not in the store yet is held, when it carries a
memo for a person to recognise it, until the invoice syncs in.

Every refusal says what is wrong and what would make it acceptable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from syncd.currency import has_valid_precision
from syncd.model import InvoiceStatus

ZERO = Decimal(0)


@dataclass(frozen=True)
class InvoiceCopy:
    """One connection's copy of an invoice, with what syncd knows it does not reflect yet."""

    connection: str
    external_id: str
    number: str
    currency: str
    total: Decimal
    balance: Decimal
    status: str
    deleted: bool = False
    customer_name: str | None = None
    customer_keys: frozenset[str] = frozenset()  # casefolded name, external id, xref
    unreflected: Decimal = ZERO

    @property
    def open(self) -> Decimal:
        return self.balance - self.unreflected


@dataclass(frozen=True)
class Line:
    """A share of the payment for one invoice; ``amount`` None means the whole payment."""

    invoice_number: str
    amount: Decimal | None = None


@dataclass(frozen=True)
class PaymentRequest:
    amount: Decimal
    currency: str
    lines: tuple[Line, ...] = ()
    memo: str | None = None
    customer: str | None = None
    allow_credit: bool = False


@dataclass(frozen=True)
class Refused:
    reason: str


@dataclass(frozen=True)
class Held:
    reason: str


@dataclass(frozen=True)
class Applied:
    lines: tuple[tuple[str, Decimal], ...]
    credit: Decimal = ZERO


Decision = Refused | Held | Applied
Copies = Mapping[str, Sequence[InvoiceCopy]]


def invoice_currency(number: str, copies: Copies) -> str | None:
    """The currency of invoice ``number`` when its copies agree on one, else None."""
    found = {c.currency for c in copies.get(number, ())}
    return found.pop() if len(found) == 1 else None


def decide(request: PaymentRequest, copies: Copies) -> Decision:
    """Apply, hold or refuse ``request`` against the stored ``copies`` of each invoice number."""
    if not request.lines:
        if request.memo:
            return Held("no invoice named: held with its memo until a person applies it")
        return Refused("name the invoice it pays, or give a memo to hold it as unapplied")
    if len(request.lines) == 1 and request.lines[0].amount is None:
        return _single(request, request.lines[0].invoice_number, copies)
    return _explicit(request, copies)


def _single(request: PaymentRequest, number: str, copies: Copies) -> Decision:
    found = copies.get(number, ())
    if not found:
        if request.memo:
            return Held(f"invoice {number} is not in the store yet")
        return Refused(
            f"invoice {number} is not in the store: sync first, or give a memo to hold the "
            "payment as unapplied until the invoice syncs in"
        )
    problem = invoice_problem(request, number, found)
    if problem:
        return Refused(problem)
    open_amount = min(c.open for c in found)
    if request.amount <= open_amount:
        return Applied(((number, request.amount),))
    if request.allow_credit:
        applied = max(open_amount, ZERO)
        lines = ((number, applied),) if applied > 0 else ()
        return Applied(lines, credit=request.amount - applied)
    return Refused(_over(request.amount, open_amount, request.currency, number, found))


def _explicit(request: PaymentRequest, copies: Copies) -> Decision:
    numbers = [line.invoice_number for line in request.lines]
    if len(set(numbers)) != len(numbers):
        return Refused("an invoice is named twice in the allocation")
    lines: list[tuple[str, Decimal]] = []
    for line in request.lines:
        number, amount = line.invoice_number, line.amount
        if amount is None:
            return Refused(f"give an amount for invoice {number} (NUMBER=AMOUNT)")
        if amount <= 0:
            return Refused(f"allocation to invoice {number} must be positive, got {amount}")
        if not has_valid_precision(amount, request.currency):
            return Refused(
                f"allocation {amount} to invoice {number} has more decimals than "
                f"{request.currency} allows"
            )
        found = copies.get(number, ())
        if not found:
            return Refused(f"invoice {number} is not in the store (sync first)")
        problem = invoice_problem(request, number, found)
        if problem:
            return Refused(problem)
        open_amount = min(c.open for c in found)
        if amount > open_amount:
            return Refused(_over(amount, open_amount, request.currency, number, found))
        lines.append((number, amount))
    allocated = sum((amount for _, amount in lines), ZERO)
    if allocated > request.amount:
        return Refused(f"the allocations add up to {allocated}, more than the payment's amount")
    if allocated < request.amount and not request.allow_credit:
        return Refused(
            f"the allocations add up to {allocated}, less than the payment's "
            f"{request.amount}: allocate the rest, or keep it as customer credit (--as-credit)"
        )
    return Applied(tuple(lines), credit=request.amount - allocated)


def invoice_problem(request: PaymentRequest, number: str, found: Sequence[InvoiceCopy]) -> str:
    """Why invoice ``number`` cannot take this payment at all ('' when it can)."""
    per_connection: dict[str, int] = {}
    for copy in found:
        per_connection[copy.connection] = per_connection.get(copy.connection, 0) + 1
        if copy.deleted or copy.status == InvoiceStatus.DELETED:
            return f"invoice {number} was deleted in {copy.connection}"
        if copy.status == InvoiceStatus.VOID:
            return f"invoice {number} is void in {copy.connection}"
        if copy.status == InvoiceStatus.DRAFT:
            return f"invoice {number} is a draft in {copy.connection}: approve it first"
        if copy.currency != request.currency:
            return (
                f"the payment is in {request.currency} but invoice {number} is in "
                f"{copy.currency} (in {copy.connection})"
            )
    crowded = sorted(name for name, count in per_connection.items() if count > 1)
    if crowded:
        return f"invoice number {number} names several invoices in {', '.join(crowded)}"
    if request.customer and not any(
        request.customer.strip().casefold() in c.customer_keys for c in found
    ):
        owner = next((c.customer_name for c in found if c.customer_name), "another customer")
        return f"invoice {number} belongs to {owner}, not to {request.customer}"
    return ""


def _over(
    amount: Decimal, open_amount: Decimal, currency: str, number: str, found: Sequence[InvoiceCopy]
) -> str:
    pending = max(c.unreflected for c in found)
    taken = (
        f" ({pending} of its balance is taken by payments recorded in syncd and not yet synced)"
        if pending > 0
        else ""
    )
    return (
        f"amount {amount} is more than the {max(open_amount, ZERO)} {currency} still open on "
        f"invoice {number}{taken}; keep the excess as customer credit explicitly (--as-credit) "
        "to accept it"
    )


__all__ = [
    "Applied",
    "Copies",
    "Decision",
    "Held",
    "InvoiceCopy",
    "Line",
    "PaymentRequest",
    "Refused",
    "decide",
    "invoice_currency",
    "invoice_problem",
]
