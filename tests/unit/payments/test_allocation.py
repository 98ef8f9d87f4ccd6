"""Allocation decisions on plain data: partial, over, credit, held, refused, never overpaid."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.payments.allocation import (
    Applied,
    Held,
    InvoiceCopy,
    Line,
    PaymentRequest,
    Refused,
    decide,
    invoice_currency,
)


def copy(
    connection: str = "cw",
    balance: str = "100.00",
    *,
    total: str = "100.00",
    unreflected: str = "0",
    **over: object,
) -> InvoiceCopy:
    values: dict[str, object] = {
        "connection": connection,
        "external_id": f"{connection}-1",
        "number": "1001",
        "currency": "USD",
        "total": Decimal(total),
        "balance": Decimal(balance),
        "status": "open",
        "customer_name": "Acme Ltd",
        "customer_keys": frozenset({"acme ltd", "c1"}),
        "unreflected": Decimal(unreflected),
    }
    values.update(over)
    return InvoiceCopy(**values)  # type: ignore[arg-type]


def pay(amount: str, number: str | None = "1001", **over: object) -> PaymentRequest:
    values: dict[str, object] = {
        "amount": Decimal(amount),
        "currency": "USD",
        "lines": (Line(number),) if number else (),
    }
    values.update(over)
    return PaymentRequest(**values)  # type: ignore[arg-type]


def test_partial_payment_applies_and_leaves_the_rest_open() -> None:
    assert decide(pay("40.00"), {"1001": [copy()]}) == Applied((("1001", Decimal("40.00")),))


def test_overpayment_is_refused_unless_kept_as_credit() -> None:
    refused = decide(pay("150.00"), {"1001": [copy()]})
    assert isinstance(refused, Refused)
    assert "more than the 100.00 USD still open on invoice 1001" in refused.reason
    assert "--as-credit" in refused.reason
    credit = decide(pay("150.00", allow_credit=True), {"1001": [copy()]})
    assert credit == Applied((("1001", Decimal("100.00")),), credit=Decimal("50.00"))


def test_the_smallest_open_amount_of_all_copies_counts() -> None:
    copies = {"1001": [copy("cw", "100.00"), copy("qb", "100.00", unreflected="70.00")]}
    refused = decide(pay("40.00"), copies)
    assert isinstance(refused, Refused)
    assert "30.00" in refused.reason and "taken by payments recorded in syncd" in refused.reason


def test_unknown_invoice_is_held_with_a_memo_and_refused_without() -> None:
    assert isinstance(decide(pay("10.00", memo="for May"), {}), Held)
    refused = decide(pay("10.00"), {})
    assert isinstance(refused, Refused) and "not in the store" in refused.reason
    assert isinstance(decide(pay("10.00", number=None, memo="cash"), {}), Held)
    assert isinstance(decide(pay("10.00", number=None), {}), Refused)


@pytest.mark.parametrize(
    ("over", "fragment"),
    [
        ({"status": "void"}, "invoice 1001 is void in cw"),
        ({"deleted": True}, "invoice 1001 was deleted in cw"),
        ({"status": "draft"}, "is a draft"),
        ({"currency": "EUR"}, "the payment is in USD but invoice 1001 is in EUR"),
    ],
)
def test_invoices_that_cannot_take_a_payment(over: dict[str, object], fragment: str) -> None:
    refused = decide(pay("10.00"), {"1001": [copy(**over)]})
    assert isinstance(refused, Refused) and fragment in refused.reason


def test_a_customer_must_match_the_invoice() -> None:
    ok = decide(pay("10.00", customer="ACME LTD "), {"1001": [copy()]})
    assert isinstance(ok, Applied)
    refused = decide(pay("10.00", customer="Globex"), {"1001": [copy()]})
    assert isinstance(refused, Refused)
    assert refused.reason == "invoice 1001 belongs to Acme Ltd, not to Globex"


def test_two_copies_in_one_connection_are_ambiguous() -> None:
    refused = decide(pay("10.00"), {"1001": [copy("cw"), copy("cw")]})
    assert isinstance(refused, Refused) and "several invoices in cw" in refused.reason


def test_explicit_allocation_over_several_invoices() -> None:
    copies = {"1001": [copy()], "1002": [copy(number="1002", balance="30.00", total="30.00")]}
    lines = (Line("1001", Decimal("70.00")), Line("1002", Decimal("30.00")))
    assert decide(pay("100.00", lines=lines), copies) == Applied(
        (("1001", Decimal("70.00")), ("1002", Decimal("30.00")))
    )
    short = decide(pay("120.00", lines=lines), copies)
    assert isinstance(short, Refused) and "less than the payment's 120.00" in short.reason
    credit = decide(pay("120.00", lines=lines, allow_credit=True), copies)
    assert isinstance(credit, Applied) and credit.credit == Decimal("20.00")
    over = (Line("1001", Decimal("50.00")), Line("1002", Decimal("50.00")))
    refused = decide(pay("100.00", lines=over), copies)
    assert isinstance(refused, Refused) and "invoice 1002" in refused.reason
    fine = (Line("1001", Decimal("50.001")),)
    refused = decide(pay("50.001", lines=fine), copies)
    assert isinstance(refused, Refused) and "more decimals than USD" in refused.reason


def test_invoice_currency_needs_agreeing_copies() -> None:
    assert invoice_currency("1001", {"1001": [copy()]}) == "USD"
    assert invoice_currency("1001", {"1001": [copy(), copy("qb", currency="EUR")]}) is None
    assert invoice_currency("1002", {}) is None


cents = st.integers(min_value=1, max_value=20_000).map(lambda c: Decimal(c).scaleb(-2))


@settings(max_examples=200, deadline=None)
@given(
    total=st.integers(min_value=0, max_value=50_000).map(lambda c: Decimal(c).scaleb(-2)),
    payments=st.lists(st.tuples(cents, st.booleans(), st.booleans()), max_size=25),
)
def test_no_sequence_of_payments_overpays_an_invoice(
    total: Decimal, payments: list[tuple[Decimal, bool, bool]]
) -> None:
    """Pulls may lag (a copy reflects only some payments): what is applied never exceeds the
    total, and a credit only ever holds what did not fit."""
    applied: list[Decimal] = []
    reflected = 0  # how many of the applied payments the second copy's balance already shows
    for amount, as_credit, pull in payments:
        if pull:
            reflected = len(applied)
        shown = sum(applied[:reflected], Decimal(0))
        copies = {
            "1001": [
                copy("cw", str(total), total=str(total), unreflected=str(sum(applied, Decimal(0)))),
                copy(
                    "qb",
                    str(total - shown),
                    total=str(total),
                    unreflected=str(sum(applied[reflected:], Decimal(0))),
                ),
            ]
        }
        decision = decide(pay(str(amount), allow_credit=as_credit), copies)
        if isinstance(decision, Applied):
            part = sum((a for _, a in decision.lines), Decimal(0))
            assert part + decision.credit == amount
            if part:
                applied.append(part)
        assert sum(applied, Decimal(0)) <= total


@settings(max_examples=50, deadline=None)
@given(amount=cents, balance=cents)
def test_deciding_twice_gives_the_same_answer(amount: Decimal, balance: Decimal) -> None:
    copies = {"1001": [copy(balance=str(balance), total=str(balance))]}
    assert decide(pay(str(amount)), copies) == decide(pay(str(amount)), copies)
