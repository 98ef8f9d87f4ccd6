"""CLI fixtures: a third-party connector plugin installed the way any package would be."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

PLUGIN_ENTRY_POINTS = """\
[syncd.connectors]
fake = syncd.testing:FakeConnector
broken = syncd_no_such_module:Connector
"""


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    """A folder with a dist-info registering two connectors: one working, one broken."""
    dist = tmp_path / "plugins" / "syncd_test_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: syncd-test-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(PLUGIN_ENTRY_POINTS)
    return dist.parent


@pytest.fixture
def syncd(tmp_path: Path, plugin_dir: Path) -> Callable[..., Result]:
    """Run the real `python -m syncd` in ``tmp_path`` with the plugin on the path."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Result:
        full_env = {**os.environ, "PYTHONPATH": str(plugin_dir), **(env or {})}
        full_env.pop("SYNCD_CONFIG", None)
        done = subprocess.run(
            [sys.executable, "-m", "syncd", *args],
            cwd=tmp_path,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    return run
