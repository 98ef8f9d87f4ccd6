"""`syncd run` as ops meet it: one daemon per SQLite store, a clean exit on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

CONFIG = """
[store]
url = "sqlite:///./syncd.db"

[daemon]
startup_jitter = "0s"
stop_timeout = "5s"
listen = "127.0.0.1:0"  # any free port: 8086 may be taken on this machine

[logging]
format = "json"

[connections.acme]
connector = "fake"
schedule = "1h"
token = "tok-123456"
"""


def test_second_daemon_is_refused_and_sigterm_exits_cleanly(
    tmp_path: Path, plugin_dir: Path
) -> None:
    (tmp_path / "config.toml").write_text(CONFIG)
    env = {**os.environ, "PYTHONPATH": str(plugin_dir)}
    env.pop("SYNCD_CONFIG", None)
    first = subprocess.Popen(
        [sys.executable, "-m", "syncd", "run"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while (
            not (tmp_path / "syncd.db.lock").exists()
            or b"pid" not in (tmp_path / "syncd.db.lock").read_bytes()
        ):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the daemon did not start"
            time.sleep(0.1)
        second = subprocess.run(
            [sys.executable, "-m", "syncd", "run"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == 1
        assert f"another syncd (pid {first.pid}, syncd run)" in second.stderr
        assert "Traceback" not in second.stderr
        time.sleep(0.5)  # let the first daemon log its start
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=30)
        assert first.returncode == 0, err
        assert '"event": "daemon_stopping"' in err and '"event": "daemon_stopped"' in err
        assert "tok-123456" not in err
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
