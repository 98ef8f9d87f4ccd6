"""Incremental pull: 100 changed invoices in a store that already holds the whole source.

Starting point: a store after a full backfill (the backfill benchmark's last store, or one synced
here untimed). Each repetition:

1. the sandbox host changes ``changes`` invoices (a different set each round; the vendor bumps
   their updated-at);
2. a fresh connector pulls every stream from the stored cursors (watermark minus the
   connection's default look-back), exactly as a scheduled job would;
3. requests per stream are counted by the engine (``PullResult.requests``, every HTTP attempt);
   "beyond the first page" leaves out the connector's one-off setup requests (``Source.
   setup_requests``: ConnectWise's codebase discovery, made once per connector instance and
   counted by the engine in the first stream pulled), which are reported on their own;
   local time is the pulls' wall time (``pull_stream`` of each stream, connector already built)
   minus the time spent inside ``requests.Session.send`` (the sandbox filtering 100,000 rows and
   sending the answer, as a vendor's server would), so it is the time syncd itself spends:
   parsing, mapping, hashing, the store and the bookkeeping;
4. then the sandbox puts the changed invoices back as they were and the bench puts the stream
   cursors back where the backfill left them, so every repetition is the same pull: exactly
   ``changes`` changes since the last sync. (Without this, a watermark is inclusive: round *n*
   would also re-read round *n-1*'s invoices, stamped at the watermark.)

A fetch-and-parse of the same requests is measured after each pull, for scale. Before each, the
sandbox forgets its cached condition matches (``Source.cold``), so both filter the full table.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.backfill import Pass, records_of, sync_pass
from bench.baselines import fetch_and_parse
from bench.common import CONNECTION, Size, Store, median
from bench.sandbox_host import SandboxProcess
from bench.sources import Source
from syncd.store.state import StreamState, load_state, save_state

TARGET_EXTRA_REQUESTS = 2  # under 2 requests per stream beyond the first page
TARGET_LOCAL_SECONDS = 1.0  # "well under a second" of local work


def run(
    host: SandboxProcess, spec: Source, size: Size, store: Store, workdir: Path
) -> dict[str, Any]:
    """Figures on ``store``, which must hold a completed full sync of ``host``'s data."""
    cursors = _cursors(store)
    rounds: list[dict[str, Any]] = []
    for round_no in range(1, size.incremental_reps + 1):
        host.change_invoices(size.changes, round_no)
        try:
            host.cold()
            measured = sync_pass(spec, host.snippet, store, workdir)
            host.cold()
            fetched = {
                stream: fetch_and_parse(measured.tap.of(stream)).seconds
                for stream in measured.results
            }
        finally:
            host.revert()
            _restore(store, cursors)
        rounds.append(_round(spec, measured, fetched))
    streams: dict[str, Any] = {}
    for stream in rounds[0]["streams"]:
        each = [r["streams"][stream] for r in rounds]
        streams[stream] = {
            key: each[0][key]
            for key in ("records", "changed", "pages", "requests", "setup_requests", "paths")
        } | {
            "extra_requests": max(e["extra_requests"] for e in each),
            "wall_seconds": median([e["wall_seconds"] for e in each]),
            "http_seconds": median([e["http_seconds"] for e in each]),
            "local_seconds": median([e["local_seconds"] for e in each]),
            "fetch_and_parse_seconds": median([e["fetch_and_parse_seconds"] for e in each]),
            "requests_per_round": [e["requests"] for e in each],
        }
    local = median([r["local_seconds"] for r in rounds])
    worst_extra = max(s["extra_requests"] for s in streams.values())
    changed = sum(int(s["changed"]) for s in streams.values())
    requests_met = worst_extra < TARGET_EXTRA_REQUESTS
    local_met = local < TARGET_LOCAL_SECONDS
    return {
        "store": store.kind,
        "changes": size.changes,
        "repetitions": size.incremental_reps,
        "streams": streams,
        "total": {
            "changed": changed,
            "requests": sum(int(s["requests"]) for s in streams.values()),
            "wall_seconds": median([r["wall_seconds"] for r in rounds]),
            "local_seconds": local,
            "local_seconds_per_round": [r["local_seconds"] for r in rounds],
        },
        "target_extra_requests": TARGET_EXTRA_REQUESTS,
        "target_local_seconds": TARGET_LOCAL_SECONDS,
        "requests_met": requests_met,
        "local_met": local_met,
        "met": requests_met and local_met and changed == size.changes,
    }


def _round(spec: Source, measured: Pass, fetched: dict[str, float]) -> dict[str, Any]:
    streams = {}
    for stream, result in measured.results.items():
        seconds = measured.seconds[stream]
        http = measured.http_seconds[stream]
        paths = [urlsplit(e.url).path for e in measured.tap.of(stream)]
        setup = sum(1 for p in paths if any(f in p for f in spec.setup_requests))
        streams[stream] = {
            "records": records_of(result),
            "changed": result.created + result.updated + result.voided + result.deleted,
            "pages": result.pages,
            "requests": result.requests,
            "setup_requests": setup,
            # Beyond the first page: further pages and per-page look-ups, not the connector's
            # one-off setup (which the engine counts in whichever stream comes first).
            "extra_requests": max(result.requests - setup - 1, 0),
            "paths": sorted(set(paths)),
            "wall_seconds": seconds,
            "http_seconds": http,
            "local_seconds": seconds - http,
            "fetch_and_parse_seconds": fetched[stream],
        }
    wall = sum(measured.seconds.values())
    http = sum(measured.http_seconds.values())
    return {"streams": streams, "wall_seconds": wall, "local_seconds": wall - http}


def _cursors(store: Store) -> dict[str, StreamState]:
    with store.engine.connect() as conn:
        return {
            stream: load_state(conn, CONNECTION, stream) for stream in ("customers", "invoices")
        }


def _restore(store: Store, cursors: dict[str, StreamState]) -> None:
    now = dt.datetime.now(dt.UTC)
    with store.engine.begin() as conn:
        for stream, state in cursors.items():
            save_state(conn, CONNECTION, stream, state, now)


__all__ = ["TARGET_EXTRA_REQUESTS", "TARGET_LOCAL_SECONDS", "run"]
