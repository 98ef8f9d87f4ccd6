"""Logging: JSON lines off a terminal, and no configured secret in any field of any line."""

from __future__ import annotations

import io
import json

import structlog

from syncd.logs import configure_logging
from syncd.redact import Redactor


def test_json_lines_with_bound_context_and_secrets_masked() -> None:
    out = io.StringIO()
    redactor = Redactor(["s3cr3t-token-value"])
    configure_logging("info", "auto", stream=out, redactor=redactor)
    log = structlog.get_logger("t").bind(connection="cw", run_id="r1")
    log.info(
        "page_fetched",
        url="https://x/?token=s3cr3t-token-value",
        nested={"a": ["s3cr3t-token-value"]},
    )
    log.debug("hidden_at_info_level")
    try:
        raise RuntimeError("boom with s3cr3t-token-value inside")
    except RuntimeError:
        log.exception("failed")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["page_fetched", "failed"]
    assert lines[0]["connection"] == "cw" and lines[0]["run_id"] == "r1"
    assert lines[0]["level"] == "info" and lines[0]["timestamp"].endswith("Z")
    assert "s3cr3t-token-value" not in out.getvalue()
    assert "***" in lines[0]["url"] and lines[0]["nested"] == {"a": ["***"]}
    assert "RuntimeError: boom with *** inside" in lines[1]["exception"]


def test_base64_of_a_secret_is_masked_too() -> None:
    import base64

    out = io.StringIO()
    redactor = Redactor(["company+public:private-key-1"])
    configure_logging("info", "json", stream=out, redactor=redactor)
    header = "Basic " + base64.b64encode(b"company+public:private-key-1").decode()
    structlog.get_logger("t").info("request", authorization=header)
    assert base64.b64encode(b"company+public:private-key-1").decode() not in out.getvalue()


def test_console_format_is_readable() -> None:
    out = io.StringIO()
    configure_logging("info", "console", stream=out, redactor=Redactor())
    structlog.get_logger("t").info("sync_done", connection="cw")
    text = out.getvalue()
    assert "sync_done" in text and "connection" in text and not text.startswith("{")
