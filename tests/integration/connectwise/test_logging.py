"""Every log line of a sync, the HTTP client's included, names the connection and the run; no
line carries the private key, even as part of a Basic auth header."""

from __future__ import annotations

import base64
import io
import json
import tomllib
from pathlib import Path

from connectors.connectwise.sandbox import ConnectWiseSandbox
from syncd.config import settings_from_tree
from syncd.logs import configure_logging
from syncd.redact import REDACTOR
from syncd.registry import default_registry
from syncd.store import open_store
from syncd.sync import sync_connection
from syncd.sync.factory import build_connector
from syncd.testing import FakeClock


def test_sync_log_lines_carry_connection_and_run_id(tmp_path: Path) -> None:
    out = io.StringIO()
    with ConnectWiseSandbox(seed=2, companies=5, invoices=8) as sandbox:
        settings = settings_from_tree(
            tomllib.loads(sandbox.config_snippet("psa")),
            label="test",
            base_dir=tmp_path,
            env={},
            registry=default_registry(),
        )
        REDACTOR.add(*settings.secrets)
        configure_logging("debug", "json", stream=out)
        engine = open_store(f"sqlite:///{tmp_path / 'syncd.db'}")
        connector = build_connector(settings, settings.connection("psa"), clock=FakeClock())
        try:
            results = sync_connection(
                engine, settings.connection("psa"), connector, clock=FakeClock()
            )
        finally:
            connector.close()
            engine.dispose()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    http = [line for line in lines if line["event"] == "http_request"]
    assert http, "the HTTP client logged nothing"
    run_ids = {r.run_id for r in results}
    for line in [*http, *(x for x in lines if x["event"].startswith("pull_"))]:
        assert line["connection"] == "psa"
        assert line["run_id"] in run_ids
    text = out.getvalue()
    assert sandbox.private_key not in text
    basic = f"{sandbox.company_id}+{sandbox.public_key}:{sandbox.private_key}"
    assert base64.b64encode(basic.encode()).decode() not in text
