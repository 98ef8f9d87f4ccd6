"""`syncd demo`, the README's first command, works end to end in a real process: both systems
pulled, the shared customers linked, each payment pushed exactly once to both, balances agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SYNCD_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "syncd", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_demo_runs_the_dual_integration(tmp_path: Path) -> None:
    demo = run("demo", cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert "Traceback" not in demo.stderr
    out = demo.stdout
    for stream in ("connectwise/customers", "connectwise/invoices",
                   "quickbooks_online/customers", "quickbooks_online/invoices"):  # fmt: skip
        assert f"demo-{stream}: succeeded" in out
    assert "failed" not in out
    # The six shared customers (and the eight invoices) are linked at least.
    customers = int(out.split(" customer link(s) by exact")[0].rsplit("\n", 1)[-1].strip())
    assert customers >= 6
    assert "6 invoice link(s) by exact" in out or "invoice link(s)" in out
    # Each payment recorded once, pushed once to each system, then seen in every balance; the
    # card payment's fee booked in QuickBooks as a deposit of the gross less the fee.
    assert "already recorded as payment 1, nothing new" in out
    assert "5 done" in out and "a second pass finds nothing to do: nothing due" in out
    assert "card fee of payment 1 booked in quickbooks_online: deposit" in out
    assert "= 500.00 gross - 14.80 fee = 485.20 USD to the bank" in out
    assert out.count(": agrees") == 4 and "DIFFERS" not in out

    config = str(tmp_path / "syncd-demo" / "config.toml")
    listed = json.loads(run("--config", config, "payments", "list", "--json", cwd=tmp_path).stdout)
    assert len(listed) == 2
    assert all(
        push["status"] == "done" and push["external_id"]
        for payment in listed
        for push in payment["pushes"]
    )
    again = run("demo", cwd=tmp_path)  # the demo folder is the demo's own: rerunning is fine
    assert again.returncode == 0, again.stderr
