"""``python -m bench``: run the benchmarks, print the table, write the JSON.

    python -m bench [--size full|smoke] [--only NAME] [--store sqlite|postgresql|both]
                    [--pg-url URL] [--source NAME] [--results DIR]

NAME is one of ``backfill``, ``apply``, ``incremental``, ``memory`` (default: all). PostgreSQL is
used when ``--pg-url`` or ``SYNCD_TEST_DATABASE_URL`` is set (each store is a fresh schema,
dropped afterwards); otherwise its rows are skipped with a note.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import apply, backfill, incremental, memory, payments, report
from bench.backfill import sync_pass
from bench.common import PG_ENV, SIZES, STORES, Size, Store, Stores, pg_version, production_logging
from bench.sandbox_host import SandboxProcess
from bench.sources import SOURCES, source

BENCHMARKS = ("backfill", "apply", "incremental", "memory", "payments")

NOTES = (
    "ratio = figure / baseline measured in the same run (for the apply step: naive seconds / "
    "bulk seconds; for peak RSS: large / small)",
    "the sandbox serves from its own process; on a 2-core machine it and the measured sync "
    "share the cores, but a pull waits for each page, so they rarely run at once",
    "backfill and incremental run in this process; each peak-RSS figure in a fresh child process",
)


def run(
    *,
    size: Size,
    only: Sequence[str] = BENCHMARKS,
    stores: Sequence[str] = ("sqlite",),
    pg_url: str | None = None,
    sources: Sequence[str] = tuple(SOURCES),
    workdir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the chosen benchmarks in this process; return the results (JSON-ready)."""
    say = progress or (lambda _message: None)
    production_logging()
    started = time.perf_counter()
    results: dict[str, Any] = {
        "size": asdict(size),
        "benchmarks": list(only),
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": report.machine(pg_version(pg_url)),
        "notes": list(NOTES),
        "skipped": [],
        "sources": {},
    }
    kinds = [kind for kind in stores if kind == "sqlite" or pg_url is not None]
    if len(kinds) < len(stores):
        results["skipped"].append(
            f"postgresql: no database URL (set {PG_ENV} or --pg-url); its rows are not measured"
        )
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as folder:
        work = workdir or Path(folder)
        pool = Stores(work, pg_url)
        for name in sources:
            results["sources"][name] = _source(name, size, only, kinds, pool, work, say)
        if "payments" in only:
            results["payments"] = payments.run(size.name, workdir=work / "payments", say=say)
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


def _source(
    name: str,
    size: Size,
    only: Sequence[str],
    kinds: Sequence[str],
    pool: Stores,
    work: Path,
    say: Callable[[str], None],
) -> dict[str, Any]:
    spec = source(name)
    out: dict[str, Any] = {bench: [] for bench in only}
    say(f"{name}: seeding {size.invoices:,} invoices, {size.customers:,} customers")
    with SandboxProcess(name, customers=size.customers, invoices=size.invoices) as host:
        out["sandbox"] = {"seed_seconds": host.seed_seconds, "expected": host.expected}
        for kind in kinds:
            synced: Store | None = None
            try:
                if "backfill" in only:
                    say(f"{name}/{kind}: backfill x{size.backfill_reps}")
                    figures, synced = backfill.run(host, spec, size, pool, kind, work)
                    out["backfill"].append(figures)
                if "apply" in only:
                    say(f"{name}/{kind}: apply step, bulk vs naive")
                    out["apply"].append(apply.run(host, spec, size, pool, kind, work))
                if "incremental" in only:
                    if synced is None:
                        say(f"{name}/{kind}: full sync for the incremental benchmark (untimed)")
                        synced = pool.fresh(kind)
                        sync_pass(spec, host.snippet, synced, work)
                    say(f"{name}/{kind}: incremental x{size.incremental_reps}")
                    out["incremental"].append(incremental.run(host, spec, size, synced, work))
            finally:
                if synced is not None:
                    synced.close()
        if "memory" in only:
            low, high = size.memory_records
            with _host_of(name, high, host) as large, _host_of(name, low, None) as small:
                for kind in kinds:
                    say(f"{name}/{kind}: peak memory at {low:,} and {high:,} invoices")
                    out["memory"].append(memory.run(small, large, name, pool, kind))
    return out


@contextlib.contextmanager
def _host_of(name: str, invoices: int, running: SandboxProcess | None) -> Iterator[SandboxProcess]:
    """The running backfill sandbox when it has the wanted size, else a new sandbox host."""
    if running is not None and running.invoices == invoices:
        yield running
        return
    with SandboxProcess(name, customers=max(invoices // 10, 1), invoices=invoices) as own:
        yield own


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="syncd pull-engine benchmarks (see bench/README.md)"
    )
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--only", choices=BENCHMARKS, action="append")
    parser.add_argument("--store", choices=(*STORES, "both"), default="both")
    parser.add_argument("--pg-url", default=os.environ.get(PG_ENV))
    parser.add_argument("--source", choices=sorted(SOURCES), action="append")
    parser.add_argument("--results", type=Path, default=report.RESULTS)
    args = parser.parse_args(argv)
    only = tuple(args.only or BENCHMARKS)
    stores = STORES if args.store == "both" else (args.store,)
    results = run(
        size=SIZES[args.size],
        only=only,
        stores=stores,
        pg_url=args.pg_url,
        sources=tuple(args.source or SOURCES),
        progress=lambda message: print(f"... {message}", file=sys.stderr, flush=True),
    )
    results["command"] = "python -m bench " + " ".join(argv or sys.argv[1:])
    name = args.size if len(only) == len(BENCHMARKS) else f"{args.size}-{'-'.join(only)}"
    path = report.write(results, name, args.results)
    print(report.machine_line(results["machine"]))
    print()
    print(report.table(results))
    if "payments" in results:
        print()
        print(payments.table(results["payments"]))
    print()
    for note in [*results["notes"], *results["skipped"]]:
        print(f"note: {note}")
    print(f"{results['seconds']} s; JSON: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
