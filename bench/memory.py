"""Peak memory of a full sync at two sizes: does it stay flat while the source grows tenfold?

The sandbox serves from its own process (``bench.sandbox_host``); each measured sync runs in a
fresh child process (``python -m bench.memory --records N …``) that does nothing but build the
connector, open the store and sync every stream. The child reads its peak resident set size once
after its setup and once at the end, and prints them as JSON. On Linux the peak is ``VmHWM``
from ``/proc/self/status``: ``ru_maxrss`` survives ``execve`` and would report the parent's
size in the child (it is printed too, for reference).
The parent runs the small size and the large one on fresh stores of the same kind and reports
both peaks and their ratio (target: the large within 1.2x of the small).

Run on its own: ``python -m bench.memory --records 100000 --snippet-file F --store-url URL``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.backfill import records_of
from bench.common import (
    Stores,
    child_process,
    connection_of,
    production_logging,
    ratio,
    settings_for,
)
from bench.sandbox_host import SandboxProcess
from bench.sources import source
from syncd.clock import SystemClock
from syncd.store import open_store
from syncd.sync import pull_stream, streams_of
from syncd.sync.factory import build_connector

TARGET_RATIO = 1.2  # peak RSS at the large size within 1.2x of the small size


def _peak_kib() -> int:
    """Peak resident set size of this process, in KiB.

    Linux keeps ``ru_maxrss`` across ``execve``: a child started by a 100 MiB parent reports at
    least 100 MiB whatever it does itself. ``VmHWM`` in ``/proc/self/status`` is the high-water
    mark of this process's own address space, so it is read where it exists.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return _maxrss_kib()


def _maxrss_kib() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux


def main(argv: Sequence[str] | None = None) -> int:
    """The child: sync every stream once and print peak RSS as one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m bench.memory")
    parser.add_argument("--records", type=int, required=True, help="invoices the source holds")
    parser.add_argument("--source", default="connectwise")
    parser.add_argument("--snippet-file", type=Path, required=True)
    parser.add_argument("--store-url", required=True)
    args = parser.parse_args(argv)
    production_logging()
    spec = source(args.source)
    with tempfile.TemporaryDirectory() as workdir:
        settings = settings_for(args.snippet_file.read_text(), spec, Path(workdir))
        engine = open_store(args.store_url)
        try:
            if spec.prepare_store is not None:
                spec.prepare_store(engine, settings, connection_of(settings).name)
            connector = build_connector(settings, connection_of(settings), engine=engine)
            setup_kib = _peak_kib()
            started = time.perf_counter()
            records = 0
            try:
                for stream in streams_of(connector):
                    result = pull_stream(
                        engine, connection_of(settings), connector, stream, clock=SystemClock()
                    )
                    if not result.ok:
                        raise SystemExit(f"{stream.value} failed: {result.error}")
                    records += records_of(result)
            finally:
                connector.close()
            seconds = time.perf_counter() - started
        finally:
            engine.dispose()
    print(
        json.dumps(
            {
                "invoices": args.records,
                "records": records,
                "seconds": seconds,
                "setup_peak_kib": setup_kib,
                "peak_kib": _peak_kib(),
                "ru_maxrss_kib": _maxrss_kib(),
            }
        )
    )
    return 0


def measure(host: SandboxProcess, source_name: str, stores: Stores, kind: str) -> dict[str, Any]:
    """Run one child against ``host`` on a fresh store of ``kind``; its JSON line."""
    url, cleanup = stores.fresh_url(kind)
    try:
        open_store(url).dispose()  # migrate here: the child only syncs
        snippet = stores.workdir / f"snippet-{host.invoices}.toml"
        snippet.write_text(host.snippet)
        command = [
            sys.executable,
            "-m",
            "bench.memory",
            "--records",
            str(host.invoices),
            "--source",
            source_name,
            "--snippet-file",
            str(snippet),
            "--store-url",
            url,
        ]
        child = child_process()
        done = subprocess.run(command, capture_output=True, text=True, check=False, **child)
        if done.returncode != 0:
            raise RuntimeError(f"bench.memory child failed ({done.returncode}): {done.stderr}")
        figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return figures
    finally:
        cleanup()


def run(
    small: SandboxProcess, large: SandboxProcess, source_name: str, stores: Stores, kind: str
) -> dict[str, Any]:
    low = measure(small, source_name, stores, kind)
    high = measure(large, source_name, stores, kind)
    peak_ratio = ratio(high["peak_kib"], low["peak_kib"])
    return {
        "store": kind,
        "small": low,
        "large": high,
        "ratio": peak_ratio,
        "growth_ratio": ratio(
            high["peak_kib"] - high["setup_peak_kib"], low["peak_kib"] - low["setup_peak_kib"]
        ),
        "target_ratio": TARGET_RATIO,
        "met": peak_ratio <= TARGET_RATIO,
    }


if __name__ == "__main__":
    raise SystemExit(main())
