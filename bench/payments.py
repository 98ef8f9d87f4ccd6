"""Payments throughput: pushing 1,000 payments to the QuickBooks Online sandbox, in batches,
against one POST per payment, both measured in the same run.

    python -m bench.payments [--size full|smoke] [--results DIR]

Each side gets its own sandbox company (a separate realm, so neither spends the other's rate
limits), seeded with one open invoice per payment. The run is the product's own path: a config
file, ``sync_connection`` pulls the invoices into a fresh SQLite store, ``record_payment`` records
one payment per invoice, and ``build_pusher`` pushes them (``run_pass`` until nothing is due).
The sandbox enforces Intuit's documented limits (10 requests a second and 500 a minute per
realm, 40 batch requests a minute), so a client that broke them would meet 429s here. The
baseline is the same pusher with ``batch_size = 1``: one ``POST /payment`` per payment.

Reported per side: requests per payment (every request the push pass sent, look-ups included),
payments per second (push pass wall time), 429 answers (must be 0), and, counted in the sandbox
afterwards, duplicates (an invoice with more than one payment; must be 0) and payments missing.

The sandbox serves from a thread of this process (it is an HTTP server on loopback); the figures
that matter here are set by Intuit's rate limits, which dwarf the sandbox's CPU cost.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from bench import report
from bench.common import production_logging
from connectors.quickbooks_online.sandbox import QuickBooksSandbox
from syncd.clock import SystemClock
from syncd.config import settings_from_tree
from syncd.model import PaymentMethod
from syncd.payments.jobs import build_pusher
from syncd.payments.ledger import NewPayment, Recorded, payment_targets, record_payment
from syncd.payments.pusher import BATCH_SIZE
from syncd.ratelimit import REGISTRY
from syncd.registry import default_registry
from syncd.store import open_store
from syncd.sync import sync_connection
from syncd.sync.factory import build_connector

SIZES: Final = {"full": 1000, "smoke": 40}
CONNECTION: Final = "books"
REALMS: Final = {"batch": "9130000000000001", "baseline": "9130000000000002"}
MAX_PASSES: Final = 10

Say = Callable[[str], None]


def run(
    size: str = "full", *, workdir: Path | None = None, say: Say | None = None
) -> dict[str, Any]:
    """Both sides at ``size`` (``full``: 1,000 payments; ``smoke``: 40); JSON-ready results."""
    count = SIZES[size]
    progress = say or (lambda _message: None)
    production_logging()
    started = time.perf_counter()
    results: dict[str, Any] = {
        "benchmark": "payments",
        "size": size,
        "payments": count,
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": report.machine(None),
        "notes": [
            "batch: the pusher as configured (QuickBooks batch, 30 payments per request); "
            "baseline: the same pusher with batch_size 1 (one POST /payment per payment)",
            "each side has its own sandbox realm, throttled as Intuit documents (10/s, 500/min, "
            "40 batches/min); requests per payment count every request of the push pass",
        ],
    }
    with tempfile.TemporaryDirectory(prefix="syncd-bench-payments-") as folder:
        work = workdir or Path(folder)
        for side, batch_size in (("batch", BATCH_SIZE), ("baseline", 1)):
            progress(f"payments/{side}: {count:,} payments")
            results[side] = _side(side, count, batch_size, work / side)
    batch, baseline = results["batch"], results["baseline"]
    results["ratios"] = {
        "requests_per_payment": _ratio(
            baseline["requests_per_payment"], batch["requests_per_payment"]
        ),
        "payments_per_second": _ratio(
            batch["payments_per_second"], baseline["payments_per_second"]
        ),
    }
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


def _side(side: str, count: int, batch_size: int, folder: Path) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    REGISTRY.clear()  # each side's limiters start empty (and the realms differ anyway)
    with QuickBooksSandbox(
        seed=11, customers=max(count // 20, 1), invoices=0, realm_id=REALMS[side], throttle=True
    ) as qbo:
        active = [c for c in qbo.all_customers() if c["Active"]]
        invoice_ids = [
            str(
                qbo.add_invoice(active[n % len(active)]["Id"], "100.00", DocNumber=_number(n))["Id"]
            )
            for n in range(count)
        ]
        text = (
            f'[store]\nurl = "sqlite:///{folder / "syncd.db"}"\n[logging]\nlevel = "warning"\n'
            f"{qbo.config_snippet(CONNECTION)}receives_payments = true\n"
        )
        (folder / "config.toml").write_text(text, encoding="utf-8")
        settings = settings_from_tree(
            tomllib.loads(text),
            label=str(folder / "config.toml"),
            base_dir=folder,
            env={},
            registry=default_registry(),
            source=folder / "config.toml",
        )
        engine = open_store(settings.store.url)
        try:
            connector = build_connector(
                settings, settings.connection(CONNECTION), clock=SystemClock(), engine=engine
            )
            try:
                synced = sync_connection(
                    engine, settings.connection(CONNECTION), connector, clock=SystemClock()
                )
            finally:
                connector.close()
            assert all(r.ok for r in synced), [r.error for r in synced]
            now = dt.datetime.now(dt.UTC)
            targets = payment_targets(settings)
            for n in range(count):
                done = record_payment(
                    engine,
                    NewPayment(
                        amount=Decimal("25.00"),
                        received_at=now,
                        method=PaymentMethod.CARD,
                        invoice_number=_number(n),
                        reference=f"ch_bench_{side}_{n}",
                    ),
                    targets,
                    now=now,
                )
                assert isinstance(done, Recorded) and done.pushes[0].status == "queued"

            pusher = build_pusher(settings, engine)
            assert pusher is not None
            pusher.batch_size = batch_size
            first = len(qbo.log.entries)
            refused_before = qbo.throttle.refused
            outcomes: Counter[str] = Counter()
            passes = 0
            clock = time.perf_counter()
            for passes in range(1, MAX_PASSES + 1):  # noqa: B007 - reported below
                result = pusher.run_pass()
                outcomes.update(result.counts)
                if not result.counts:
                    break
            seconds = time.perf_counter() - clock
        finally:
            engine.dispose()
        entries = qbo.log.entries[first:]
        routes = Counter(f"{e.method} {e.path.rsplit('/', 1)[-1]}" for e in entries)
        landed = [len(qbo.payments_for_invoice(i)) for i in invoice_ids]
    return {
        "payments": count,
        "batch_size": batch_size,
        "requests": len(entries),
        "requests_by_route": dict(sorted(routes.items())),
        "requests_per_payment": round(len(entries) / count, 4),
        "seconds": round(seconds, 3),
        "payments_per_second": round(count / seconds, 2) if seconds else None,
        "throttled_429": sum(1 for e in entries if e.status == 429)
        + (qbo.throttle.refused - refused_before),
        "duplicates": sum(max(0, n - 1) for n in landed),
        "missing": sum(1 for n in landed if n == 0),
        "outcomes": dict(outcomes),
        "passes": passes,
    }


def _number(n: int) -> str:
    return f"PB-{n:05d}"


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, 2)


def table(results: dict[str, Any]) -> str:
    """The figures, one row each, baseline beside them."""
    batch, baseline, ratios = results["batch"], results["baseline"], results["ratios"]
    rows = [
        ("figure", "batch", "one POST each", "ratio"),
        (
            "requests / payment",
            f"{batch['requests_per_payment']:.3f}",
            f"{baseline['requests_per_payment']:.3f}",
            f"{ratios['requests_per_payment']}x fewer",
        ),
        (
            "payments / second",
            f"{batch['payments_per_second']}",
            f"{baseline['payments_per_second']}",
            f"{ratios['payments_per_second']}x faster",
        ),
        ("429 answers", str(batch["throttled_429"]), str(baseline["throttled_429"]), "must be 0"),
        ("duplicates", str(batch["duplicates"]), str(baseline["duplicates"]), "must be 0"),
        ("missing", str(batch["missing"]), str(baseline["missing"]), "must be 0"),
        ("seconds", str(batch["seconds"]), str(baseline["seconds"]), ""),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.payments",
        description="payments pushed to the QuickBooks Online sandbox: batch vs one POST each",
    )
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--results", type=Path, default=report.RESULTS)
    args = parser.parse_args(argv)
    results = run(args.size, say=lambda m: print(f"... {m}", file=sys.stderr, flush=True))
    args.results.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.results / f"payments-{args.size}-{stamp}.json"
    path.write_text(json.dumps(results, indent=2, sort_keys=True, default=str) + "\n")
    print(report.machine_line(results["machine"]))
    print()
    print(table(results))
    print()
    for note in results["notes"]:
        print(f"note: {note}")
    print(f"{results['seconds']} s; JSON: {path}")
    ok = all(results[s][k] == 0 for s in ("batch", "baseline") for k in ("duplicates", "missing"))
    return 0 if ok and results["batch"]["throttled_429"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
