"""Read-only queries for ``status`` and ``export``: streamed, never loading a table into memory."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.engine import Connection

from syncd.store.tables import (
    customers,
    invoices,
    payment_pushes,
    payments,
    quarantine,
    review_items,
    sync_runs,
    sync_state,
)

CUSTOMER_FIELDS = ("connection", "external_id", "name", "email", "currency", "active", "updated_at")
INVOICE_FIELDS = (
    "connection",
    "external_id",
    "number",
    "customer_external_id",
    "currency",
    "total",
    "balance",
    "status",
    "issued_on",
    "due_date",
    "updated_at",
)
PAYMENT_FIELDS = (
    "id",
    "invoice_number",
    "amount",
    "fee",
    "currency",
    "method",
    "reference",
    "status",
    "pushes",
)


@dataclass(frozen=True)
class StreamStatus:
    connection: str
    stream: str
    last_status: str | None
    last_started_at: dt.datetime | None
    last_success_at: dt.datetime | None
    last_error: str | None
    watermark: dt.datetime | None
    in_pass: bool
    rows: int


def stream_statuses(conn: Connection, names: list[str]) -> list[StreamStatus]:
    """Per (connection, stream) with any history: last run, last success, watermark, row count."""
    out: list[StreamStatus] = []
    pairs = conn.execute(
        select(sync_runs.c.connection, sync_runs.c.stream)
        .distinct()
        .order_by(sync_runs.c.connection, sync_runs.c.stream)
    ).all()
    for connection, stream in pairs:
        if names and connection not in names:
            continue
        last = conn.execute(
            select(sync_runs)
            .where(and_(sync_runs.c.connection == connection, sync_runs.c.stream == stream))
            .order_by(sync_runs.c.id.desc())
            .limit(1)
        ).first()
        success = conn.execute(
            select(func.max(sync_runs.c.finished_at)).where(
                and_(
                    sync_runs.c.connection == connection,
                    sync_runs.c.stream == stream,
                    sync_runs.c.status == "succeeded",
                )
            )
        ).scalar()
        state = conn.execute(
            select(sync_state).where(
                and_(sync_state.c.connection == connection, sync_state.c.stream == stream)
            )
        ).first()
        table = {"customers": customers, "invoices": invoices}.get(stream)
        rows = 0
        if table is not None:
            rows = conn.execute(
                select(func.count())
                .select_from(table)
                .where(and_(table.c.connection == connection, table.c.deleted_at.is_(None)))
            ).scalar_one()
        out.append(
            StreamStatus(
                connection=connection,
                stream=stream,
                last_status=last.status if last else None,
                last_started_at=last.started_at if last else None,
                last_success_at=success,
                last_error=last.error if last else None,
                watermark=state.watermark if state else None,
                in_pass=bool(state and state.pass_started_at is not None),
                rows=rows,
            )
        )
    return out


def last_successes(conn: Connection) -> dict[tuple[str, str], dt.datetime | None]:
    """Every (connection, stream) with run history and when its last successful run finished
    (None: never). One grouped query, cheap enough for a readiness probe or a metrics scrape."""
    succeeded = case((sync_runs.c.status == "succeeded", sync_runs.c.finished_at))
    rows = conn.execute(
        select(
            sync_runs.c.connection,
            sync_runs.c.stream,
            func.max(succeeded, type_=sync_runs.c.finished_at.type),
        ).group_by(sync_runs.c.connection, sync_runs.c.stream)
    ).all()
    return {(connection, stream): last for connection, stream, last in rows}


def open_counts(conn: Connection) -> dict[str, int]:
    return {
        "quarantined": conn.execute(
            select(func.count()).select_from(quarantine).where(quarantine.c.resolved_at.is_(None))
        ).scalar_one(),
        "review_items": conn.execute(
            select(func.count()).select_from(review_items).where(review_items.c.status == "open")
        ).scalar_one(),
        "unapplied_payments": conn.execute(
            select(func.count()).select_from(payments).where(payments.c.status == "unapplied")
        ).scalar_one(),
        "pushes_pending": conn.execute(
            select(func.count())
            .select_from(payment_pushes)
            .where(payment_pushes.c.status.in_(("waiting", "queued", "in_flight", "uncertain")))
        ).scalar_one(),
        "pushes_dead": conn.execute(
            select(func.count())
            .select_from(payment_pushes)
            .where(payment_pushes.c.status == "dead")
        ).scalar_one(),
    }


def unapplied_payments(conn: Connection, limit: int = 50) -> list[dict[str, Any]]:
    """Held payments, oldest first, with the memo a person needs to place them."""
    query = (
        select(
            payments.c.id,
            payments.c.amount,
            payments.c.currency,
            payments.c.invoice_number,
            payments.c.memo,
            payments.c.customer,
            payments.c.hold_reason,
            payments.c.received_at,
        )
        .where(payments.c.status == "unapplied")
        .order_by(payments.c.id)
        .limit(limit)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def iter_customers(conn: Connection) -> Iterator[dict[str, Any]]:
    query = (
        select(*(customers.c[f] for f in CUSTOMER_FIELDS))
        .where(customers.c.deleted_at.is_(None))
        .order_by(customers.c.connection, customers.c.id)
    )
    for row in conn.execute(query.execution_options(yield_per=1000)):
        yield dict(row._mapping)


def iter_invoices(conn: Connection) -> Iterator[dict[str, Any]]:
    query = select(*(invoices.c[f] for f in INVOICE_FIELDS)).order_by(
        invoices.c.connection, invoices.c.id
    )
    for row in conn.execute(query.execution_options(yield_per=1000)):
        yield dict(row._mapping)


def iter_payments(conn: Connection) -> Iterator[dict[str, Any]]:
    columns = [payments.c[f] for f in PAYMENT_FIELDS if f != "pushes"]
    query = select(*columns).order_by(payments.c.id)
    for row in conn.execute(query.execution_options(yield_per=500)):
        record = dict(row._mapping)
        record["pushes"] = [
            {"connection": p.connection, "status": p.status, "external_id": p.external_id}
            for p in conn.execute(
                select(payment_pushes).where(payment_pushes.c.payment_id == row.id)
            )
        ]
        yield record
