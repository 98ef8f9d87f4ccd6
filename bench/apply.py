"""The apply step alone: syncd's bulk statements against a naive one-row-per-statement store.

A pass-through connector hands each page of a real pull to the engine (``pull_stream`` into
store A) and, just before, to ``NaiveStore`` (store B, same kind, same tables). The time spent in
the upstream generator (fetching and mapping the page, and the naive apply) is taken out of the
engine's wall time, which leaves the engine's own per-page work: ``load_stored``, ``plan_page``
(hashing), ``apply_plan``, the cursor and run bookkeeping, and the commit. Both stores see the
same pages in the same order, so the ratio is naive seconds ÷ engine seconds (how many times
faster the bulk path is). Statements sent to each database are counted with a SQLAlchemy
``before_cursor_execute`` listener (an ``executemany`` counts once).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, cast

from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine

from bench.backfill import records_of
from bench.baselines import NaiveStore
from bench.common import (
    CONNECTION,
    Size,
    Store,
    Stores,
    connection_of,
    connector_for,
    median,
    ratio,
    settings_for,
)
from bench.sandbox_host import SandboxProcess
from bench.sources import Source
from syncd.clock import SystemClock
from syncd.connector import Connector, Cursor, Page, Stream
from syncd.store.records import table_for
from syncd.sync import pull_stream, streams_of


class _Probe:
    """Wraps a connector: times its ``pull`` generator and feeds each page to the naive store."""

    name: ClassVar[str] = "bench-probe"

    def __init__(self, inner: Connector, naive: NaiveStore) -> None:
        self.inner = inner
        self.naive = naive
        self.capabilities = inner.capabilities
        self.volatile_keys = getattr(inner, "volatile_keys", None)
        self.upstream = 0.0  # seconds inside the wrapped generator and the naive store

    @property
    def requests_made(self) -> int:
        return int(getattr(self.inner, "requests_made", 0))

    def pull(self, stream: Stream, cursor: Cursor) -> Iterator[Page]:
        pages = self.inner.pull(stream, cursor)
        while True:
            started = time.perf_counter()
            try:
                page = next(pages)
            except StopIteration:
                self.upstream += time.perf_counter() - started
                return
            self.naive.apply(stream, page, dt.datetime.now(dt.UTC))
            self.upstream += time.perf_counter() - started
            yield page


class _Statements:
    """Counts statements sent through an engine."""

    def __init__(self, engine: Engine) -> None:
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: Any) -> None:
        self.count += 1


def run(
    host: SandboxProcess, spec: Source, size: Size, stores: Stores, kind: str, workdir: Path
) -> dict[str, Any]:
    reps: list[dict[str, dict[str, float]]] = []
    for _ in range(size.apply_reps):
        reps.append(_once(host, spec, stores, kind, workdir))
    streams = list(reps[0])
    out: dict[str, Any] = {"store": kind, "repetitions": size.apply_reps, "streams": {}}
    for stream in streams:
        engine_s = median([r[stream]["engine_seconds"] for r in reps])
        naive_s = median([r[stream]["naive_seconds"] for r in reps])
        first = reps[0][stream]
        out["streams"][stream] = {
            "records": int(first["records"]),
            "pages": int(first["pages"]),
            "engine_seconds": engine_s,
            "naive_seconds": naive_s,
            "engine_records_per_second": ratio(first["records"], engine_s),
            "naive_records_per_second": ratio(first["records"], naive_s),
            "engine_statements": int(first["engine_statements"]),
            "naive_statements": int(first["naive_statements"]),
            "ratio": ratio(naive_s, engine_s),
            "same_rows": bool(first["same_rows"]),
        }
    engine_total = sum(s["engine_seconds"] for s in out["streams"].values())
    naive_total = sum(s["naive_seconds"] for s in out["streams"].values())
    records = sum(s["records"] for s in out["streams"].values())
    out["total"] = {
        "records": records,
        "engine_seconds": engine_total,
        "naive_seconds": naive_total,
        "engine_records_per_second": ratio(records, engine_total),
        "naive_records_per_second": ratio(records, naive_total),
        "ratio": ratio(naive_total, engine_total),
        "same_rows": all(s["same_rows"] for s in out["streams"].values()),
    }
    return out


def _once(
    host: SandboxProcess, spec: Source, stores: Stores, kind: str, workdir: Path
) -> dict[str, dict[str, float]]:
    real, naive_store = stores.fresh(kind), stores.fresh(kind)
    try:
        settings = settings_for(host.snippet, spec, workdir)
        connector = connector_for(settings, spec, real)
        counted_real, counted_naive = _Statements(real.engine), _Statements(naive_store.engine)
        volatile = getattr(connector, "volatile_keys", None)
        naive = NaiveStore(naive_store.engine, CONNECTION, volatile)
        probe = _Probe(connector, naive)
        figures: dict[str, dict[str, float]] = {}
        try:
            for stream in streams_of(connector):
                before = (probe.upstream, naive.seconds, counted_real.count, counted_naive.count)
                started = time.perf_counter()
                result = pull_stream(
                    real.engine,
                    connection_of(settings),
                    cast(Connector, probe),
                    stream,
                    clock=SystemClock(),
                )
                wall = time.perf_counter() - started
                if not result.ok:
                    raise RuntimeError(f"{spec.connector}/{stream.value} failed: {result.error}")
                figures[stream.value] = {
                    "records": records_of(result),
                    "pages": result.pages,
                    "engine_seconds": wall - (probe.upstream - before[0]),
                    "naive_seconds": naive.seconds - before[1],
                    "engine_statements": counted_real.count - before[2],
                    "naive_statements": counted_naive.count - before[3],
                    "same_rows": float(_rows(real, stream) == _rows(naive_store, stream)),
                }
        finally:
            connector.close()
        return figures
    finally:
        real.close()
        naive_store.close()


def _rows(store: Store, stream: Stream) -> int:
    table = table_for(stream)
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


__all__ = ["run"]
