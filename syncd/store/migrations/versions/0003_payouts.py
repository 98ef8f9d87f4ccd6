"""payouts: card payouts booked as deposits, and the outbox's deposit pushes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

Adds only: the ``payouts`` and ``payout_payments`` tables, and on ``payment_pushes`` a nullable
``payout_id`` (set on pushes of kind ``deposit``) unique per connection. Existing rows are kept
as they are; no payout exists until a push pass or ``syncd payouts record`` makes one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import syncd.store.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "payouts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", syncd.store.types.Money(), nullable=False),
        sa.Column("fee", syncd.store.types.Money(), nullable=False),
        sa.Column("paid_at", syncd.store.types.UtcDateTime(), nullable=False),
        sa.Column("memo", sa.Text(), nullable=True),
        sa.Column("created_at", syncd.store.types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payouts")),
        sa.UniqueConstraint("reference", name=op.f("uq_payouts_reference")),
    )
    op.create_table(
        "payout_payments",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("payout_id", _ID, nullable=False),
        sa.Column("payment_id", _ID, nullable=False),
        sa.Column("created_at", syncd.store.types.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["payout_id"], ["payouts.id"], name=op.f("fk_payout_payments_payout_id_payouts")
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_payout_payments_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_payments")),
        sa.UniqueConstraint("payment_id", name=op.f("uq_payout_payments_payment_id")),
    )
    op.create_index("ix_payout_payments_payout_id", "payout_payments", ["payout_id"])
    # A batch copy on SQLite (as 0002 did): a foreign key and a unique constraint cannot be
    # added to an existing SQLite table in place. No other table refers to payment_pushes.
    with op.batch_alter_table("payment_pushes") as batch_op:
        batch_op.add_column(sa.Column("payout_id", _ID, nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_payment_pushes_payout_id_payouts"), "payouts", ["payout_id"], ["id"]
        )
        batch_op.create_unique_constraint("uq_payment_pushes_deposit", ["payout_id", "connection"])


def downgrade() -> None:
    with op.batch_alter_table("payment_pushes") as batch_op:
        batch_op.drop_constraint("uq_payment_pushes_deposit", type_="unique")
        batch_op.drop_constraint(op.f("fk_payment_pushes_payout_id_payouts"), type_="foreignkey")
        batch_op.drop_column("payout_id")
    op.drop_index("ix_payout_payments_payout_id", table_name="payout_payments")
    op.drop_table("payout_payments")
    op.drop_table("payouts")
