"""The payments HTTP API, mounted by the daemon behind its bearer token.

``POST /payments`` records a payment exactly like ``syncd payments record`` (same checks, one
transaction): 201 when recorded or held, 200 when its reference was recorded already (nothing
changed), 422 with the reason when refused (nothing stored). ``GET /payments/{id}`` shows a
payment with its allocations and pushes. Amounts travel as strings ("12.34"): a JSON number
becomes a float on the way in, and money is never a float.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field

from syncd.api.context import Context
from syncd.model import PaymentMethod
from syncd.payments.inputs import optional, parse_allocation, parse_amount, parse_when
from syncd.payments.ledger import (
    Duplicate,
    NewPayment,
    PaymentRefused,
    payment_targets,
    record_payment,
)
from syncd.payments.views import payment_view

router = APIRouter(prefix="/payments", tags=["payments"])


class PaymentIn(BaseModel):
    """A payment to record. ``invoice_number``, or ``allocations`` (``"NUMBER=AMOUNT"``), or
    a ``memo`` alone (held as unapplied)."""

    model_config = ConfigDict(extra="forbid")

    amount: str = Field(examples=["12.34"])
    invoice_number: str | None = None
    allocations: list[str] = Field(default_factory=list, examples=[["1001=50.00"]])
    currency: str | None = Field(default=None, examples=["USD"])
    fee: str = "0"
    method: PaymentMethod = PaymentMethod.OTHER
    reference: str | None = None
    received_at: str | None = Field(default=None, examples=["2026-11-22T10:00:00Z"])
    memo: str | None = None
    customer: str | None = None
    as_credit: bool = False


@router.post("", status_code=201)
def post_payment(body: PaymentIn, context: Context, response: Response) -> dict[str, Any]:
    now = context.clock.now()
    try:
        new = NewPayment(
            amount=parse_amount(body.amount),
            fee=parse_amount(body.fee, "fee"),
            currency=body.currency.upper() if body.currency else None,
            method=body.method,
            reference=optional(body.reference),
            received_at=parse_when(body.received_at, now),
            invoice_number=optional(body.invoice_number),
            allocations=tuple(parse_allocation(a) for a in body.allocations),
            memo=optional(body.memo),
            customer=optional(body.customer),
            allow_credit=body.as_credit,
        )
        if new.invoice_number and new.allocations:
            raise PaymentRefused("give invoice_number or allocations, not both")
        outcome = record_payment(context.engine, new, payment_targets(context.settings), now=now)
    except PaymentRefused as exc:
        raise HTTPException(status_code=422, detail=f"payment refused: {exc}") from None
    if isinstance(outcome, Duplicate):
        response.status_code = 200
        return {"outcome": "duplicate", "payment": _view(context, outcome.payment_id)}
    kind = "held" if outcome.status == "unapplied" else "recorded"
    return {"outcome": kind, "payment": _view(context, outcome.payment_id)}


@router.get("/{payment_id}")
def get_payment(payment_id: int, context: Context) -> dict[str, Any]:
    return _view(context, payment_id)


def _view(context: Context, payment_id: int) -> dict[str, Any]:
    with context.engine.connect() as conn:
        view = payment_view(conn, payment_id)
    if view is None:
        raise HTTPException(status_code=404, detail=f"no payment {payment_id}")
    return view


__all__ = ["PaymentIn", "router"]
