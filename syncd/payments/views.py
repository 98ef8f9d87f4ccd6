"""A payment as the CLI (``--json``) and the HTTP API show it (allocations, pushes and payout
included), and a payout with its payments and deposits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.engine import Connection

from syncd.store.tables import (
    payment_allocations,
    payment_pushes,
    payments,
    payout_payments,
    payouts,
)


def payment_view(conn: Connection, payment_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(payments).where(payments.c.id == payment_id)).first()
    return None if row is None else payment_json(conn, row)


def payment_json(conn: Connection, row: Any) -> dict[str, Any]:
    """JSON-ready: money as strings (never floats), times as ISO 8601 UTC."""
    allocations = conn.execute(
        select(payment_allocations)
        .where(payment_allocations.c.payment_id == row.id)
        .order_by(payment_allocations.c.id)
    ).all()
    payout = conn.execute(
        select(payouts)
        .join(payout_payments, payout_payments.c.payout_id == payouts.c.id)
        .where(payout_payments.c.payment_id == row.id)
    ).first()
    mine = payment_pushes.c.payment_id == row.id
    if payout is not None:  # its payout's deposits too (a deposit row names one payment)
        mine = or_(mine, payment_pushes.c.payout_id == payout.id)
    pushes = conn.execute(select(payment_pushes).where(mine).order_by(payment_pushes.c.id)).all()
    return {
        "id": row.id,
        "reference": row.reference,
        "invoice_number": row.invoice_number,
        "amount": str(row.amount),
        "fee": str(row.fee),
        "credit": str(row.credit) if row.credit else None,
        "currency": row.currency,
        "method": row.method,
        "status": row.status,
        "memo": row.memo,
        "customer": row.customer,
        "hold_reason": row.hold_reason,
        "received_at": row.received_at.isoformat(),
        "created_at": row.created_at.isoformat(),
        "reversed_at": row.reversed_at.isoformat() if row.reversed_at else None,
        "reversal_reason": row.reversal_reason,
        "allocations": [
            {"invoice_number": a.invoice_number, "amount": str(a.amount)} for a in allocations
        ],
        "payout": None
        if payout is None
        else {"id": payout.id, "reference": payout.reference, "fee": str(payout.fee)},
        "pushes": [push_json(p) for p in pushes],
    }


def payout_json(conn: Connection, row: Any) -> dict[str, Any]:
    """A payout: its payments and its deposit pushes (one per target that books deposits)."""
    members = conn.execute(
        select(payout_payments.c.payment_id)
        .where(payout_payments.c.payout_id == row.id)
        .order_by(payout_payments.c.payment_id)
    ).scalars()
    deposits = conn.execute(
        select(payment_pushes)
        .where(payment_pushes.c.payout_id == row.id)
        .order_by(payment_pushes.c.id)
    ).all()
    return {
        "id": row.id,
        "reference": row.reference,
        "currency": row.currency,
        "amount": str(row.amount),
        "fee": str(row.fee),
        "net": str(row.amount - row.fee),
        "paid_at": row.paid_at.isoformat(),
        "memo": row.memo,
        "created_at": row.created_at.isoformat(),
        "payments": list(members),
        "deposits": [push_json(p) for p in deposits],
    }


def push_json(p: Any) -> dict[str, Any]:
    return {
        "id": p.id,
        "payment_id": p.payment_id,
        "connection": p.connection,
        "kind": p.kind,
        "payout_id": p.payout_id,
        "status": p.status,
        "attempts": p.attempts,
        "invoice_external_id": p.invoice_external_id,
        "external_id": p.external_id,
        "marker": p.marker,
        "settled_by": p.settled_by,
        "verified": p.verified,
        "next_attempt_at": p.next_attempt_at.isoformat() if p.next_attempt_at else None,
        "last_error": p.last_error,
    }


__all__ = ["payment_json", "payment_view", "payout_json", "push_json"]
