"""Initial backfill: records per second of a full sync against fetch-and-parse of the same pages.

Each repetition syncs every stream of the source into a fresh, migrated store (SQLite file or
PostgreSQL schema) exactly as the daemon does (``pull_stream`` per stream), with an ``HttpTap``
recording each request. The baseline replays those requests with plain ``requests`` + ``json``
(``bench.baselines.fetch_and_parse``). Repetitions alternate the order (sync then baseline, then
baseline then sync, …) so that neither side always runs on a warmer machine, and the reported
figures are medians. The ratio is sync records/s ÷ baseline records/s for the same records, that
is baseline seconds ÷ sync seconds. Before each sync and each baseline the sandbox forgets what
it cached (``Source.cold``), so neither side is served from a cache the other one filled.

The sandbox serves from its own process. Both sides wait for it equally: its time to build a page
is inside both the sync's and the baseline's seconds. On a 2-core machine the sandbox and the sync
do not compete for one core while a page is in flight, because a pull waits for each page.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.baselines import Fetched, fetch_and_parse
from bench.common import (
    HttpTap,
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
from syncd.sync import PullResult, pull_stream, streams_of

TARGET_RATIO = 0.7  # sync throughput at least 0.7x of fetch-and-parse alone


def records_of(result: PullResult) -> int:
    """Source records a pull handled (stored, left unchanged or quarantined)."""
    return (
        result.created
        + result.updated
        + result.unchanged
        + result.voided
        + result.deleted
        + result.quarantined
    )


@dataclass
class Pass:
    """One measured sync of every stream: per stream, what it did and how long it took."""

    results: dict[str, PullResult] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    http_seconds: dict[str, float] = field(default_factory=dict)
    tap: HttpTap = field(default_factory=HttpTap)


def sync_pass(spec: Source, snippet: str, store: Store, workdir: Path) -> Pass:
    """Pull every stream once into ``store``, timing each stream; raises if a pull fails."""
    settings = settings_for(snippet, spec, workdir)
    connector = connector_for(settings, spec, store)
    measured = Pass()
    clock = SystemClock()
    try:
        with measured.tap as tap:
            for stream in streams_of(connector):
                tap.label = stream.value
                started = time.perf_counter()
                result = pull_stream(
                    store.engine, connection_of(settings), connector, stream, clock=clock
                )
                measured.seconds[stream.value] = time.perf_counter() - started
                if not result.ok:
                    raise RuntimeError(f"{spec.connector}/{stream.value} failed: {result.error}")
                measured.results[stream.value] = result
                measured.http_seconds[stream.value] = tap.seconds(stream.value)
    finally:
        connector.close()
    return measured


def run(
    host: SandboxProcess,
    spec: Source,
    size: Size,
    stores: Stores,
    kind: str,
    workdir: Path,
) -> tuple[dict[str, Any], Store]:
    """The backfill figures on one store kind, and the last synced store (for ``incremental``)."""
    passes: list[Pass] = []
    baselines: list[dict[str, Fetched]] = []
    kept: Store | None = None
    try:
        for rep in range(size.backfill_reps):
            first = rep % 2 == 1  # the first repetition needs a sync to know the requests
            if first:
                baselines.append(_baseline(host, passes[-1]))
            store = stores.fresh(kind)
            if kept is not None:
                kept.close()
            kept = store
            host.cold()
            passes.append(sync_pass(spec, host.snippet, store, workdir))
            if not first:
                baselines.append(_baseline(host, passes[-1]))
    except BaseException:
        if kept is not None:
            kept.close()
        raise
    assert kept is not None
    streams = list(passes[0].results)
    per_stream: dict[str, Any] = {}
    for stream in streams:
        per_stream[stream] = _figures(
            [p.results[stream] for p in passes],
            [p.seconds[stream] for p in passes],
            [p.http_seconds[stream] for p in passes],
            [b[stream] for b in baselines],
            [sum(e.nbytes for e in p.tap.of(stream)) for p in passes],
        )
    total = _total(per_stream, passes, baselines)
    return {
        "store": kind,
        "repetitions": size.backfill_reps,
        "streams": per_stream,
        "total": total,
        "target_ratio": TARGET_RATIO,
        "met": total["ratio"] >= TARGET_RATIO,
    }, kept


def break_even_latency(sync_s: float, baseline_s: float, requests: int) -> float:
    """Latency per request (network and vendor server time that loopback does not have) at
    which the ratio would reach the target: with ``L`` added to every request of both sides,
    ratio = (baseline + nL) / (sync + nL), which is ``TARGET_RATIO`` at the ``L`` returned.
    A derived figure from this run's two measurements, not a measurement."""
    if requests <= 0 or baseline_s >= TARGET_RATIO * sync_s:
        return 0.0
    return (TARGET_RATIO * sync_s - baseline_s) / ((1 - TARGET_RATIO) * requests)


def _baseline(host: SandboxProcess, measured: Pass) -> dict[str, Fetched]:
    host.cold()
    return {stream: fetch_and_parse(measured.tap.of(stream)) for stream in measured.results}


def _figures(
    results: list[PullResult],
    seconds: list[float],
    http_seconds: list[float],
    fetched: list[Fetched],
    sync_bytes: list[int],
) -> dict[str, Any]:
    records = records_of(results[0])
    sync_s = median(seconds)
    base_s = median([f.seconds for f in fetched])
    same_pages = all(f.nbytes == sync_bytes[0] for f in fetched) and len(set(sync_bytes)) == 1
    return {
        "records": records,
        "pages": results[0].pages,
        "requests": results[0].requests,
        "bytes": sync_bytes[0],
        "same_pages": same_pages,
        "sync_seconds": sync_s,
        "sync_http_seconds": median(http_seconds),
        "sync_local_seconds": median([s - h for s, h in zip(seconds, http_seconds, strict=True)]),
        "baseline_seconds": base_s,
        "sync_records_per_second": ratio(records, sync_s),
        "baseline_records_per_second": ratio(records, base_s),
        "ratio": ratio(base_s, sync_s),
        "ratios_per_rep": [ratio(f.seconds, s) for f, s in zip(fetched, seconds, strict=True)],
        "sync_seconds_per_rep": seconds,
        "baseline_seconds_per_rep": [f.seconds for f in fetched],
    }


def _total(
    per_stream: dict[str, Any], passes: list[Pass], baselines: list[dict[str, Fetched]]
) -> dict[str, Any]:
    records = sum(int(s["records"]) for s in per_stream.values())
    requests = sum(int(s["requests"]) for s in per_stream.values())
    sync_each = [sum(p.seconds.values()) for p in passes]
    base_each = [sum(f.seconds for f in b.values()) for b in baselines]
    sync_s, base_s = median(sync_each), median(base_each)
    return {
        "records": records,
        "requests": requests,
        "break_even_latency_seconds": break_even_latency(sync_s, base_s, requests),
        "sync_seconds": sync_s,
        "baseline_seconds": base_s,
        "sync_records_per_second": ratio(records, sync_s),
        "baseline_records_per_second": ratio(records, base_s),
        "ratio": ratio(base_s, sync_s),
        "ratios_per_rep": [ratio(b, s) for b, s in zip(base_each, sync_each, strict=True)],
        "same_pages": all(bool(s["same_pages"]) for s in per_stream.values()),
    }


__all__ = ["TARGET_RATIO", "Pass", "break_even_latency", "records_of", "run", "sync_pass"]
