"""The store: migrations, exact money, UTC time, and one daemon per SQLite file."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import insert, inspect, select
from sqlalchemy.engine import Engine

from syncd.errors import StoreError
from syncd.store import open_store, store_lock
from syncd.store.migrate import current_revision, head_revision
from syncd.store.tables import invoices, metadata

T0 = dt.datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)


def test_migrations_create_every_table(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    assert set(metadata.tables) <= set(inspect(engine).get_table_names())


def test_upgrade_twice_is_a_no_op(store_url: str) -> None:
    open_store(store_url).dispose()
    again = open_store(store_url)
    assert current_revision(again) == head_revision()
    again.dispose()


def test_money_and_time_round_trip_exactly(engine: Engine) -> None:
    values = {
        "connection": "cw",
        "external_id": "1",
        "number": "INV-1",
        "customer_external_id": "9",
        "currency": "USD",
        "total": Decimal("12345678901234.17"),
        "balance": Decimal("0.10"),
        "status": "open",
        "source_updated_at": T0.astimezone(dt.timezone(dt.timedelta(hours=-5))),
        "content_hash": "h",
        "raw": {"name": 'O\'Brien "&" Søn'},
        "created_at": T0,
        "updated_at": T0,
    }
    with engine.begin() as conn:
        conn.execute(insert(invoices).values(values))
    with engine.connect() as conn:
        row = conn.execute(select(invoices)).one()
    assert row.total == Decimal("12345678901234.17")
    assert row.balance + Decimal("0.20") == Decimal("0.30")
    assert row.source_updated_at == T0
    assert row.source_updated_at.tzinfo is not None
    assert row.raw == values["raw"]


def test_naive_datetime_is_refused(engine: Engine) -> None:
    with pytest.raises(Exception, match="naive datetime"), engine.begin() as conn:
        conn.execute(
            insert(invoices).values(
                connection="cw",
                external_id="1",
                number="1",
                customer_external_id="9",
                currency="USD",
                total=Decimal(1),
                balance=Decimal(1),
                status="open",
                source_updated_at=dt.datetime(2026, 1, 1),
                content_hash="h",
                raw={},
                created_at=T0,
                updated_at=T0,
            )
        )


def test_float_money_is_refused(engine: Engine) -> None:
    with pytest.raises(Exception, match="finite Decimal"), engine.begin() as conn:
        conn.execute(
            insert(invoices).values(
                connection="cw",
                external_id="1",
                number="1",
                customer_external_id="9",
                currency="USD",
                total=0.1,
                balance=Decimal(0),
                status="open",
                source_updated_at=T0,
                content_hash="h",
                raw={},
                created_at=T0,
                updated_at=T0,
            )
        )


def test_sqlite_runs_in_wal_mode(sqlite_url: str) -> None:
    engine = open_store(sqlite_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("nonsense", "is not a database URL"),
        ("mysql://localhost/x", "only SQLite and PostgreSQL"),
        ("sqlite:///:memory:", "needs a file"),
        ("sqlite:////no/such/folder/syncd.db", "does not exist"),
        ("postgresql://nobody:pw@127.0.0.1:1/x", "cannot open the store"),
    ],
)
def test_bad_store_urls_say_why(url: str, fragment: str) -> None:
    with pytest.raises(StoreError, match=fragment) as caught:
        open_store(url)
    assert ":pw@" not in str(caught.value)


def test_second_process_on_the_same_sqlite_file_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'syncd.db'}"
    engine = open_store(url)
    lock = store_lock(engine, "syncd run")
    assert lock is not None
    with lock:
        other = subprocess.run(
            [
                sys.executable,
                "-c",
                "from syncd.store import open_store, store_lock\n"
                f"store_lock(open_store({url!r}), 'syncd run').acquire()",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    assert other.returncode != 0
    assert "another syncd (pid" in other.stderr
    assert "is already using this store" in other.stderr
    with lock:  # released and re-acquirable
        pass
    engine.dispose()


def test_postgres_needs_no_process_lock(pg_url: str) -> None:
    engine = open_store(pg_url)
    assert store_lock(engine, "syncd run") is None
    engine.dispose()
