"""One small business seen by two systems, for ``syncd demo``: a "dual integration".

An MSP bills its customers from ConnectWise Manage and exports the invoices to QuickBooks
Online. The same customers therefore exist in both, under names that differ the way real ones do
("Inc." against "LLC", case, punctuation), and the same invoices carry the same numbers and
totals. This module adds such a world on top of each sandbox's own seeded data, so that the demo
shows syncd linking what is the same and asking about what is not sure.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class SharedCustomer:
    psa_name: str
    books_name: str
    invoices: tuple[tuple[str, Decimal], ...]  # (number, total) in both systems


def _customer(psa: str, books: str, *invoices: tuple[str, str]) -> SharedCustomer:
    return SharedCustomer(psa, books, tuple((n, Decimal(t)) for n, t in invoices))


WORLD: tuple[SharedCustomer, ...] = (
    _customer("Northwind Traders, Inc.", "Northwind Traders LLC", ("DI-1001", "1250.00"),
              ("DI-1002", "310.50")),
    _customer("Contoso Dental Group", "CONTOSO DENTAL GROUP", ("DI-1003", "980.00")),
    _customer("O'Brien & Sons Plumbing", "O'Brien and Sons Plumbing", ("DI-1004", "455.25")),
    _customer("Fabrikam Legal", "Fabrikam Legal, P.C.", ("DI-1005", "2200.00"),
              ("DI-1006", "75.00")),
    _customer("Blue Yonder Clinic", "Blue Yonder Clinic", ("DI-1007", "640.00")),
    _customer("Tailspin Toys Ltd", "Tailspin Toys", ("DI-1008", "1999.99")),
)  # fmt: skip

# What the demo's customers pay: a card payment with a processing fee on part of one invoice,
# and an ACH payment of another in full. (number, amount, fee, method, processor reference)
PAYMENTS: tuple[tuple[str, Decimal, Decimal, str, str], ...] = (
    ("DI-1001", Decimal("500.00"), Decimal("14.80"), "card", "ch_demo_0001"),
    ("DI-1003", Decimal("980.00"), Decimal("0"), "ach", "ach_demo_0002"),
)


def seed_connectwise(sandbox: Any) -> None:
    """Add the world's companies and invoices to a ``ConnectWiseSandbox``."""
    for customer in WORLD:
        company = sandbox.add_company(customer.psa_name)
        for number, total in customer.invoices:
            sandbox.add_invoice(company["id"], total, invoiceNumber=number)


def seed_quickbooks(sandbox: Any) -> None:
    """Add the world's customers and invoices to a ``QuickBooksSandbox``."""
    for customer in WORLD:
        row = sandbox.add_customer(customer.books_name)
        for number, total in customer.invoices:
            sandbox.add_invoice(row["Id"], total, DocNumber=number)


def connectwise_balance(sandbox: Any, number: str) -> Decimal | None:
    """The balance ConnectWise shows for invoice ``number``."""
    for row in sandbox.all_invoices():
        if row.get("invoiceNumber") == number:
            return Decimal(str(row["balance"]))
    return None


def quickbooks_balance(sandbox: Any, number: str) -> Decimal | None:
    """The balance QuickBooks shows for invoice ``number``."""
    for row in sandbox.all_invoices():
        if row.get("DocNumber") == number:
            return Decimal(str(row["Balance"]))
    return None


def quickbooks_deposit(sandbox: Any, deposit_id: str) -> Decimal | None:
    """What a QuickBooks deposit put in the bank (its ``TotalAmt``), or None if it is not there."""
    for row in sandbox.deposits():
        if str(row["Id"]) == deposit_id:
            return Decimal(str(row["TotalAmt"]))
    return None


SEEDERS = {"connectwise": seed_connectwise, "quickbooks_online": seed_quickbooks}
BALANCES = {"connectwise": connectwise_balance, "quickbooks_online": quickbooks_balance}
DEPOSITS = {"quickbooks_online": quickbooks_deposit}
# Small seeded worlds beside the shared one: enough to page, quick to start.
SIZES: dict[str, dict[str, Any]] = {
    "connectwise": {"companies": 14, "invoices": 40},
    "quickbooks_online": {"customers": 14, "invoices": 40},
}
