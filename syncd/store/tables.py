"""The store's tables (SQLAlchemy Core). Alembic migrations in ``migrations/`` create them.

Source records are keyed by (connection, external_id). Sync metadata (cursors, runs, quarantine)
lives in its own tables, apart from business rows. Money columns are exact; times are UTC.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from syncd.store.types import Json, Money, UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only

connections = Table(
    "connections",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("connector", String(100), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

sync_state = Table(
    "sync_state",
    metadata,
    Column("connection", String(100), primary_key=True),
    Column("stream", String(40), primary_key=True),
    # Highest source updated-at committed so far; the next pull starts at it minus the look-back.
    Column("watermark", UtcDateTime()),
    # An unfinished pass: where it resumes (the connector's opaque position), the lower bound it
    # started from, the highest updated-at it has seen, and when it started. The watermark moves
    # only when a pass completes, because keyset pages are ordered by id, not by time.
    Column("position", Text()),
    Column("pass_since", UtcDateTime()),
    Column("pass_high", UtcDateTime()),
    Column("pass_started_at", UtcDateTime()),
    Column("last_complete_at", UtcDateTime()),  # last pass that enumerated to the end
    Column("updated_at", UtcDateTime(), nullable=False),
)

customers = Table(
    "customers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("connection", String(100), nullable=False),
    Column("external_id", String(200), nullable=False),
    Column("name", Text(), nullable=False),
    Column("email", Text()),
    Column("currency", String(3)),
    Column("active", Boolean(), nullable=False),
    Column("tax_id", String(100)),
    Column("xref", String(200)),
    Column("source_updated_at", UtcDateTime(), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("raw", Json, nullable=False),
    Column("deleted_at", UtcDateTime()),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    UniqueConstraint("connection", "external_id", name="uq_customers_connection_external_id"),
)

invoices = Table(
    "invoices",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("connection", String(100), nullable=False),
    Column("external_id", String(200), nullable=False),
    Column("number", String(100), nullable=False),
    Column("customer_external_id", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("total", Money(), nullable=False),
    Column("balance", Money(), nullable=False),
    Column("status", String(20), nullable=False),
    Column("issued_on", Date()),
    Column("due_date", Date()),
    Column("source_updated_at", UtcDateTime(), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("raw", Json, nullable=False),
    Column("deleted_at", UtcDateTime()),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    UniqueConstraint("connection", "external_id", name="uq_invoices_connection_external_id"),
    Index("ix_invoices_connection_number", "connection", "number"),
)

links = Table(
    "links",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(20), nullable=False),  # customer | invoice
    Column("left_connection", String(100), nullable=False),
    Column("left_external_id", String(200), nullable=False),
    Column("right_connection", String(100), nullable=False),
    Column("right_external_id", String(200), nullable=False),
    Column("method", String(20), nullable=False),  # xref | exact | fuzzy | manual
    Column("score", Money()),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint(
        "kind",
        "left_connection",
        "left_external_id",
        "right_connection",
        name="uq_links_left_side",
    ),
)

payments = Table(
    "payments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "reference", String(200), unique=True
    ),  # processor reference; recording twice is a no-op
    Column("invoice_number", String(100)),
    Column("memo", Text()),
    Column("amount", Money(), nullable=False),
    Column("fee", Money(), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("method", String(20), nullable=False),
    Column("status", String(20), nullable=False),  # applied | unapplied | reversed
    Column("received_at", UtcDateTime(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    # 0002: who paid (a name, external id or xref), so a held payment only applies to an invoice
    # of that customer; the part kept as customer credit; whether the payer allowed that.
    Column("customer", String(200)),
    Column("credit", Money()),
    Column("allow_credit", Boolean(), nullable=False, server_default=false()),
    Column("hold_reason", Text()),  # why a held payment could not be applied yet
    Column("reversed_at", UtcDateTime()),
    Column("reversal_reason", Text()),
)

# Which invoice (by number: the one identity shared across systems) gets how much of a payment.
payment_allocations = Table(
    "payment_allocations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("payment_id", ForeignKey("payments.id"), nullable=False),
    Column("invoice_number", String(100), nullable=False),
    Column("amount", Money(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("payment_id", "invoice_number", name="uq_payment_allocations_line"),
    Index("ix_payment_allocations_invoice_number", "invoice_number"),
)

# 0003: a processor's payout: payments it paid out together, less the fee it kept. Each target
# that books deposits (QuickBooks Online) gets one ``deposit`` push per payout. A card payment
# with a fee in no recorded payout gets one of its own (``reference`` None). docs/payments.md.
payouts = Table(
    "payouts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # The processor's payout id; unique, so recording a payout twice is a no-op.
    Column("reference", String(200), unique=True),
    Column("currency", String(3), nullable=False),
    Column("amount", Money(), nullable=False),  # gross: what the payments applied to invoices
    Column("fee", Money(), nullable=False),  # kept by the processor: amount - fee reached the bank
    Column("paid_at", UtcDateTime(), nullable=False),  # when it reached the bank (deposit date)
    Column("memo", Text()),
    Column("created_at", UtcDateTime(), nullable=False),
)

# Which payments a payout paid out: a payment is paid out (and deposited) once.
payout_payments = Table(
    "payout_payments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("payout_id", ForeignKey("payouts.id"), nullable=False),
    Column("payment_id", ForeignKey("payments.id"), nullable=False, unique=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_payout_payments_payout_id", "payout_id"),
)

# The outbox: one row per (payment allocation, target connection, kind). See docs/payments.md.
payment_pushes = Table(
    "payment_pushes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("payment_id", ForeignKey("payments.id"), nullable=False),
    Column("connection", String(100), nullable=False),
    Column("idempotency_key", String(100), nullable=False, unique=True),
    # waiting | queued | in_flight | uncertain | done | dead | cancelled
    Column("status", String(20), nullable=False),
    Column("attempts", Integer(), nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime()),
    Column("lease_owner", String(100)),
    Column("lease_expires_at", UtcDateTime()),
    Column("external_id", String(200)),
    Column("last_error", Text()),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    # 0002: a payment may pay several invoices and be reversed, so a push is per allocation and
    # kind; the marker is written into the vendor record; the rest serves verification.
    Column("kind", String(10), nullable=False, server_default="push"),  # push | reverse | deposit
    Column("allocation_id", ForeignKey("payment_allocations.id")),
    Column("marker", String(40)),
    Column("invoice_external_id", String(200)),  # the target's invoice; None while waiting
    Column("settled_by", String(10)),  # send | marker: how done (or cancelled) was learnt
    Column("balance_before", Money()),  # expected target balance before this push's effect
    Column("done_at", UtcDateTime()),
    Column("verified", String(10)),  # ok | mismatch, once a later pull was compared
    # 0003: kind ``deposit`` books a payout (payment_id: its first payment; no allocation).
    Column("payout_id", ForeignKey("payouts.id")),
    UniqueConstraint(
        "payment_id", "connection", "allocation_id", "kind", name="uq_payment_pushes_target"
    ),
    UniqueConstraint("payout_id", "connection", name="uq_payment_pushes_deposit"),
    Index("ix_payment_pushes_status", "status", "next_attempt_at"),
)

sync_runs = Table(
    "sync_runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_id", String(40), nullable=False),
    Column("connection", String(100), nullable=False),
    Column("stream", String(40), nullable=False),
    Column("status", String(20), nullable=False),  # running | succeeded | failed
    Column("started_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime()),
    Column("pages", Integer(), nullable=False, default=0),
    Column("created", Integer(), nullable=False, default=0),
    Column("updated", Integer(), nullable=False, default=0),
    Column("unchanged", Integer(), nullable=False, default=0),
    Column("voided", Integer(), nullable=False, default=0),
    Column("deleted", Integer(), nullable=False, default=0),
    Column("quarantined", Integer(), nullable=False, default=0),
    Column("requests", Integer(), nullable=False, default=0),
    Column("error", Text()),
    Index("ix_sync_runs_connection_stream", "connection", "stream", "started_at"),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("connection", String(100), nullable=False),
    Column("stream", String(40), nullable=False),
    Column("external_id", String(200)),
    Column("reason", Text(), nullable=False),
    Column("payload", Json, nullable=False),
    Column("run_id", String(40)),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("resolved_at", UtcDateTime()),
)

review_items = Table(
    "review_items",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(40), nullable=False),
    Column("connection", String(100)),
    Column("subject", Text(), nullable=False),
    Column("detail", Json, nullable=False),
    Column("status", String(20), nullable=False),  # open | resolved
    Column("resolution", Text()),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("resolved_at", UtcDateTime()),
)

oauth_tokens = Table(
    "oauth_tokens",
    metadata,
    Column("connection", String(100), primary_key=True),
    Column("access_token", Text()),  # Fernet-encrypted
    Column("refresh_token", Text()),  # Fernet-encrypted
    Column("expires_at", UtcDateTime()),
    Column("refresh_expires_at", UtcDateTime()),  # when an unused refresh token dies
    Column("version", Integer(), nullable=False, default=0),
    Column("updated_at", UtcDateTime(), nullable=False),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("owner", String(100), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)
