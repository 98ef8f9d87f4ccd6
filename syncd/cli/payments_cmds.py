"""``syncd payments …`` and ``syncd push``: the payments ledger and its outbox.

The ledger, allocation and exactly-once push are built by the payments issue (#5). Until then
these commands validate their input for real and then say plainly that nothing was recorded or
pushed, with a distinct exit status (3), so no script mistakes them for working.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

import click
from pydantic import ValidationError

from syncd.model import Payment, PaymentMethod

EXIT_NOT_BUILT = 3


def _not_built(what: str) -> None:
    click.echo(
        f"syncd: {what} is not built yet (payments ledger and outbox: issue #5); "
        "nothing was stored or sent",
        err=True,
    )
    raise SystemExit(EXIT_NOT_BUILT)


@click.group()
def payments() -> None:
    """Record customer payments so syncd can push them to the systems that must know."""


@payments.command("record")
@click.option("--invoice", "invoice_number", required=True, help="Invoice number the payment pays.")
@click.option("--amount", required=True, help="Gross amount paid, e.g. 12.34.")
@click.option("--fee", default="0", show_default=True, help="Processing fee withheld (card).")
@click.option(
    "--method",
    type=click.Choice([m.value for m in PaymentMethod]),
    default="other",
    show_default=True,
)
@click.option("--reference", help="Processor reference; unique, so recording twice is a no-op.")
@click.option("--currency", default="USD", show_default=True, help="ISO 4217 code.")
@click.option("--received-at", help="When the money was received (ISO 8601; default now, UTC).")
@click.option("--memo", help="Free text kept with the payment (e.g. the invoice it names).")
def record(
    invoice_number: str,
    amount: str,
    fee: str,
    method: str,
    reference: str | None,
    currency: str,
    received_at: str | None,
    memo: str | None,
) -> None:
    """Record one payment against an invoice number (validated; storing it arrives with #5)."""
    try:
        when = dt.datetime.fromisoformat(received_at) if received_at else dt.datetime.now(dt.UTC)
        if when.tzinfo is None:
            raise click.BadParameter(
                "give a timezone, e.g. 2026-11-22T10:00:00Z", param_hint="--received-at"
            )
        Payment(
            amount=Decimal(amount),
            fee=Decimal(fee),
            currency=currency.upper(),
            method=PaymentMethod(method),
            reference=reference,
            invoice_number=invoice_number,
            memo=memo,
            received_at=when,
        )
    except InvalidOperation:
        raise click.BadParameter(f"{amount!r} or {fee!r} is not a decimal amount") from None
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            reasons = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
            raise click.UsageError(f"payment refused: {reasons}") from None
        raise click.BadParameter(str(exc), param_hint="--received-at") from None
    _not_built("recording payments")


@click.command()
def push() -> None:
    """Push queued payments to their target connections once, then exit (arrives with #5)."""
    _not_built("pushing payments")
