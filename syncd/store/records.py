"""Reading and writing source records: the stored rows a page touches, and applying a plan.

The apply step uses bulk statements (one INSERT and one UPDATE executemany per page), never a
query per record, and runs inside the caller's transaction so a page commits with its cursor.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import String, Table, Text, and_, any_, bindparam, cast, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from syncd.connector import Stream
from syncd.reconcile.plan import Change, Plan, StoredRow, row_values
from syncd.store.tables import customers, invoices, quarantine

TABLES: dict[Stream, Table] = {Stream.CUSTOMERS: customers, Stream.INVOICES: invoices}
_LOOKUP_CHUNK = 500  # bound SQLite's IN list (its variable limit); PostgreSQL takes one array


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
    for chunk in _id_chunks(conn, ids):
        if conn.dialect.name == "postgresql":
            # One array parameter, whatever the page size: a 500-item IN list costs PostgreSQL
            # (and psycopg) several times more per id to send and plan.
            matches = table.c.external_id == any_(bindparam("ids", chunk, type_=ARRAY(String())))
        else:
            matches = table.c.external_id.in_(chunk)
        query = select(*columns).where(and_(table.c.connection == connection, matches))
        for row in conn.execute(query):
            found[row.external_id] = StoredRow(
                external_id=row.external_id,
                content_hash=row.content_hash,
                source_updated_at=row.source_updated_at,
                status=row.status if status is not None else None,
                deleted=row.deleted_at is not None,
            )
    return found


def _id_chunks(conn: Connection, ids: list[str]) -> list[list[str]]:
    if conn.dialect.name == "postgresql":
        return [ids] if ids else []
    return [ids[start : start + _LOOKUP_CHUNK] for start in range(0, len(ids), _LOOKUP_CHUNK)]


def apply_plan(
    conn: Connection, stream: Stream, connection: str, plan: Plan, *, now: dt.datetime, run_id: str
) -> None:
    """Write a plan: bulk insert new rows, bulk update changed ones, store quarantined payloads."""
    table = table_for(stream)
    if plan.create:
        inserting = insert(table).values(raw=_raw_param(conn, table))
        conn.execute(inserting, [_insert_values(c, now) for c in plan.create])
    changed = plan.update + plan.void + plan.delete
    if changed:
        columns = _update_columns(table)
        values: dict[str, Any] = {name: bindparam(name) for name in columns if name != "raw"}
        values["raw"] = _raw_param(conn, table)
        statement = (
            update(table)
            .where(
                and_(
                    table.c.connection == bindparam("b_connection"),
                    table.c.external_id == bindparam("b_external_id"),
                )
            )
            .values(values)
        )
        conn.execute(statement, [_update_values(c, columns, now) for c in changed])
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
    if plan.delete_ids:
        mark_deleted(conn, stream, connection, plan.delete_ids, now)
    if plan.quarantine:
        _quarantine(conn, stream, connection, plan, now=now, run_id=run_id)


def _quarantine(
    conn: Connection, stream: Stream, connection: str, plan: Plan, *, now: dt.datetime, run_id: str
) -> None:
    """Store rejected payloads. A record already held (open, same id) is refreshed in place with
    its latest payload and reason, so a bad record met on every pass is one row, not one a pass."""
    ids = [r.external_id for r in plan.quarantine if r.external_id]
    held: set[str] = set()
    for start in range(0, len(ids), _LOOKUP_CHUNK):
        held.update(
            conn.execute(
                select(quarantine.c.external_id).where(
                    and_(
                        quarantine.c.connection == connection,
                        quarantine.c.stream == stream.value,
                        quarantine.c.resolved_at.is_(None),
                        quarantine.c.external_id.in_(ids[start : start + _LOOKUP_CHUNK]),
                    )
                )
            ).scalars()
        )
    fresh = [r for r in plan.quarantine if not r.external_id or r.external_id not in held]
    again = [r for r in plan.quarantine if r.external_id and r.external_id in held]
    if fresh:
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
                for r in fresh
            ],
        )
    for r in again:
        conn.execute(
            update(quarantine)
            .where(
                and_(
                    quarantine.c.connection == connection,
                    quarantine.c.stream == stream.value,
                    quarantine.c.resolved_at.is_(None),
                    quarantine.c.external_id == r.external_id,
                )
            )
            .values(reason=r.reason, payload=dict(r.payload), run_id=run_id)
        )


def mark_deleted(
    conn: Connection,
    stream: Stream,
    connection: str,
    external_ids: Collection[str],
    now: dt.datetime,
) -> int:
    """Mark rows deleted by id (a tombstone without fields): status and ``deleted_at`` only."""
    table = table_for(stream)
    values: dict[str, Any] = {"deleted_at": now, "updated_at": now}
    if "status" in table.c:
        values["status"] = "deleted"
    ids = list(external_ids)
    count = 0
    for start in range(0, len(ids), _LOOKUP_CHUNK):
        result = conn.execute(
            update(table)
            .where(
                and_(
                    table.c.connection == connection,
                    table.c.external_id.in_(ids[start : start + _LOOKUP_CHUNK]),
                )
            )
            .values(values)
        )
        count += result.rowcount
    return count


def _raw_param(conn: Connection, table: Table) -> ColumnElement[Any]:
    """The ``raw`` column's value, bound as JSON text (``b_raw_json``) rather than as a dict.

    The text comes from the content hash (``Digest.raw_json``), which has already encoded the
    payload: binding the dict would have the column type encode it a second time. PostgreSQL
    casts the text to ``jsonb`` (the same value); SQLite keeps JSON as text anyway.
    """
    text = bindparam("b_raw_json", type_=Text())
    return text if conn.dialect.name == "sqlite" else cast(text, table.c.raw.type)


def _raw_json(change: Change) -> str:
    text = getattr(change.content_hash, "raw_json", None)
    if isinstance(text, str):
        return text
    return json.dumps(change.record.raw)  # what the column's JSON type would have written


def _insert_values(change: Change, now: dt.datetime) -> dict[str, Any]:
    values = row_values(change.record, change.content_hash)
    del values["raw"]
    values["b_raw_json"] = _raw_json(change)
    values["deleted_at"] = now if _is_tombstone(values) else None
    values["created_at"] = now
    values["updated_at"] = now
    return values


def _update_columns(table: Table) -> list[str]:
    skip = {"id", "connection", "external_id", "created_at"}
    return [c.name for c in table.columns if c.name not in skip]


def _update_values(change: Change, columns: list[str], now: dt.datetime) -> dict[str, Any]:
    values = row_values(change.record, change.content_hash)
    values["deleted_at"] = now if _is_tombstone(values) else None
    values["updated_at"] = now
    out = {name: values.get(name) for name in columns if name != "raw"}
    out["b_raw_json"] = _raw_json(change)
    out["b_connection"] = change.record.connection
    out["b_external_id"] = change.record.external_id
    return out


def _is_tombstone(values: dict[str, Any]) -> bool:
    return values.get("status") == "deleted"
