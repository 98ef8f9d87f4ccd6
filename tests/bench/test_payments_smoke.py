"""``bench/payments.py`` at smoke size (40 payments a side), so it cannot rot between full runs.

It runs the real thing against the throttled QuickBooks sandbox and checks what must hold at any
size: every payment lands exactly once, no request meets a 429, and the batched side sends far
fewer requests per payment than one POST each. Timings belong to ``python -m bench.payments``.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_payments_benchmark_at_smoke_size(tmp_path: Path) -> None:
    if str(ROOT) not in sys.path:  # ``bench`` is a folder of the repository, not a package
        sys.path.insert(0, str(ROOT))
    bench = importlib.import_module("bench.payments")
    assert bench.main(["--size", "smoke", "--results", str(tmp_path)]) == 0
    [written] = tmp_path.glob("payments-smoke-*.json")
    results = json.loads(written.read_text())
    batch, baseline = results["batch"], results["baseline"]
    for side in (batch, baseline):
        assert side["payments"] == 40 and side["outcomes"] == {"done": 40}
        assert (side["duplicates"], side["missing"], side["throttled_429"]) == (0, 0, 0)
    assert batch["requests_by_route"]["POST batch"] == 2  # 30 + 10
    assert "POST payment" not in batch["requests_by_route"]
    assert baseline["requests_by_route"]["POST payment"] == 40
    assert batch["requests_per_payment"] < baseline["requests_per_payment"] / 5
    assert results["ratios"]["requests_per_payment"] > 5
