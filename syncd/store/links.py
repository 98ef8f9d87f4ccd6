"""Links and review items in the store: what the link planner reads, and writing its plan.

A pair of connections is linked in one transaction that first takes the pair's write lock
(``BEGIN IMMEDIATE`` on SQLite, a transaction-scoped advisory lock on PostgreSQL), so two workers
never plan from the same snapshot. Writing is idempotent: a link whose left or right record is
already linked is skipped, a question whose subject already has an open item is not asked twice.

People's decisions live here too. A manual link is a ``links`` row with method ``manual``;
"these are different" (``review resolve --distinct``, ``unlink``) is a resolved review item with
resolution ``distinct`` whose candidates the planner never links; ``--dismiss`` is resolution
``dismissed``, asked again only when a new candidate appears. Links are oriented: the left
connection is the one whose name sorts first, whatever order a person typed them in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from syncd.errors import SyncdError
from syncd.reconcile.link import (
    CustomerFacts,
    Decisions,
    InvoiceFacts,
    Kind,
    Link,
    LinkInputs,
    LinkPlan,
    Method,
)
from syncd.store.tables import customers, invoices, links, review_items

OPEN = "open"
RESOLVED = "resolved"
REVIEW_KINDS = tuple(kind.review_kind for kind in Kind)
_CHUNK = 500


class LinkRefused(SyncdError):
    """A person asked for a link, unlink or resolution that cannot be done; says why and how."""


@dataclass(frozen=True)
class ReviewRow:
    id: int
    kind: str
    connection: str | None
    subject: str
    detail: dict[str, Any]
    status: str
    resolution: str | None
    created_at: dt.datetime
    resolved_at: dt.datetime | None


@dataclass(frozen=True)
class Applied:
    """What writing a plan changed (fewer than planned when another writer got there first)."""

    links: tuple[Link, ...] = ()
    opened: int = 0
    closed: int = 0


def ordered(a: str, b: str) -> tuple[str, str]:
    """The (left, right) orientation of a pair of connections."""
    return (a, b) if a <= b else (b, a)


def begin_pair(conn: Connection, left: str, right: str) -> None:
    """Begin the transaction that plans and writes links of one pair, holding its write lock."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        return
    digest = hashlib.blake2b(f"syncd-links {left} {right}".encode(), digest_size=8).digest()
    key = int.from_bytes(digest, "big", signed=True)
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


# --- what the planner reads ---------------------------------------------------------------------


def load_customer_inputs(conn: Connection, left: str, right: str) -> LinkInputs:
    """Both connections' live customers, the pair's links, decisions and open questions."""
    decisions, open_subjects = _load_decisions(conn, left, right)
    return LinkInputs(
        left=left,
        right=right,
        left_customers=tuple(_customers(conn, left)),
        right_customers=tuple(_customers(conn, right)),
        links=tuple(_pair_links(conn, left, right)),
        decisions=decisions,
        open_subjects=open_subjects,
    )


def with_invoices(conn: Connection, inputs: LinkInputs) -> LinkInputs:
    """``inputs`` with the pair's current links and the live invoices of its linked customers
    (only those can link, so the rest are dropped while streaming, never held in memory)."""
    current = tuple(_pair_links(conn, inputs.left, inputs.right))
    linked = [link for link in current if link.kind == Kind.CUSTOMER]
    return replace(
        inputs,
        links=current,
        left_invoices=tuple(_invoices(conn, inputs.left, {link.left for link in linked})),
        right_invoices=tuple(_invoices(conn, inputs.right, {link.right for link in linked})),
    )


def _customers(conn: Connection, connection: str) -> Iterator[CustomerFacts]:
    c = customers.c
    query = select(c.external_id, c.name, c.email, c.tax_id, c.xref).where(
        and_(c.connection == connection, c.deleted_at.is_(None))
    )
    for row in conn.execute(query):
        yield CustomerFacts(row.external_id, row.name, row.email, row.tax_id, row.xref)


def _invoices(conn: Connection, connection: str, owners: set[str]) -> Iterator[InvoiceFacts]:
    """One streamed scan, filtered here: a join against ``links`` is planned badly by PostgreSQL
    right after a first sync bulk-loads both tables, before their statistics exist."""
    i = invoices.c
    query = select(
        i.external_id, i.number, i.customer_external_id, i.total, i.currency, i.issued_on
    ).where(and_(i.connection == connection, i.deleted_at.is_(None)))
    # On the statement, not the connection: Connection.execution_options() changes the
    # connection for every later statement (PostgreSQL: executemany on a server-side cursor).
    for row in conn.execute(query.execution_options(yield_per=2000)):
        if row.customer_external_id in owners:
            yield InvoiceFacts(
                row.external_id,
                row.number,
                row.customer_external_id,
                row.total,
                row.currency,
                row.issued_on,
            )


def _pair_filter(left: str, right: str) -> ColumnElement[bool]:
    k = links.c
    return or_(
        and_(k.left_connection == left, k.right_connection == right),
        and_(k.left_connection == right, k.right_connection == left),
    )


def _pair_links(conn: Connection, left: str, right: str) -> Iterator[Link]:
    for row in conn.execute(select(links).where(_pair_filter(left, right))):
        a, b = row.left_external_id, row.right_external_id
        if row.left_connection != left:
            a, b = b, a
        yield Link(Kind(row.kind), a, b, Method(row.method), row.score)


def _load_decisions(conn: Connection, left: str, right: str) -> tuple[Decisions, frozenset[str]]:
    r = review_items.c
    query = select(r.kind, r.subject, r.detail, r.status, r.resolution).where(
        and_(
            r.kind.in_(REVIEW_KINDS),
            r.connection.in_((left, right)),
            or_(r.status == OPEN, r.resolution.in_(("distinct", "dismissed"))),
        )
    )
    distinct: set[tuple[Kind, str, str]] = set()
    dismissed: dict[str, set[tuple[str, str]]] = defaultdict(set)
    open_subjects: set[str] = set()
    for row in conn.execute(query):
        pairs = _pairs_of(row.detail, left, right)
        if pairs is None:
            continue  # a question about another pair of connections
        if row.status == OPEN:
            open_subjects.add(row.subject)
        elif row.resolution == "distinct":
            kind = Kind(row.kind.removesuffix("_match"))
            distinct.update((kind, a, b) for a, b in pairs)
        else:
            dismissed[row.subject].update(pairs)
    decided = Decisions(
        distinct=frozenset(distinct),
        dismissed={subject: frozenset(pairs) for subject, pairs in dismissed.items()},
    )
    return decided, frozenset(open_subjects)


def _pairs_of(detail: Any, left: str, right: str) -> list[tuple[str, str]] | None:
    """A review item's candidate pairs oriented for (left, right), or None for another pair."""
    if not isinstance(detail, dict):
        return None
    sides = (detail.get("left"), detail.get("right"))
    if sides not in ((left, right), (right, left)):
        return None
    pairs = [(str(c["left"]), str(c["right"])) for c in detail.get("candidates", ())]
    return pairs if sides == (left, right) else [(b, a) for a, b in pairs]


# --- writing a plan -----------------------------------------------------------------------------


def apply_link_plan(
    conn: Connection, left: str, right: str, plan: LinkPlan, *, now: dt.datetime
) -> Applied:
    """Write a plan inside the caller's transaction (see :func:`begin_pair`); idempotent."""
    taken: dict[Kind, tuple[set[str], set[str]]] = {kind: (set(), set()) for kind in Kind}
    for existing in _pair_links(conn, left, right):
        taken[existing.kind][0].add(existing.left)
        taken[existing.kind][1].add(existing.right)
    new: list[Link] = []
    for link in plan.links:
        lefts, rights = taken[link.kind]
        if link.left in lefts or link.right in rights:
            continue
        lefts.add(link.left)
        rights.add(link.right)
        new.append(link)
    if new:
        conn.execute(insert(links), [_link_values(link, left, right, now) for link in new])

    already_open = _open_subjects(conn, {review.subject for review in plan.reviews})
    opened = []
    for review in plan.reviews:
        if review.subject not in already_open:
            already_open.add(review.subject)
            opened.append(
                {
                    "kind": review.kind.review_kind,
                    "connection": review.connection,
                    "subject": review.subject,
                    "detail": dict(review.detail),
                    "status": OPEN,
                    "created_at": now,
                }
            )
    if opened:
        conn.execute(insert(review_items), opened)

    closed = 0
    obsolete = list(plan.obsolete)
    r = review_items.c
    for start in range(0, len(obsolete), _CHUNK):
        result = conn.execute(
            update(review_items)
            .where(
                and_(
                    r.status == OPEN,
                    r.kind.in_(REVIEW_KINDS),
                    r.subject.in_(obsolete[start : start + _CHUNK]),
                )
            )
            .values(status=RESOLVED, resolution="obsolete", resolved_at=now)
        )
        closed += result.rowcount
    return Applied(links=tuple(new), opened=len(opened), closed=closed)


def _link_values(link: Link, left: str, right: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "kind": link.kind.value,
        "left_connection": left,
        "left_external_id": link.left,
        "right_connection": right,
        "right_external_id": link.right,
        "method": link.method.value,
        "score": link.score,
        "created_at": now,
    }


def _open_subjects(conn: Connection, subjects: Iterable[str]) -> set[str]:
    r = review_items.c
    wanted = sorted(subjects)
    found: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        query = select(r.subject).where(
            and_(
                r.status == OPEN,
                r.kind.in_(REVIEW_KINDS),
                r.subject.in_(wanted[start : start + _CHUNK]),
            )
        )
        found.update(conn.execute(query).scalars())
    return found


# --- a person's decisions -----------------------------------------------------------------------


def list_reviews(conn: Connection, status: str | None = OPEN) -> list[ReviewRow]:
    """Review items, oldest first; ``status=None`` lists every one."""
    query = select(review_items).order_by(review_items.c.id)
    if status is not None:
        query = query.where(review_items.c.status == status)
    return [_review(row) for row in conn.execute(query)]


def get_review(conn: Connection, item_id: int) -> ReviewRow:
    row = conn.execute(select(review_items).where(review_items.c.id == item_id)).first()
    if row is None:
        raise LinkRefused(f"no review item {item_id} (see `syncd review list`)")
    return _review(row)


def _review(row: Any) -> ReviewRow:
    return ReviewRow(
        id=row.id,
        kind=row.kind,
        connection=row.connection,
        subject=row.subject,
        detail=dict(row.detail),
        status=row.status,
        resolution=row.resolution,
        created_at=row.created_at,
        resolved_at=row.resolved_at,
    )


def resolve_review(
    conn: Connection,
    item_id: int,
    decision: str,
    *,
    now: dt.datetime,
    pair: tuple[str, str] | None = None,
) -> ReviewRow:
    """Close an open question: ``link`` (``pair`` = left and right external ids), ``distinct``
    (none of its candidates is the same record) or ``dismissed`` (no decision; asked again only
    when a new candidate appears)."""
    item = get_review(conn, item_id)
    if item.status != OPEN:
        raise LinkRefused(f"review item {item_id} is already resolved ({item.resolution})")
    if item.kind not in REVIEW_KINDS:
        raise LinkRefused(f"review item {item_id} is a {item.kind}, not a link question")
    detail = dict(item.detail)
    if decision == "link":
        if pair is None:
            raise LinkRefused("say which two records to link: --link LEFT_ID RIGHT_ID")
        kind = Kind(item.kind.removesuffix("_match"))
        left, right = str(detail["left"]), str(detail["right"])
        link_records(conn, kind, (left, pair[0]), (right, pair[1]), now=now)
        detail["decision"] = {"left": pair[0], "right": pair[1]}
        resolution = "linked"
    elif decision in ("distinct", "dismissed"):
        resolution = decision
    else:
        raise ValueError(f"unknown decision {decision!r}")
    conn.execute(
        update(review_items)
        .where(review_items.c.id == item_id)
        .values(status=RESOLVED, resolution=resolution, resolved_at=now, detail=detail)
    )
    return get_review(conn, item_id)


def link_records(
    conn: Connection, kind: Kind, a: tuple[str, str], b: tuple[str, str], *, now: dt.datetime
) -> Link:
    """Link two records by hand (``a``/``b`` are (connection, external id), in any order).

    A person confirming an automatic link makes it manual. A record linked to another must be
    unlinked first: silently replacing a link would hide what changed.
    """
    (left, left_id), (right, right_id) = sorted((a, b))
    if left == right:
        raise LinkRefused(f"both records are in {left}: links join two connections")
    for connection, external_id in ((left, left_id), (right, right_id)):
        _require_record(conn, kind, connection, external_id)
    existing = [
        link
        for link in _pair_links(conn, left, right)
        if link.kind == kind and (link.left == left_id or link.right == right_id)
    ]
    for link in existing:
        if (link.left, link.right) != (left_id, right_id):
            raise LinkRefused(
                f"{kind.value} {left}:{link.left} is linked to {right}:{link.right} "
                f"({link.method.value}); run `syncd unlink {kind.value} {left}:{link.left} "
                f"{right}:{link.right}` first"
            )
    manual = Link(kind, left_id, right_id, Method.MANUAL)
    if existing:
        conn.execute(
            update(links)
            .where(_link_row(kind, left, left_id, right, right_id))
            .values(method=Method.MANUAL.value)
        )
    else:
        conn.execute(insert(links).values(_link_values(manual, left, right, now)))
    _close_questions(conn, kind, [(left, left_id, right), (right, right_id, left)], now)
    return manual


def unlink_records(
    conn: Connection, kind: Kind, a: tuple[str, str], b: tuple[str, str], *, now: dt.datetime
) -> Link:
    """Remove a link and record that the two records are different, so no pass relinks them."""
    (left, left_id), (right, right_id) = sorted((a, b))
    found = [
        link
        for link in _pair_links(conn, left, right)
        if link.kind == kind and (link.left, link.right) == (left_id, right_id)
    ]
    if not found:
        raise LinkRefused(
            f"{kind.value} {left}:{left_id} and {right}:{right_id} are not linked "
            f"(see `syncd review list`)"
        )
    conn.execute(
        delete(links).where(
            or_(
                _link_row(kind, left, left_id, right, right_id),
                _link_row(kind, right, right_id, left, left_id),
            )
        )
    )
    subject = f"{kind.value} {left}:{left_id} ~ {right}"
    conn.execute(
        insert(review_items).values(
            kind=kind.review_kind,
            connection=left,
            subject=subject,
            detail={
                "reason": f"unlinked by a person (was {found[0].method.value})",
                "left": left,
                "right": right,
                "candidates": [
                    {"left": left_id, "right": right_id, "evidence": "manual", "score": None}
                ],
                "records": {},
            },
            status=RESOLVED,
            resolution="distinct",
            created_at=now,
            resolved_at=now,
        )
    )
    return found[0]


def _link_row(
    kind: Kind, left: str, left_id: str, right: str, right_id: str
) -> ColumnElement[bool]:
    k = links.c
    return and_(
        k.kind == kind.value,
        k.left_connection == left,
        k.left_external_id == left_id,
        k.right_connection == right,
        k.right_external_id == right_id,
    )


def _require_record(conn: Connection, kind: Kind, connection: str, external_id: str) -> None:
    table = customers if kind == Kind.CUSTOMER else invoices
    found = conn.execute(
        select(table.c.deleted_at).where(
            and_(table.c.connection == connection, table.c.external_id == external_id)
        )
    ).first()
    if found is None:
        raise LinkRefused(f"no {kind.value} {connection}:{external_id} in the store")
    if found.deleted_at is not None:
        raise LinkRefused(f"{kind.value} {connection}:{external_id} was deleted at the source")


def _close_questions(
    conn: Connection, kind: Kind, about: Sequence[tuple[str, str, str]], now: dt.datetime
) -> None:
    """Resolve open questions whose subject is one of these records (a person just answered)."""
    subjects = [f"{kind.value} {c}:{ext} ~ {other}" for c, ext, other in about]
    conn.execute(
        update(review_items)
        .where(and_(review_items.c.status == OPEN, review_items.c.subject.in_(subjects)))
        .values(status=RESOLVED, resolution="superseded", resolved_at=now)
    )


__all__ = [
    "REVIEW_KINDS",
    "Applied",
    "LinkRefused",
    "ReviewRow",
    "apply_link_plan",
    "begin_pair",
    "get_review",
    "link_records",
    "list_reviews",
    "load_customer_inputs",
    "ordered",
    "resolve_review",
    "unlink_records",
    "with_invoices",
]
