"""`syncd demo`, the README's first command, works end to end in a real process."""

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
        timeout=120,
        check=False,
    )


def test_demo_syncs_the_sandboxes_and_a_second_pass_rewrites_nothing(tmp_path: Path) -> None:
    demo = run("demo", cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert "Traceback" not in demo.stderr
    first, second = demo.stdout.split("second sync")
    assert "demo-connectwise/invoices: succeeded: 110 created" in first
    assert "demo-connectwise/customers: succeeded: 40 created" in first
    assert "0 created, 0 updated" in second and "failed" not in second
    assert "40 customers, 110 invoices" in demo.stdout

    config = str(tmp_path / "syncd-demo" / "config.toml")
    status = json.loads(run("--config", config, "status", "--json", cwd=tmp_path).stdout)
    assert {(s["stream"], s["rows"]) for s in status["streams"]} == {
        ("customers", 40),
        ("invoices", 110),
    }
    exported = run("--config", config, "export", "invoices", "--format", "csv", cwd=tmp_path)
    assert len(exported.stdout.splitlines()) == 111

    again = run("demo", cwd=tmp_path)  # the demo folder is the demo's own: rerunning is fine
    assert again.returncode == 0, again.stderr
