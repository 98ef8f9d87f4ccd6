"""The pull pass: pages from a connector into the store, each page committed with its cursor.

A pass starts at the stored watermark minus the connection's look-back (or from nothing, for a
first full enumeration). Each page's rows, quarantined records, run counters and the pass's
resume point commit in one transaction, so a crash resumes from the last committed page. The
watermark itself moves only when the pass completes, to the highest source updated-at seen, never
past the instant the pass started: keyset pages come in id order, so a mid-pass watermark could
skip records not yet read.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

import structlog
from sqlalchemy.engine import Engine

from syncd import metrics
from syncd.clock import Clock
from syncd.config.models import ConnectionSettings
from syncd.connector import STREAM_CAPABILITY, Connector, Cursor, Page, Stream
from syncd.errors import FatalError, SyncdError
from syncd.reconcile.plan import content_hash, plan_page
from syncd.redact import REDACTOR
from syncd.store.records import TABLES, apply_plan, load_stored
from syncd.store.state import (
    StreamState,
    add_to_run,
    ensure_connection,
    finish_run,
    load_state,
    save_state,
    start_run,
)

COUNTERS = ("created", "updated", "unchanged", "voided", "deleted", "quarantined")


@dataclass(frozen=True)
class PullResult:
    """What one pull of one stream did; logged as one event and kept in ``sync_runs``."""

    connection: str
    stream: str
    run_id: str
    status: str
    pages: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    voided: int = 0
    deleted: int = 0
    quarantined: int = 0
    requests: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"


def streams_of(connector: type[Connector] | Connector) -> list[Stream]:
    """The streams a connector can pull that the store keeps, in dependency order."""
    return [
        stream
        for stream in (Stream.CUSTOMERS, Stream.INVOICES)
        if STREAM_CAPABILITY[stream] in connector.capabilities and stream in TABLES
    ]


def pull_stream(
    engine: Engine,
    settings: ConnectionSettings,
    connector: Connector,
    stream: Stream,
    *,
    clock: Clock,
    run_id: str | None = None,
    after_page: Callable[[Page], None] | None = None,
) -> PullResult:
    """Pull one stream of one connection to the end, or until an error stops it.

    Every log line written meanwhile, the HTTP client's included, carries the connection, the
    stream and the run id (structlog context variables).
    """
    run_id = run_id or uuid.uuid4().hex[:12]
    with structlog.contextvars.bound_contextvars(
        connection=settings.name, stream=stream.value, run_id=run_id
    ):
        result = _pull_stream(engine, settings, connector, stream, clock, run_id, after_page)
    metrics.observe_pull(result)  # both outcomes: _pull_stream returns failures too
    return result


def _pull_stream(
    engine: Engine,
    settings: ConnectionSettings,
    connector: Connector,
    stream: Stream,
    clock: Clock,
    run_id: str,
    after_page: Callable[[Page], None] | None,
) -> PullResult:
    name = settings.name
    log = structlog.get_logger("syncd.sync")
    started = clock.now()
    with engine.begin() as tx:
        ensure_connection(tx, name, settings.connector, started)
        state = load_state(tx, name, stream.value)
        run_row = start_run(tx, run_id, name, stream.value, started)
    if state.in_pass:
        log.info("pull_resumed", since=state.pass_since, position=state.position)
    else:
        since = None if state.watermark is None else state.watermark - _lookback(settings)
        state = replace(
            state, position=None, pass_since=since, pass_high=None, pass_started_at=started
        )
        log.info("pull_started", since=since)

    totals = dict.fromkeys(COUNTERS, 0)
    pages = requests = 0
    hasher = _hasher(connector)
    requests_before = _requests_made(connector)
    previous_position = state.position
    try:
        cursor = Cursor(since=state.pass_since, position=state.position)
        for page in connector.pull(stream, cursor):
            if page.next_position is not None and page.next_position == previous_position:
                raise FatalError(
                    f"{name}/{stream.value}: the cursor stopped advancing at "
                    f"{page.next_position!r} while pages keep coming"
                )
            previous_position = page.next_position
            with engine.begin() as tx:
                ids = [record.external_id for record in page.records]
                stored = load_stored(tx, stream, name, [*ids, *page.deleted])
                plan = plan_page(
                    stored, page.records, page.rejected, hasher=hasher, deleted_ids=page.deleted
                )
                apply_plan(tx, stream, name, plan, now=clock.now(), run_id=run_id)
                high = max((r.source_updated_at for r in page.records), default=None)
                state = replace(state.seen(high), position=page.next_position)
                save_state(tx, name, stream.value, state, clock.now())
                spent = _requests_made(connector) - requests_before - requests
                add_to_run(tx, run_row, {**plan.counts, "pages": 1, "requests": spent})
            pages += 1
            requests += spent
            for key in COUNTERS:
                totals[key] += plan.counts[key]
            log.debug("page_committed", records=len(page.records), **plan.counts)
            if after_page is not None:
                after_page(page)
        with engine.begin() as tx:
            state = _completed(state)
            save_state(tx, name, stream.value, state, clock.now())
            finish_run(tx, run_row, "succeeded", clock.now())
    except SyncdError as exc:
        message = str(REDACTOR.redact(str(exc)))
        with engine.begin() as tx:
            finish_run(tx, run_row, "failed", clock.now(), error=message)
        log.error("pull_failed", error=message, error_kind=type(exc).__name__, pages=pages)
        return _result(name, stream, run_id, "failed", pages, requests, totals, message)
    result = _result(name, stream, run_id, "succeeded", pages, requests, totals)
    log.info("pull_finished", pages=pages, requests=requests, **totals)
    return result


def _result(
    name: str,
    stream: Stream,
    run_id: str,
    status: str,
    pages: int,
    requests: int,
    totals: dict[str, int],
    error: str | None = None,
) -> PullResult:
    counted = {key: totals[key] for key in COUNTERS}
    return PullResult(
        connection=name,
        stream=stream.value,
        run_id=run_id,
        status=status,
        pages=pages,
        requests=requests,
        error=error,
        **counted,
    )


def sync_connection(
    engine: Engine, settings: ConnectionSettings, connector: Connector, *, clock: Clock
) -> list[PullResult]:
    """Pull every stream of a connection once; a failed stream does not stop the next one."""
    run_id = uuid.uuid4().hex[:12]
    return [
        pull_stream(engine, settings, connector, stream, clock=clock, run_id=run_id)
        for stream in streams_of(connector)
    ]


def _completed(state: StreamState) -> StreamState:
    started = state.pass_started_at
    assert started is not None
    watermark = state.watermark
    if state.pass_high is not None:
        reached = min(state.pass_high, started)
        watermark = reached if watermark is None else max(watermark, reached)
    return StreamState(
        watermark=watermark,
        last_complete_at=started if state.pass_since is None else state.last_complete_at,
    )


def _lookback(settings: ConnectionSettings) -> dt.timedelta:
    return dt.timedelta(seconds=settings.lookback)


def _hasher(connector: Connector) -> Callable[..., str]:
    volatile = getattr(connector, "volatile_keys", None)
    if volatile is None:
        return content_hash
    return lambda record: content_hash(record, volatile)


def _requests_made(connector: Connector) -> int:
    return int(getattr(connector, "requests_made", 0))
