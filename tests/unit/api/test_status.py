"""GET /status is `syncd status --json`: one model, one builder, the same JSON."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import requests
from sqlalchemy.engine import Engine

from syncd.config.models import Settings
from syncd.status import build_status
from syncd.store.state import finish_run, start_run
from syncd.testing import FakeClock

T0 = dt.datetime(2026, 5, 1, 9, tzinfo=dt.UTC)
Serve = Callable[..., str]


def test_status_endpoint_returns_the_cli_payload(
    serve: Serve, store: Engine, clock: FakeClock, make_settings: Callable[..., Settings]
) -> None:
    with store.begin() as tx:
        for connection, stream in (("acme", "invoices"), ("acme", "invoices:sweep"), ("old", "x")):
            row = start_run(tx, f"r-{connection}-{stream}", connection, stream, T0)
            finish_run(tx, row, "succeeded", T0 + dt.timedelta(minutes=1))
    clock.advance(600)
    settings = make_settings()
    url = serve(settings)

    body = requests.get(f"{url}/status", timeout=5).json()
    expected = build_status(store, settings, [], clock.now()).model_dump(mode="json")
    assert body == json.loads(json.dumps(expected))
    assert list(body) == [
        "connections",
        "streams",
        "quarantined",
        "review_items",
        "unapplied_payments",
        "pushes_pending",
        "pushes_dead",
    ]
    streams = {s["stream"]: s for s in body["streams"]}
    assert streams["invoices"]["last_success_at"] == "2026-05-01T09:01:00+00:00"
    assert streams["invoices"]["lag_seconds"] == 540
    # Pulls follow the schedule (15m), sweeps the sweep schedule (1d), from their own start.
    assert streams["invoices"]["next_run"] == "2026-05-01T09:15:00+00:00"
    assert streams["invoices:sweep"]["next_run"] == "2026-05-02T09:00:00+00:00"
    assert streams["x"]["next_run"] is None  # "old" is not configured any more

    only = requests.get(f"{url}/status", params={"connection": "old"}, timeout=5).json()
    assert [s["connection"] for s in only["streams"]] == ["old"]
