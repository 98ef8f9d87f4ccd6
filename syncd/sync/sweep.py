"""The periodic sweep: a full enumeration that finds deletions and money drift.

Incremental feeds do not report every deletion (a ConnectWise invoice DELETE just vanishes) and
some sources do not bump their modified time for every edit (Xero), so once a day (per
connection ``sweep``) the engine lists every record again. Pages are planned and applied as in a
pull, so drift is repaired as it is found; what the sweep adds:

* **Deletions**, only after the enumeration completed without error: stored rows the source no
  longer lists are marked deleted, unless they exceed ``max_delete_share`` of the connection's
  rows; then nothing is deleted and a review item asks a person (an empty or truncated listing
  must never wipe the store).
* **Money drift**: invoices whose stored balance differed from the source, and the difference in
  count and open balance between the store before the sweep and the source, recorded in the
  sweep's run and, when non-zero, in a review item that names the invoices.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

import structlog
from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Connection, Engine

from syncd.clock import Clock
from syncd.config.models import ConnectionSettings
from syncd.connector import Connector, Cursor, Stream
from syncd.errors import SyncdError
from syncd.model import Invoice, InvoiceStatus
from syncd.reconcile.plan import plan_page
from syncd.redact import REDACTOR
from syncd.store.records import apply_plan, load_stored, mark_deleted, table_for
from syncd.store.state import add_to_run, ensure_connection, finish_run, start_run
from syncd.store.tables import invoices, review_items
from syncd.sync.engine import streams_of

_OPEN = (InvoiceStatus.OPEN.value, InvoiceStatus.PARTIALLY_PAID.value)
_DRIFT_LISTED = 50  # invoice numbers named in a review item; the count says how many more


@dataclass(frozen=True)
class Drift:
    number: str
    external_id: str
    stored_balance: Decimal
    source_balance: Decimal


@dataclass(frozen=True)
class SweepResult:
    connection: str
    stream: str
    run_id: str
    status: str
    seen: int = 0
    deleted: int = 0
    held_back: int = 0  # deletions refused by the mass-delete guard
    drift: tuple[Drift, ...] = ()
    store_open_before: Decimal = Decimal(0)
    source_open: Decimal = Decimal(0)
    error: str | None = None
    review_items: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"


def sweep_stream(
    engine: Engine,
    settings: ConnectionSettings,
    connector: Connector,
    stream: Stream,
    *,
    clock: Clock,
    run_id: str | None = None,
) -> SweepResult:
    """Enumerate ``stream`` completely, repair drift, and mark what the source no longer has."""
    run_id = run_id or uuid.uuid4().hex[:12]
    with structlog.contextvars.bound_contextvars(
        connection=settings.name, stream=f"{stream.value}:sweep", run_id=run_id
    ):
        return _sweep_stream(engine, settings, connector, stream, clock, run_id)


def _sweep_stream(
    engine: Engine,
    settings: ConnectionSettings,
    connector: Connector,
    stream: Stream,
    clock: Clock,
    run_id: str,
) -> SweepResult:
    name = settings.name
    label = f"{stream.value}:sweep"
    log = structlog.get_logger("syncd.sweep")
    table = table_for(stream)
    started = clock.now()
    with engine.begin() as tx:
        ensure_connection(tx, name, settings.connector, started)
        run_row = start_run(tx, run_id, name, label, started)
        open_before = _open_balance(tx, name) if stream is Stream.INVOICES else Decimal(0)
    seen: set[str] = set()
    drift: list[Drift] = []
    source_open = Decimal(0)
    try:
        for page in connector.pull(stream, Cursor(since=None)):
            with engine.begin() as tx:
                ids = [r.external_id for r in page.records]
                before = _balances(tx, name, ids) if stream is Stream.INVOICES else {}
                plan = plan_page(load_stored(tx, stream, name, ids), page.records, page.rejected)
                apply_plan(tx, stream, name, plan, now=clock.now(), run_id=run_id)
                add_to_run(tx, run_row, {**plan.counts, "pages": 1})
            seen.update(ids)
            seen.update(r.external_id for r in page.rejected if r.external_id)
            for record in page.records:
                if not isinstance(record, Invoice):
                    continue
                if record.status in _OPEN:
                    source_open += record.balance
                stored = before.get(record.external_id)
                if stored is not None and stored[1] != record.balance:
                    drift.append(
                        Drift(record.number, record.external_id, stored[1], record.balance)
                    )
    except SyncdError as exc:
        message = str(REDACTOR.redact(str(exc)))
        with engine.begin() as tx:
            finish_run(tx, run_row, "failed", clock.now(), error=message)
        log.error("sweep_failed", error=message)
        return SweepResult(name, stream.value, run_id, "failed", len(seen), error=message)

    reviews: list[str] = []
    with engine.begin() as tx:
        stored_ids = {
            row.external_id
            for row in tx.execute(
                select(table.c.external_id).where(
                    and_(table.c.connection == name, table.c.deleted_at.is_(None))
                )
            )
        }
        missing = sorted(stored_ids - seen)
        deleted = held = 0
        if missing and len(missing) > settings.max_delete_share * len(stored_ids):
            held = len(missing)
            reviews.append(
                _review(
                    tx,
                    kind="mass_delete",
                    connection=name,
                    subject=f"sweep {name}/{stream.value}: mass deletion held back",
                    detail={
                        "stream": stream.value,
                        "missing": missing[:_DRIFT_LISTED],
                        "missing_count": held,
                        "stored": len(stored_ids),
                        "max_delete_share": settings.max_delete_share,
                        "hint": "if the source really deleted them, raise max_delete_share "
                        "for one sweep; otherwise check the connection's permissions",
                    },
                    now=clock.now(),
                )
            )
            log.warning("sweep_mass_delete_refused", missing=held, stored=len(stored_ids))
        elif missing:
            deleted = mark_deleted(tx, stream, name, missing, clock.now())
        if drift:
            reviews.append(
                _review(
                    tx,
                    kind="money_drift",
                    connection=name,
                    subject=f"sweep {name}/{stream.value}: balances differed from the source",
                    detail={
                        "invoices": [
                            {
                                "number": d.number,
                                "external_id": d.external_id,
                                "stored_balance": str(d.stored_balance),
                                "source_balance": str(d.source_balance),
                            }
                            for d in drift[:_DRIFT_LISTED]
                        ],
                        "count": len(drift),
                        "store_open_before": str(open_before),
                        "source_open": str(source_open),
                    },
                    now=clock.now(),
                )
            )
        add_to_run(tx, run_row, {"deleted": deleted})
        finish_run(tx, run_row, "succeeded", clock.now())
    log.info(
        "sweep_finished",
        seen=len(seen),
        deleted=deleted,
        held_back=held,
        drift=len(drift),
        store_open_before=str(open_before),
        source_open=str(source_open),
    )
    return SweepResult(
        name,
        stream.value,
        run_id,
        "succeeded",
        len(seen),
        deleted,
        held,
        tuple(drift),
        open_before,
        source_open,
        review_items=reviews,
    )


def _balances(tx: Connection, connection: str, ids: list[str]) -> dict[str, tuple[str, Decimal]]:
    found: dict[str, tuple[str, Decimal]] = {}
    for start in range(0, len(ids), 500):
        rows = tx.execute(
            select(invoices.c.external_id, invoices.c.number, invoices.c.balance).where(
                and_(
                    invoices.c.connection == connection,
                    invoices.c.external_id.in_(ids[start : start + 500]),
                )
            )
        )
        for row in rows:
            found[row.external_id] = (row.number, row.balance)
    return found


def _open_balance(tx: Connection, connection: str) -> Decimal:
    rows = tx.execute(
        select(invoices.c.balance).where(
            and_(
                invoices.c.connection == connection,
                invoices.c.deleted_at.is_(None),
                invoices.c.status.in_(_OPEN),
            )
        )
    )
    return sum((row.balance for row in rows), Decimal(0))


def _review(
    tx: Connection,
    *,
    kind: str,
    connection: str,
    subject: str,
    detail: dict[str, object],
    now: dt.datetime,
) -> str:
    """Open a review item, or refresh the open one with the same subject (one per problem)."""
    same = and_(
        review_items.c.kind == kind,
        review_items.c.subject == subject,
        review_items.c.status == "open",
    )
    if tx.execute(update(review_items).where(same).values(detail=detail)).rowcount == 0:
        tx.execute(
            insert(review_items).values(
                kind=kind,
                connection=connection,
                subject=subject,
                detail=detail,
                status="open",
                created_at=now,
            )
        )
    return subject


def sweep_connection(
    engine: Engine, settings: ConnectionSettings, connector: Connector, *, clock: Clock
) -> list[SweepResult]:
    """Sweep every stream of a connection; a failed stream does not stop the next one."""
    run_id = uuid.uuid4().hex[:12]
    return [
        sweep_stream(engine, settings, connector, stream, clock=clock, run_id=run_id)
        for stream in streams_of(connector)
    ]
