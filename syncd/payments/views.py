"""A payment as the CLI (``--json``) and the HTTP API show it: allocations and pushes included."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from syncd.store.tables import payment_allocations, payment_pushes, payments


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
    pushes = conn.execute(
        select(payment_pushes)
        .where(payment_pushes.c.payment_id == row.id)
        .order_by(payment_pushes.c.id)
    ).all()
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
        "pushes": [push_json(p) for p in pushes],
    }


def push_json(p: Any) -> dict[str, Any]:
    return {
        "id": p.id,
        "payment_id": p.payment_id,
        "connection": p.connection,
        "kind": p.kind,
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


__all__ = ["payment_json", "payment_view", "push_json"]
