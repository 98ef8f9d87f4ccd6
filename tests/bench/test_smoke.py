"""Each benchmark of ``bench/`` at smoke size, so that none of them can rot between full runs.

These run the real thing (``python -m bench --size smoke --only NAME``, in-process, sandboxes and
memory children in their own processes) and check that it completes with sane, finite figures.
They assert no timing threshold: timings belong to ``python -m bench`` and its ratios.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PG_ENV = "SYNCD_TEST_DATABASE_URL"


@pytest.fixture(scope="module")
def bench_main() -> ModuleType:
    # ``bench`` is a folder of the repository, not an installed package: make it importable
    # however pytest was started (``python -m pytest`` puts the working folder on the path,
    # ``.venv/bin/pytest`` does not).
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("bench.__main__")


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _run(bench_main: ModuleType, name: str, tmp_path: Path) -> dict[str, Any]:
    store = "both" if os.environ.get(PG_ENV) else "sqlite"
    folder = tmp_path / "results"
    code = bench_main.main(
        ["--size", "smoke", "--only", name, "--store", store, "--results", str(folder)]
    )
    assert code == 0
    written = sorted(p.name for p in folder.iterdir())
    assert "latest.json" not in written  # only a full run of every benchmark is "latest"
    [result_file] = [p for p in written if p.startswith(f"smoke-{name}-")]

    def no_constants(token: str) -> float:
        raise AssertionError(f"the JSON holds {token}, which JSON does not allow")

    results: dict[str, Any] = json.loads(
        (folder / result_file).read_text(), parse_constant=no_constants
    )
    assert results["machine"]["cores"] >= 1
    assert results["machine"]["sqlite"]
    figures: dict[str, Any] = results["sources"]["connectwise"]
    assert len(figures[name]) == (2 if store == "both" else 1)
    return figures


@pytest.mark.parametrize("name", ["backfill", "apply", "incremental", "memory"])
def test_benchmark_completes_with_sane_ratios(
    bench_main: ModuleType, name: str, tmp_path: Path
) -> None:
    figures = _run(bench_main, name, tmp_path)
    expected = figures["sandbox"]["expected"]
    for item in figures[name]:
        CHECKS[name](item, expected)


def _backfill(item: dict[str, Any], expected: dict[str, int]) -> None:
    for stream, fig in item["streams"].items():
        assert fig["records"] == expected[stream]
        assert fig["same_pages"], "the baseline did not fetch the pages the sync fetched"
        for key in ("sync_seconds", "baseline_seconds", "sync_http_seconds"):
            assert _finite(fig[key]) and fig[key] > 0
        assert 0 < fig["ratio"] < 50
    assert 0 < item["total"]["ratio"] < 50
    assert isinstance(item["met"], bool)


def _apply(item: dict[str, Any], expected: dict[str, int]) -> None:
    for stream, fig in item["streams"].items():
        assert fig["records"] == expected[stream]
        assert fig["same_rows"], "the naive store and the real one disagree on the row count"
        assert fig["engine_statements"] < fig["naive_statements"]
        assert _finite(fig["engine_seconds"]) and fig["engine_seconds"] > 0
    assert 0 < item["total"]["ratio"] < 1000


def _incremental(item: dict[str, Any], expected: dict[str, int]) -> None:
    assert item["total"]["changed"] == item["changes"] > 0
    for fig in item["streams"].values():
        assert fig["requests"] >= 1
        assert fig["extra_requests"] >= 0
        assert _finite(fig["local_seconds"])
        assert 0 <= fig["local_seconds"] <= fig["wall_seconds"]
    assert _finite(item["total"]["local_seconds"]) and item["total"]["local_seconds"] > 0


def _memory(item: dict[str, Any], expected: dict[str, int]) -> None:
    small, large = item["small"], item["large"]
    assert small["invoices"] < large["invoices"]
    assert small["records"] < large["records"]
    for run in (small, large):
        assert run["setup_peak_kib"] > 0
        assert run["peak_kib"] >= run["setup_peak_kib"]
    assert 0.5 < item["ratio"] < 5


CHECKS = {
    "backfill": _backfill,
    "apply": _apply,
    "incremental": _incremental,
    "memory": _memory,
}
