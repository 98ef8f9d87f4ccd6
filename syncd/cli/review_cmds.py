"""``syncd review``, ``link``, ``unlink`` and ``quarantine``: the work a person does by hand.

Review items are the link questions syncd will not guess; ``link``/``unlink`` are a person's own
decisions, which no later pass overrides. Quarantined records failed mapping or validation; once
the mapping is fixed, ``quarantine retry`` maps the stored payload again and applies it through
the same plan/apply path as a sync, so a replayed old payload never overwrites newer data.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Connection, Engine

from syncd.cli._context import AppContext
from syncd.clock import Clock, SystemClock
from syncd.config import Settings
from syncd.errors import ConfigError
from syncd.mapping import Mapping, MappingFailed, load_mapping
from syncd.reconcile.link import Kind
from syncd.reconcile.plan import content_hash, plan_page
from syncd.registry import default_registry
from syncd.store.links import (
    LinkRefused,
    ReviewRow,
    begin_pair,
    get_review,
    link_records,
    list_reviews,
    ordered,
    resolve_review,
    unlink_records,
)
from syncd.store.records import TABLES, apply_plan, load_stored
from syncd.store.tables import quarantine as quarantine_table

KINDS = [kind.value for kind in Kind]


@contextmanager
def _pair_transaction(engine: Engine, left: str, right: str) -> Iterator[Connection]:
    """A transaction holding the pair's link lock, so a running sync never races a person."""
    with engine.connect() as conn:
        begin_pair(conn, *ordered(left, right))
        yield conn
        conn.commit()


def _when(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


# --- review -------------------------------------------------------------------------------------


@click.group()
def review() -> None:
    """Questions syncd will not guess: which customer or invoice is which across systems."""


@review.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include resolved items.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def review_list(app: AppContext, show_all: bool, as_json: bool) -> None:
    """List open review items (oldest first)."""
    with app.engine.connect() as conn:
        items = list_reviews(conn, None if show_all else "open")
    if as_json:
        click.echo(json.dumps([_review_json(item) for item in items], indent=2))
        return
    if not items:
        click.echo("no review items" if show_all else "no open review items")
    for item in items:
        state = "" if item.status == "open" else f" [{item.resolution}]"
        count = len(item.detail.get("candidates", ()))
        click.echo(
            f"{item.id}: {item.subject}: {item.detail.get('reason', '')} "
            f"({count} candidate{'' if count == 1 else 's'}){state}"
        )


def _review_json(item: ReviewRow) -> dict[str, Any]:
    return {
        "id": item.id,
        "kind": item.kind,
        "subject": item.subject,
        "status": item.status,
        "resolution": item.resolution,
        "created_at": _when(item.created_at),
        "resolved_at": _when(item.resolved_at),
        **item.detail,
    }


@review.command("show")
@click.argument("item_id", type=int)
@click.pass_obj
def review_show(app: AppContext, item_id: int) -> None:
    """Show one review item: its candidates, their evidence, and how to decide."""
    with app.engine.connect() as conn:
        item = get_review(conn, item_id)
    detail = item.detail
    left, right = detail.get("left", "?"), detail.get("right", "?")
    state = "open" if item.status == "open" else f"resolved: {item.resolution}"
    click.echo(f"review item {item.id}: {item.subject} ({state}, raised {_when(item.created_at)})")
    click.echo(f"reason: {detail.get('reason', '')}")
    records = detail.get("records", {})
    candidates = detail.get("candidates", [])
    click.echo(f"candidates ({left} ~ {right}):")
    for c in candidates:
        one, other = f"{left}:{c['left']}", f"{right}:{c['right']}"
        score = "" if c.get("score") is None else f" {c['score']}"
        click.echo(
            f"  {one} {_record_text(records.get(one))}  ~  {other} "
            f"{_record_text(records.get(other))}  [{c.get('evidence', '')}{score}]"
        )
    if item.status == "open" and candidates:
        first = candidates[0]
        click.echo("decide with one of:")
        click.echo(
            f"  syncd review resolve {item.id} --link {first['left']} {first['right']}"
            "   # these two are the same"
        )
        click.echo(f"  syncd review resolve {item.id} --distinct   # none of these are the same")
        click.echo(
            f"  syncd review resolve {item.id} --dismiss    # no decision; ask again only "
            "if a new candidate appears"
        )


def _record_text(record: dict[str, Any] | None) -> str:
    if not record:
        return ""
    if "number" in record:
        date = f", issued {record['issued_on']}" if record.get("issued_on") else ""
        return f"(#{record['number']}, {record['total']} {record['currency']}{date})"
    facts = [json.dumps(record.get("name"), ensure_ascii=False)]
    facts += [str(record[key]) for key in ("email", "tax_id", "xref") if record.get(key)]
    return f"({', '.join(facts)})"


@review.command("resolve")
@click.argument("item_id", type=int)
@click.option(
    "--link",
    "pair",
    nargs=2,
    metavar="LEFT_ID RIGHT_ID",
    help="These two records (external ids, left connection first) are the same: link them.",
)
@click.option("--distinct", is_flag=True, help="None of the candidates are the same record.")
@click.option("--dismiss", is_flag=True, help="No decision; ask again only for a new candidate.")
@click.pass_obj
def review_resolve(
    app: AppContext, item_id: int, pair: tuple[str, str] | None, distinct: bool, dismiss: bool
) -> None:
    """Answer a review item. A person's answer is never changed by a later automatic pass."""
    given = {"link": bool(pair), "distinct": distinct, "dismissed": dismiss}
    chosen = [decision for decision, flag in given.items() if flag]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --link LEFT_ID RIGHT_ID, --distinct, --dismiss")
    with app.engine.connect() as conn:
        item = get_review(conn, item_id)
    left, right = str(item.detail.get("left", "")), str(item.detail.get("right", ""))
    with _pair_transaction(app.engine, left, right) as conn:
        done = resolve_review(conn, item_id, chosen[0], now=SystemClock().now(), pair=pair)
    if pair:
        click.echo(f"review item {done.id} resolved: linked {left}:{pair[0]} and {right}:{pair[1]}")
    else:
        click.echo(f"review item {done.id} resolved: {done.resolution}")


# --- link / unlink ------------------------------------------------------------------------------


def _record_ref(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, str]:
    """``CONNECTION:EXTERNAL_ID`` (connection names hold no colon; external ids may)."""
    connection, sep, external_id = value.partition(":")
    if not sep or not connection or not external_id:
        raise click.BadParameter(f"{value!r}: write CONNECTION:EXTERNAL_ID, e.g. cw:123")
    return connection, external_id


@click.command("link")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("a", metavar="CONNECTION:ID", callback=_record_ref)
@click.argument("b", metavar="CONNECTION:ID", callback=_record_ref)
@click.pass_obj
def link(app: AppContext, kind: str, a: tuple[str, str], b: tuple[str, str]) -> None:
    """Link two records of two connections by hand, e.g. `syncd link customer cw:12 qbo:77`.

    A manual link is never changed by an automatic pass. A record linked to another must be
    unlinked first.
    """
    with _pair_transaction(app.engine, a[0], b[0]) as conn:
        made = link_records(conn, Kind(kind), a, b, now=SystemClock().now())
    left, right = ordered(a[0], b[0])
    click.echo(f"linked {kind} {left}:{made.left} and {right}:{made.right} (manual)")


@click.command("unlink")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("a", metavar="CONNECTION:ID", callback=_record_ref)
@click.argument("b", metavar="CONNECTION:ID", callback=_record_ref)
@click.pass_obj
def unlink(app: AppContext, kind: str, a: tuple[str, str], b: tuple[str, str]) -> None:
    """Remove a link and remember that the two records differ, so no pass links them again."""
    with _pair_transaction(app.engine, a[0], b[0]) as conn:
        was = unlink_records(conn, Kind(kind), a, b, now=SystemClock().now())
    left, right = ordered(a[0], b[0])
    click.echo(
        f"unlinked {kind} {left}:{was.left} and {right}:{was.right} (was {was.method.value}); "
        "they will not be linked again automatically"
    )


# --- quarantine ---------------------------------------------------------------------------------


@click.group()
def quarantine() -> None:
    """Records that failed mapping or validation, kept with their payload and reason."""


@quarantine.command("list")
@click.option("--connection", "names", multiple=True, help="Only this connection (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def quarantine_list(app: AppContext, names: tuple[str, ...], as_json: bool) -> None:
    """List quarantined records not resolved yet (oldest first)."""
    q = quarantine_table.c
    query = (
        select(q.id, q.connection, q.stream, q.external_id, q.reason, q.run_id, q.created_at)
        .where(q.resolved_at.is_(None))
        .order_by(q.id)
    )
    if names:
        query = query.where(q.connection.in_(names))
    with app.engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)]
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=_when))
        return
    if not rows:
        click.echo("no quarantined records")
    for row in rows:
        reason = row["reason"].splitlines()[0] if row["reason"] else ""
        click.echo(
            f"{row['id']}: {row['connection']}/{row['stream']} {row['external_id'] or '(no id)'}: "
            f"{reason}"
        )


@quarantine.command("show")
@click.argument("row_id", type=int)
@click.pass_obj
def quarantine_show(app: AppContext, row_id: int) -> None:
    """Show one quarantined record: why it was refused, and the payload as the source sent it."""
    row = _quarantined(app.engine, row_id)
    state = f"resolved {_when(row['resolved_at'])}" if row["resolved_at"] else "open"
    click.echo(
        f"quarantine {row['id']}: {row['connection']}/{row['stream']} "
        f"{row['external_id'] or '(no id)'} ({state})"
    )
    click.echo(f"quarantined {_when(row['created_at'])} by run {row['run_id']}")
    click.echo(f"reason: {row['reason']}")
    click.echo("payload:")
    click.echo(json.dumps(row["payload"], indent=2, ensure_ascii=False, default=str))


def _quarantined(engine: Engine, row_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        found = conn.execute(
            select(quarantine_table).where(quarantine_table.c.id == row_id)
        ).first()
    if found is None:
        raise LinkRefused(f"no quarantined record {row_id} (see `syncd quarantine list`)")
    return dict(found._mapping)


@quarantine.command("retry")
@click.argument("row_ids", type=int, nargs=-1)
@click.option("--all", "retry_all", is_flag=True, help="Retry every open quarantined record.")
@click.pass_obj
def quarantine_retry(app: AppContext, row_ids: tuple[int, ...], retry_all: bool) -> None:
    """Map quarantined payloads again with the connection's current mapping and store those that
    now map; the others stay quarantined, with the reason. Exit status 1 when any still fails."""
    if bool(row_ids) == retry_all:
        raise click.UsageError("give the ids of quarantined records to retry, or --all")
    ids = list(row_ids)
    if retry_all:
        q = quarantine_table.c
        # Newest first: a record's latest payload is stored and resolves its older copies.
        newest_first = select(q.id).where(q.resolved_at.is_(None)).order_by(q.id.desc())
        with app.engine.connect() as conn:
            ids = list(conn.execute(newest_first).scalars())
        if not ids:
            click.echo("no quarantined records")
    retrier = Retrier(app.engine, app.settings, SystemClock())
    outcomes = [retrier.retry(row_id) for row_id in ids]
    for outcome in outcomes:
        click.echo(f"quarantine {outcome.id}: {outcome.detail}")
    if not all(outcome.ok for outcome in outcomes):
        raise SystemExit(1)


@dataclass(frozen=True)
class Retried:
    id: int
    ok: bool
    detail: str


class Retrier:
    """Replays quarantined payloads through a connection's current mapping and the sync's
    plan/apply path, one transaction per record."""

    def __init__(self, engine: Engine, settings: Settings, clock: Clock) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self._mappings: dict[str, tuple[Mapping, Callable[..., str]]] = {}

    def retry(self, row_id: int) -> Retried:
        row = _quarantined(self.engine, row_id)
        connection = row["connection"]
        where = f"{connection}/{row['stream']} {row['external_id'] or '(no id)'}"
        if row["resolved_at"] is not None:
            return Retried(row_id, True, f"{where}: already resolved")
        if connection not in self.settings.connections:
            return Retried(row_id, False, f"{where}: connection {connection} is not in the config")
        stream = next((s for s in TABLES if s.value == row["stream"]), None)
        if stream is None:
            return Retried(row_id, False, f"{where}: the {row['stream']} stream is not stored yet")
        mapping, hasher = self._mapping(connection)
        try:
            record = mapping.apply(stream.value, row["payload"], connection=connection)
        except (MappingFailed, ConfigError) as exc:
            return Retried(row_id, False, f"{where}: still fails: {exc}")
        with self.engine.begin() as tx:
            stored = load_stored(tx, stream, connection, [record.external_id])
            plan = plan_page(stored, [record], hasher=hasher)
            now = self.clock.now()
            apply_plan(tx, stream, connection, plan, now=now, run_id=f"retry-{row_id}")
            q = quarantine_table.c
            this_record = q.id == row_id
            if row["external_id"] is not None:  # older copies of the same record are moot too
                this_record = or_(
                    this_record,
                    and_(
                        q.connection == connection,
                        q.stream == row["stream"],
                        q.external_id == row["external_id"],
                        q.id < row_id,
                    ),
                )
            tx.execute(
                update(quarantine_table)
                .where(and_(q.resolved_at.is_(None), this_record))
                .values(resolved_at=now)
            )
        done = next(name for name, count in plan.counts.items() if count)
        return Retried(row_id, True, f"{connection}/{stream.value} {record.external_id}: {done}")

    def _mapping(self, name: str) -> tuple[Mapping, Callable[..., str]]:
        """The connection's current mapping (its own file, else the connector's default, plus
        its overrides) and the content hasher its sync uses."""
        if name not in self._mappings:
            connection = self.settings.connection(name)
            cls = default_registry().load(connection.connector)
            path = connection.mapping
            if path is None:
                path = getattr(cls, "default_mapping", None)
                if not isinstance(path, Path):
                    raise ConfigError(
                        f"connections.{name}: connector {connection.connector!r} ships no "
                        'default mapping; set mapping = "<file>.toml" for this connection'
                    )
            elif not path.is_absolute() and self.settings.source is not None:
                path = self.settings.source.parent / path
            volatile = getattr(cls, "volatile_keys", None)
            hasher: Callable[..., str] = (
                content_hash if volatile is None else lambda r: content_hash(r, volatile)
            )
            mapping = load_mapping(path, connection.mapping_overrides or None)
            self._mappings[name] = (mapping, hasher)
        return self._mappings[name]


__all__ = ["Retried", "Retrier", "link", "quarantine", "review", "unlink"]
