"""`syncd run` serves its HTTP app: probes, metrics, status and the OpenAPI document, for real."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import requests

TOKEN = "api-token-0123456789abcdef"
CONFIG = """
[store]
url = "sqlite:///./syncd.db"

[daemon]
startup_jitter = "0s"
stop_timeout = "5s"
listen = "127.0.0.1:0"
api_token_file = "api_token"

[logging]
format = "json"

[connections.acme]
connector = "fake"
schedule = "1h"
token = "tok-123456"
"""


def _pump(stream: IO[str], lines: queue.Queue[str], kept: list[str]) -> None:
    for line in stream:
        kept.append(line)
        lines.put(line)


def _wait_for(lines: queue.Queue[str], event: str, deadline: float) -> dict[str, object]:
    while True:
        line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        if line.startswith("{") and (record := json.loads(line))["event"] == event:
            assert isinstance(record, dict)
            return record


def test_daemon_serves_probes_metrics_status_and_openapi(tmp_path: Path, plugin_dir: Path) -> None:
    (tmp_path / "config.toml").write_text(CONFIG)
    (tmp_path / "api_token").write_text(TOKEN)
    env = {**os.environ, "PYTHONPATH": str(plugin_dir)}
    env.pop("SYNCD_CONFIG", None)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "syncd", "run"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert daemon.stderr is not None
    lines: queue.Queue[str] = queue.Queue()
    kept: list[str] = []
    pump = threading.Thread(target=_pump, args=(daemon.stderr, lines, kept), daemon=True)
    pump.start()
    try:
        deadline = time.monotonic() + 8
        url = str(_wait_for(lines, "api_listening", deadline)["url"])
        assert url.startswith("http://127.0.0.1:")

        assert requests.get(f"{url}/healthz", timeout=5).json() == {"status": "ok"}
        ready = requests.get(f"{url}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        assert ready.json()["scheduler_running"] is True and ready.json()["jobs"] == 2

        runs = 'syncd_sync_runs_total{connection="acme",status="succeeded",stream="invoices"} 1.0'
        metrics = ""
        while runs not in metrics:  # the first pull runs at once (no start-up jitter)
            assert time.monotonic() < deadline, metrics
            metrics = requests.get(f"{url}/metrics", timeout=5).text
            time.sleep(0.05)
        assert 'syncd_sync_lag_seconds{connection="acme",stream="invoices"}' in metrics
        assert "syncd_store_up 1.0" in metrics

        assert requests.get(f"{url}/status", timeout=5).status_code == 401
        wrong = {"Authorization": "Bearer wrong-token-0123456789"}
        assert requests.get(f"{url}/status", headers=wrong, timeout=5).status_code == 401
        status = requests.get(
            f"{url}/status", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
        )
        assert status.status_code == 200
        assert {(s["connection"], s["stream"]) for s in status.json()["streams"]} >= {
            ("acme", "customers"),
            ("acme", "invoices"),
        }
        document = requests.get(f"{url}/openapi.json", timeout=5).json()
        assert {"/healthz", "/readyz", "/metrics", "/status"} <= set(document["paths"])

        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=10) == 0
        pump.join(5)
        err = "".join(kept)
        assert '"event": "daemon_stopped"' in err and '"event": "api_auth_refused"' in err
        assert TOKEN not in err and "wrong-token-0123456789" not in err and "tok-123456" not in err
        assert "Traceback" not in err
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        pump.join(5)
        daemon.stderr.close()
