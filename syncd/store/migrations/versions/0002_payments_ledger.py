"""payments ledger: allocations, customer and credit on payments, push kind and verification

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

Additive except for one constraint of the outbox: ``payment_pushes`` was unique per
(payment, connection), which leaves no room for a payment that pays several invoices or for its
reversal. The unique idempotency key already guarantees one row per push; the new unique
constraint is per (payment, connection, allocation, kind).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import syncd.store.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "payment_allocations",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("payment_id", _ID, nullable=False),
        sa.Column("invoice_number", sa.String(length=100), nullable=False),
        sa.Column("amount", syncd.store.types.Money(), nullable=False),
        sa.Column("created_at", syncd.store.types.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_payment_allocations_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_allocations")),
        sa.UniqueConstraint("payment_id", "invoice_number", name="uq_payment_allocations_line"),
    )
    op.create_index(
        "ix_payment_allocations_invoice_number", "payment_allocations", ["invoice_number"]
    )
    # Plain ADD COLUMN, also on SQLite: a batch copy would drop ``payments``, which the foreign
    # keys of stored pushes forbid.
    op.add_column("payments", sa.Column("customer", sa.String(length=200), nullable=True))
    op.add_column("payments", sa.Column("credit", syncd.store.types.Money(), nullable=True))
    op.add_column(
        "payments",
        sa.Column("allow_credit", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("payments", sa.Column("hold_reason", sa.Text(), nullable=True))
    op.add_column(
        "payments", sa.Column("reversed_at", syncd.store.types.UtcDateTime(), nullable=True)
    )
    op.add_column("payments", sa.Column("reversal_reason", sa.Text(), nullable=True))

    with op.batch_alter_table("payment_pushes") as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=10), nullable=False, server_default="push")
        )
        batch_op.add_column(sa.Column("allocation_id", _ID, nullable=True))
        batch_op.add_column(sa.Column("marker", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("invoice_external_id", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("settled_by", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("balance_before", syncd.store.types.Money(), nullable=True))
        batch_op.add_column(sa.Column("done_at", syncd.store.types.UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("verified", sa.String(length=10), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_payment_pushes_allocation_id_payment_allocations"),
            "payment_allocations",
            ["allocation_id"],
            ["id"],
        )
        batch_op.drop_constraint("uq_payment_pushes_payment_connection", type_="unique")
        batch_op.create_unique_constraint(
            "uq_payment_pushes_target", ["payment_id", "connection", "allocation_id", "kind"]
        )
        batch_op.create_index("ix_payment_pushes_status", ["status", "next_attempt_at"])


def downgrade() -> None:
    with op.batch_alter_table("payment_pushes") as batch_op:
        batch_op.drop_index("ix_payment_pushes_status")
        batch_op.drop_constraint("uq_payment_pushes_target", type_="unique")
        batch_op.create_unique_constraint(
            "uq_payment_pushes_payment_connection", ["payment_id", "connection"]
        )
        batch_op.drop_constraint(
            op.f("fk_payment_pushes_allocation_id_payment_allocations"), type_="foreignkey"
        )
        for column in (
            "verified",
            "done_at",
            "balance_before",
            "settled_by",
            "invoice_external_id",
            "marker",
            "allocation_id",
            "kind",
        ):
            batch_op.drop_column(column)
    added = ("reversal_reason", "reversed_at", "hold_reason", "allow_credit", "credit", "customer")
    if op.get_bind().dialect.name == "sqlite":
        # Native DROP COLUMN (SQLite 3.35+), for the same reason as in upgrade.
        for column in added:
            op.execute(f"ALTER TABLE payments DROP COLUMN {column}")
    else:
        with op.batch_alter_table("payments") as batch_op:
            for column in added:
                batch_op.drop_column(column)
    op.drop_index("ix_payment_allocations_invoice_number", table_name="payment_allocations")
    op.drop_table("payment_allocations")
