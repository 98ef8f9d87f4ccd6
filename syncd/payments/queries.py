"""What the payments code reads from the store: invoice copies, push targets, pending amounts.

An invoice is known per connection; a payment names its number. The copies of number N are every
connection's invoice with that number, plus the invoices the ``links`` table (kind ``invoice``)
ties to them in connections where the number differs. A connection with a live copy ignores its
deleted ones (an invoice deleted and issued again under the same number).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import and_, or_, select, tuple_
from sqlalchemy.engine import Connection, Row

from syncd.payments.allocation import ZERO, InvoiceCopy
from syncd.store.tables import (
    customers,
    invoices,
    links,
    payment_allocations,
    payment_pushes,
    payments,
)

PENDING = ("waiting", "queued", "in_flight", "uncertain")


@dataclass(frozen=True)
class TargetInvoice:
    """The invoice a push writes to, in its target connection."""

    external_id: str
    customer_external_id: str
    currency: str
    balance: Decimal
    status: str
    deleted: bool


def invoice_rows(conn: Connection, number: str) -> list[Row[tuple[object, ...]]]:
    """Every stored invoice that is invoice ``number`` somewhere: by number, then by link."""
    direct = conn.execute(select(invoices).where(invoices.c.number == number)).all()
    keys = {(r.connection, r.external_id) for r in direct}
    linked: set[tuple[str, str]] = set()
    if keys:
        for row in conn.execute(
            select(links).where(
                and_(
                    links.c.kind == "invoice",
                    or_(
                        tuple_(links.c.left_connection, links.c.left_external_id).in_(keys),
                        tuple_(links.c.right_connection, links.c.right_external_id).in_(keys),
                    ),
                )
            )
        ):
            linked.add((row.left_connection, row.left_external_id))
            linked.add((row.right_connection, row.right_external_id))
    extra = linked - keys
    rows = list(direct)
    if extra:
        rows += conn.execute(
            select(invoices).where(tuple_(invoices.c.connection, invoices.c.external_id).in_(extra))
        ).all()
    return _live_first(rows)


def _live_first(rows: Iterable[Row[tuple[object, ...]]]) -> list[Row[tuple[object, ...]]]:
    by_connection: dict[str, list[Row[tuple[object, ...]]]] = defaultdict(list)
    for row in rows:
        by_connection[row.connection].append(row)
    kept = []
    for group in by_connection.values():
        live = [r for r in group if r.deleted_at is None]
        kept += live or group
    return kept


def invoice_copies(conn: Connection, numbers: Collection[str]) -> dict[str, list[InvoiceCopy]]:
    """The copies of each invoice number, each with syncd's payments it does not show yet."""
    found: dict[str, list[InvoiceCopy]] = {}
    for number in numbers:
        rows = invoice_rows(conn, number)
        if not rows:
            continue
        owners = _customers(conn, {(r.connection, r.customer_external_id) for r in rows})
        found[number] = [
            InvoiceCopy(
                connection=r.connection,
                external_id=r.external_id,
                number=r.number,
                currency=r.currency,
                total=r.total,
                balance=r.balance,
                status=r.status,
                deleted=r.deleted_at is not None,
                customer_name=owners.get((r.connection, r.customer_external_id), (None, ()))[0],
                customer_keys=frozenset(
                    owners.get((r.connection, r.customer_external_id), (None, ()))[1]
                ),
                unreflected=unreflected(conn, number, r.connection),
            )
            for r in rows
        ]
    return found


def _customers(
    conn: Connection, keys: set[tuple[str, str]]
) -> dict[tuple[str, str], tuple[str, tuple[str, ...]]]:
    out: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {}
    query = select(customers).where(
        tuple_(customers.c.connection, customers.c.external_id).in_(keys)
    )
    for row in conn.execute(query):
        names = (row.name, row.external_id, row.xref)
        out[(row.connection, row.external_id)] = (
            row.name,
            tuple(n.strip().casefold() for n in names if n),
        )
    return out


def unreflected(conn: Connection, number: str, connection: str) -> Decimal:
    """syncd's applied payments to invoice ``number`` that ``connection``'s copy does not show.

    A payment is shown once a push of it to that connection was done and a later pull confirmed
    the balance dropped (``verified = ok``), or once a person cancelled that push (they record it
    there themselves, or not at all). Everything else counts, including connections that
    never receive payments: their balance cannot reflect syncd's payments unless a person records
    them, and subtracting errs on the side of refusing, never of overpaying.
    """
    reflected = select(payment_pushes.c.allocation_id).where(
        and_(
            payment_pushes.c.connection == connection,
            payment_pushes.c.kind == "push",
            or_(
                and_(payment_pushes.c.status == "done", payment_pushes.c.verified == "ok"),
                payment_pushes.c.status == "cancelled",  # a person took this copy in hand
            ),
            payment_pushes.c.allocation_id.is_not(None),
        )
    )
    amounts = conn.execute(
        select(payment_allocations.c.amount)
        .join(payments, payments.c.id == payment_allocations.c.payment_id)
        .where(
            and_(
                payment_allocations.c.invoice_number == number,
                payments.c.status == "applied",
                payment_allocations.c.id.not_in(reflected),
            )
        )
    ).scalars()
    return sum(amounts, ZERO)


def target_invoice(conn: Connection, connection: str, number: str) -> TargetInvoice | None:
    """``connection``'s copy of invoice ``number``, when it has exactly one live copy."""
    rows = [
        r for r in invoice_rows(conn, number) if r.connection == connection and r.deleted_at is None
    ]
    if len(rows) != 1:
        return None
    row = rows[0]
    return TargetInvoice(
        external_id=row.external_id,
        customer_external_id=row.customer_external_id,
        currency=row.currency,
        balance=row.balance,
        status=row.status,
        deleted=row.deleted_at is not None,
    )


def stored_invoice(conn: Connection, connection: str, external_id: str) -> TargetInvoice | None:
    row = conn.execute(
        select(invoices).where(
            and_(invoices.c.connection == connection, invoices.c.external_id == external_id)
        )
    ).first()
    if row is None:
        return None
    return TargetInvoice(
        external_id=row.external_id,
        customer_external_id=row.customer_external_id,
        currency=row.currency,
        balance=row.balance,
        status=row.status,
        deleted=row.deleted_at is not None,
    )


def unverified_effect(conn: Connection, connection: str, external_id: str) -> Decimal:
    """The net change syncd's done-but-unverified pushes made to one target invoice's balance
    (payments lower it, reversals raise it) that the stored balance may not show yet."""
    rows = conn.execute(
        select(payment_pushes.c.kind, payment_allocations.c.amount)
        .join(payment_allocations, payment_allocations.c.id == payment_pushes.c.allocation_id)
        .where(
            and_(
                payment_pushes.c.connection == connection,
                payment_pushes.c.invoice_external_id == external_id,
                payment_pushes.c.status == "done",
                payment_pushes.c.verified.is_(None),
            )
        )
    ).all()
    return sum((r.amount if r.kind == "reverse" else -r.amount for r in rows), ZERO)


__all__ = [
    "PENDING",
    "TargetInvoice",
    "invoice_copies",
    "invoice_rows",
    "stored_invoice",
    "target_invoice",
    "unreflected",
    "unverified_effect",
]
