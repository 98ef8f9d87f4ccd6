"""Migration 0002 (payments ledger): matches the tables, keeps existing rows, goes back down."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text

from syncd.store.engine import create_store_engine
from syncd.store.migrate import alembic_config, upgrade
from syncd.store.tables import metadata, payment_pushes, payments, payouts

NOW = "2026-05-01T09:00:00.000000Z"


def test_upgrade_from_0001_keeps_payments_and_matches_the_tables(store_url: str) -> None:
    engine = create_store_engine(store_url)
    try:
        upgrade(engine, "0001")
        now = NOW if engine.dialect.name == "sqlite" else "2026-05-01T09:00:00Z"
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO payments (reference, invoice_number, amount, fee, currency, "
                    "method, status, received_at, created_at) VALUES ('r1', '1001', '5.00', '0', "
                    "'USD', 'card', 'applied', :now, :now)"
                ),
                {"now": now},
            )
            conn.execute(
                text(
                    "INSERT INTO payment_pushes (payment_id, connection, idempotency_key, "
                    "status, attempts, created_at, updated_at) "
                    "VALUES (1, 'qb', 'k1', 'done', 1, :now, :now)"
                ),
                {"now": now},
            )
        upgrade(engine)
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
            payment = conn.execute(select(payments)).one()
            push = conn.execute(select(payment_pushes)).one()
        assert payment.reference == "r1" and payment.allow_credit is False
        assert (push.kind, push.status, push.allocation_id) == ("push", "done", None)

        config = alembic_config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0001")
        upgrade(engine)
    finally:
        engine.dispose()


def test_upgrade_from_0002_keeps_pushes_and_adds_payouts(store_url: str) -> None:
    engine = create_store_engine(store_url)
    try:
        upgrade(engine, "0002")
        now = NOW if engine.dialect.name == "sqlite" else "2026-05-01T09:00:00Z"
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO payments (reference, invoice_number, amount, fee, currency, "
                    "method, status, received_at, created_at) VALUES ('r1', '1001', '5.00', "
                    "'0.20', 'USD', 'card', 'applied', :now, :now)"
                ),
                {"now": now},
            )
            conn.execute(
                text(
                    "INSERT INTO payment_pushes (payment_id, connection, idempotency_key, "
                    "status, attempts, kind, marker, created_at, updated_at) "
                    "VALUES (1, 'qb', 'k1', 'done', 1, 'push', 'syncd:m', :now, :now)"
                ),
                {"now": now},
            )
        upgrade(engine)
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
            push = conn.execute(select(payment_pushes)).one()
            assert conn.execute(select(payouts)).all() == []
        assert (push.kind, push.status, push.payout_id, push.marker) == (
            "push",
            "done",
            None,
            "syncd:m",
        )

        config = alembic_config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0002")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT kind FROM payment_pushes")).scalar() == "push"
        upgrade(engine)
    finally:
        engine.dispose()
