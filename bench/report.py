"""Machine details, the printed table, and the JSON written to ``bench/results/``."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import sqlite3
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine(pg_version: str | None) -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg_version,
        "packages": {name: _version(name) for name in _PACKAGES},
        "load_average": _load(),
    }


_PACKAGES = ("sqlalchemy", "pydantic", "pydantic-core", "requests", "psycopg", "jmespath")


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# -- the table -----------------------------------------------------------------------------------


def _num(value: float, unit: str = "") -> str:
    if not math.isfinite(value):
        return "n/a"
    if unit == "rec/s":
        return f"{value:,.0f} rec/s"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "MiB":
        return f"{value:.1f} MiB"
    if unit == "x":
        return f"{value:.2f}x"
    return f"{value:g}{unit}"


def rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    """(benchmark, store, figure, baseline, ratio, target, met) rows of every result."""
    out: list[tuple[str, ...]] = []
    for name, per_source in results["sources"].items():
        for item in per_source.get("backfill", []):
            total = item["total"]
            for stream, fig in item["streams"].items():
                out.append(
                    (
                        f"{name} backfill {stream} ({fig['records']:,})",
                        item["store"],
                        _num(fig["sync_records_per_second"], "rec/s"),
                        _num(fig["baseline_records_per_second"], "rec/s"),
                        _num(fig["ratio"], "x"),
                        "",
                        "",
                    )
                )
            out.append(
                (
                    f"{name} backfill total ({total['records']:,})",
                    item["store"],
                    _num(total["sync_records_per_second"], "rec/s"),
                    _num(total["baseline_records_per_second"], "rec/s"),
                    _num(total["ratio"], "x"),
                    f">= {item['target_ratio']}x",
                    _met(item["met"]),
                )
            )
            if not item["met"]:
                out.append(
                    (
                        f"  (target reached at {total['break_even_latency_seconds'] * 1000:.0f} "
                        f"ms of latency per request, {total['requests']} requests)",
                        item["store"],
                        "",
                        "",
                        "",
                        "",
                        "",
                    )
                )
        for item in per_source.get("apply", []):
            total = item["total"]
            statements = sum(s["engine_statements"] for s in item["streams"].values())
            naive_statements = sum(s["naive_statements"] for s in item["streams"].values())
            out.append(
                (
                    f"{name} apply step, bulk vs naive ({total['records']:,})",
                    item["store"],
                    f"{_num(total['engine_records_per_second'], 'rec/s')}, {statements:,} stmts",
                    f"{_num(total['naive_records_per_second'], 'rec/s')}, "
                    f"{naive_statements:,} stmts",
                    _num(total["ratio"], "x"),
                    "> 1x",
                    _met(total["ratio"] > 1),
                )
            )
        for item in per_source.get("incremental", []):
            for stream, fig in item["streams"].items():
                setup = f", {fig['setup_requests']} setup" if fig["setup_requests"] else ""
                out.append(
                    (
                        f"{name} incremental {stream}: requests",
                        item["store"],
                        f"{fig['requests']} ({fig['pages']} page{'s' if fig['pages'] != 1 else ''}"
                        f"{setup}; {fig['changed']} changed)",
                        "",
                        f"+{fig['extra_requests']} beyond 1st page",
                        f"< +{item['target_extra_requests']}",
                        _met(fig["extra_requests"] < item["target_extra_requests"]),
                    )
                )
            total = item["total"]
            fetch = sum(s["fetch_and_parse_seconds"] for s in item["streams"].values())
            out.append(
                (
                    f"{name} incremental {item['changes']} changes: local time",
                    item["store"],
                    _num(total["local_seconds"], "s"),
                    f"fetch+parse {_num(fetch, 's')}",
                    _num(total["local_seconds"] / fetch if fetch else math.nan, "x"),
                    f"< {item['target_local_seconds']:g} s",
                    _met(item["local_met"]),
                )
            )
        for item in per_source.get("memory", []):
            small, large = item["small"], item["large"]
            out.append(
                (
                    f"{name} peak RSS {large['invoices']:,} vs {small['invoices']:,} invoices",
                    item["store"],
                    _num(large["peak_kib"] / 1024, "MiB"),
                    _num(small["peak_kib"] / 1024, "MiB"),
                    _num(item["ratio"], "x"),
                    f"<= {item['target_ratio']}x",
                    _met(item["met"]),
                )
            )
    return out


def _met(value: bool) -> str:
    return "yes" if value else "NO"


HEADER = ("benchmark", "store", "figure", "baseline (same run)", "ratio", "target", "met")


def table(results: dict[str, Any]) -> str:
    body = rows(results)
    widths = [max(len(r[i]) for r in [HEADER, *body]) for i in range(len(HEADER))]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in [HEADER, tuple("-" * w for w in widths), *body]
    ]
    return "\n".join(lines)


def machine_line(info: dict[str, Any]) -> str:
    pg = info["postgresql"] or "not used"
    load = info["load_average"]
    return (
        f"{info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB; Python "
        f"{info['python']}, SQLite {info['sqlite']}, PostgreSQL {pg}; "
        f"load average at start {load}"
    )


def write(results: dict[str, Any], name: str, folder: Path = RESULTS) -> Path:
    """``<folder>/<name>-<timestamp>.json``, and ``<folder>/latest.json`` for a full-size
    run of every benchmark (the figures the README reports); returns the first path."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(_clean(results), indent=2, sort_keys=True, default=str) + "\n"
    path = folder / f"{name}-{stamp}.json"
    path.write_text(text)
    if name == "full":
        (folder / "latest.json").write_text(text)
    return path


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: a ratio that could not be computed is written as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


__all__ = ["RESULTS", "machine", "machine_line", "rows", "table", "write"]
