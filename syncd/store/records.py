"""Reading and writing source records: the stored rows a page touches, and applying a plan.

The apply step uses bulk statements (one INSERT and one UPDATE executemany per page), never a
query per record, and runs inside the caller's transaction so a page commits with its cursor.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

from sqlalchemy import Table, and_, bindparam, insert, select, update
from sqlalchemy.engine import Connection

from syncd.connector import Stream
from syncd.reconcile.plan import Change, Plan, StoredRow, row_values
from syncd.store.tables import customers, invoices, quarantine

TABLES: dict[Stream, Table] = {Stream.CUSTOMERS: customers, Stream.INVOICES: invoices}
_LOOKUP_CHUNK = 500  # bound the IN list: SQLite's variable limit and PostgreSQL's plan cache


def table_for(stream: Stream) -> Table:
    try:
        return TABLES[stream]
    except KeyError:
        raise ValueError(f"stream {stream.value!r} has no table yet") from None


def load_stored(
    conn: Connection, stream: Stream, connection: str, external_ids: Collection[str]
) -> dict[str, StoredRow]:
    """The stored rows of ``external_ids`` in ``connection``, keyed by external id."""
    table = table_for(stream)
    status = table.c.status if "status" in table.c else None
    columns = [
        table.c.external_id,
        table.c.content_hash,
        table.c.source_updated_at,
        table.c.deleted_at,
    ]
    if status is not None:
        columns.append(status)
    ids = list(external_ids)
    found: dict[str, StoredRow] = {}
    for start in range(0, len(ids), _LOOKUP_CHUNK):
        chunk = ids[start : start + _LOOKUP_CHUNK]
        query = select(*columns).where(
            and_(table.c.connection == connection, table.c.external_id.in_(chunk))
        )
        for row in conn.execute(query):
            found[row.external_id] = StoredRow(
                external_id=row.external_id,
                content_hash=row.content_hash,
                source_updated_at=row.source_updated_at,
                status=row.status if status is not None else None,
                deleted=row.deleted_at is not None,
            )
    return found


def apply_plan(
    conn: Connection, stream: Stream, connection: str, plan: Plan, *, now: dt.datetime, run_id: str
) -> None:
    """Write a plan: bulk insert new rows, bulk update changed ones, store quarantined payloads."""
    table = table_for(stream)
    if plan.create:
        conn.execute(insert(table), [_insert_values(c, now) for c in plan.create])
    changed = plan.update + plan.void + plan.delete
    if changed:
        statement = (
            update(table)
            .where(
                and_(
                    table.c.connection == bindparam("b_connection"),
                    table.c.external_id == bindparam("b_external_id"),
                )
            )
            .values({name: bindparam(name) for name in _update_columns(table)})
        )
        conn.execute(statement, [_update_values(c, table, now) for c in changed])
    if plan.touch:
        conn.execute(
            update(table)
            .where(
                and_(
                    table.c.connection == connection,
                    table.c.external_id == bindparam("b_external_id"),
                )
            )
            .values(source_updated_at=bindparam("b_updated")),
            [{"b_external_id": ext, "b_updated": when} for ext, when in plan.touch],
        )
    if plan.quarantine:
        conn.execute(
            insert(quarantine),
            [
                {
                    "connection": connection,
                    "stream": stream.value,
                    "external_id": r.external_id,
                    "reason": r.reason,
                    "payload": dict(r.payload),
                    "run_id": run_id,
                    "created_at": now,
                }
                for r in plan.quarantine
            ],
        )


def _insert_values(change: Change, now: dt.datetime) -> dict[str, Any]:
    values = row_values(change.record, change.content_hash)
    values["deleted_at"] = now if _is_tombstone(values) else None
    values["created_at"] = now
    values["updated_at"] = now
    return values


def _update_columns(table: Table) -> list[str]:
    skip = {"id", "connection", "external_id", "created_at"}
    return [c.name for c in table.columns if c.name not in skip]


def _update_values(change: Change, table: Table, now: dt.datetime) -> dict[str, Any]:
    values = row_values(change.record, change.content_hash)
    values["deleted_at"] = now if _is_tombstone(values) else None
    values["updated_at"] = now
    out = {name: values.get(name) for name in _update_columns(table)}
    out["b_connection"] = change.record.connection
    out["b_external_id"] = change.record.external_id
    return out


def _is_tombstone(values: dict[str, Any]) -> bool:
    return values.get("status") == "deleted"
