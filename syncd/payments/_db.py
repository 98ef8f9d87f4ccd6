"""Transactions and review items shared by the ledger, the outbox and verification."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import and_, insert, select, text
from sqlalchemy.engine import Connection, Engine

from syncd.store.tables import review_items


@contextmanager
def writing(engine: Engine, lock: str | None = None) -> Iterator[Connection]:
    """A write transaction that reads what it is about to change under a lock.

    SQLite: ``BEGIN IMMEDIATE`` takes the database's write lock first, so the reads that decide
    (is this reference new? how much is still open?) cannot go stale before the write, and no
    upgrade from a read snapshot can fail with "database is locked". PostgreSQL: with ``lock``,
    a transaction-scoped advisory lock of that name serialises the writers that need it (the
    ledger), while others (claiming pushes) rely on row locks and run side by side.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.begin()
            if lock is not None:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(lock)})
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


def _lock_key(name: str) -> int:
    digest = hashlib.blake2b(f"syncd {name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def open_review(
    conn: Connection,
    *,
    kind: str,
    subject: str,
    reason: str,
    now: dt.datetime,
    connection: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> bool:
    """Open a review item unless one of this kind and subject is already open; True if opened."""
    exists = conn.execute(
        select(review_items.c.id).where(
            and_(
                review_items.c.kind == kind,
                review_items.c.subject == subject,
                review_items.c.status == "open",
            )
        )
    ).first()
    if exists is not None:
        return False
    conn.execute(
        insert(review_items).values(
            kind=kind,
            connection=connection,
            subject=subject,
            detail={"reason": reason, **(detail or {})},
            status="open",
            created_at=now,
        )
    )
    return True
