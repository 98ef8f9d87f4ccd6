"""Opening the store: one engine per process, SQLite tuned for a daemon, errors made plain."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError

from syncd.errors import StoreError
from syncd.store.migrate import current_revision, head_revision, upgrade

_SUPPORTED = ("sqlite", "postgresql")


def create_store_engine(url: str) -> Engine:
    """An engine for ``url``; raises StoreError naming the URL (password masked) and the fix."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(
            f"store.url {url!r} is not a database URL "
            "(use sqlite:///./syncd.db or postgresql+psycopg://user@host/db)"
        ) from None
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() not in _SUPPORTED:
        raise StoreError(f"store.url {shown!r}: only SQLite and PostgreSQL are supported")
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            raise StoreError(f"store.url {shown!r}: syncd needs a file, not an in-memory database")
        folder = Path(database).expanduser().resolve().parent
        if not folder.is_dir():
            raise StoreError(f"store.url {shown!r}: folder {str(folder)!r} does not exist")
    try:
        kwargs: dict[str, Any] = {"future": True}
        if parsed.get_backend_name() == "postgresql":
            kwargs |= {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 5}
        else:
            kwargs |= {"connect_args": {"timeout": 30, "check_same_thread": False}}
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"store.url {shown!r}: driver not installed ({exc})") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # WAL lets readers (status, export) run beside the writer; busy_timeout waits out short locks.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def open_store(url: str, *, migrate: bool = True) -> Engine:
    """Connect, check the server answers, and bring the schema up to date (unless told not to)."""
    engine = create_store_engine(url)
    shown = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        if migrate:
            upgrade(engine)
        else:
            _require_current(engine, shown)
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "cannot connect"
        raise StoreError(f"store.url {shown!r}: cannot open the store: {reason}") from None
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StoreError(f"store.url {shown!r}: {type(exc).__name__}: {exc}") from None
    return engine


def _require_current(engine: Engine, shown: str) -> None:
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise StoreError(
            f"store {shown!r} is at schema {current or 'empty'}, this syncd needs {head}: "
            "run `syncd db upgrade`"
        )
