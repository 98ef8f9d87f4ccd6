"""The bearer token: who may read /status and use plugged-in (payments) routes, and what is logged.

Logging runs with a redactor that knows no secret, so these tests prove the token is never
written at all rather than masked after the fact.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
from fastapi import APIRouter

from syncd.config.models import Settings
from syncd.logs import configure_logging
from syncd.redact import Redactor

TOKEN = "api-token-0123456789abcdef"
WRONG = "not-the-token-0123456789"
Serve = Callable[..., str]

payments = APIRouter()


@payments.get("/payments/{payment_id}")
def get_payment(payment_id: int) -> dict[str, int]:
    return {"id": payment_id}


@pytest.fixture
def log() -> io.StringIO:
    out = io.StringIO()
    configure_logging("debug", "json", stream=out, redactor=Redactor())
    return out


def events(out: io.StringIO, name: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    return [line for line in lines if line["event"] == name]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def guarded(serve: Serve, make_settings: Callable[..., Settings]) -> str:
    return serve(make_settings(TOKEN), routers=[payments])


def test_status_is_open_without_a_configured_token(serve: Serve) -> None:
    assert requests.get(f"{serve()}/status", timeout=5).status_code == 200


@pytest.mark.parametrize("path", ["/status", "/payments/7"])
def test_missing_and_wrong_tokens_get_401_with_a_challenge(
    guarded: str, path: str, log: io.StringIO
) -> None:
    missing = requests.get(f"{guarded}{path}", timeout=5)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="syncd"'
    basic = requests.get(f"{guarded}{path}", auth=("user", TOKEN), timeout=5)
    assert basic.status_code == 401
    wrong = requests.get(f"{guarded}{path}", headers=bearer(WRONG), timeout=5)
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"] == 'Bearer realm="syncd", error="invalid_token"'
    assert requests.get(f"{guarded}{path}", headers=bearer(TOKEN), timeout=5).status_code == 200

    refusals = events(log, "api_auth_refused")
    assert [r["reason"] for r in refusals] == [
        "no Authorization header",
        "not a Bearer credential",
        "wrong token",
    ]
    assert all(r["method"] == "GET" and r["path"] == path for r in refusals)
    assert all(r["client"] == "127.0.0.1" for r in refusals)
    assert TOKEN not in log.getvalue() and WRONG not in log.getvalue()
    assert base64.b64encode(f"user:{TOKEN}".encode()).decode() not in log.getvalue()


def test_protected_routes_are_off_until_a_token_is_configured(
    serve: Serve, log: io.StringIO
) -> None:
    url = serve(routers=[payments])
    response = requests.get(f"{url}/payments/7", headers=bearer(TOKEN), timeout=5)
    assert response.status_code == 403
    assert "daemon.api_token" in response.json()["detail"]
    assert events(log, "api_auth_refused")[0]["reason"] == "no api_token configured"


def test_monitoring_stays_open_when_a_token_is_configured(guarded: str) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert requests.get(f"{guarded}{path}", timeout=5).status_code == 200, path


def test_every_request_is_one_log_line_without_headers_or_query(
    guarded: str, log: io.StringIO
) -> None:
    requests.get(f"{guarded}/status?connection=acme", headers=bearer(TOKEN), timeout=5)
    requests.get(f"{guarded}/healthz", timeout=5)
    requests.get(f"{guarded}/nowhere", timeout=5)
    lines = events(log, "api_request")
    assert [(e["path"], e["status"], e["level"]) for e in lines] == [
        ("/status", 200, "info"),
        ("/healthz", 200, "debug"),  # probes: debug, so scrapers do not drown the log
        ("/nowhere", 404, "warning"),
    ]
    assert all(e["method"] == "GET" and e["client"] == "127.0.0.1" for e in lines)
    assert all(isinstance(e["duration_ms"], float) for e in lines)
    assert TOKEN not in log.getvalue()


def test_openapi_document_declares_the_bearer_scheme(guarded: str) -> None:
    document = requests.get(f"{guarded}/openapi.json", timeout=5).json()
    assert {"/healthz", "/readyz", "/metrics", "/status", "/payments/{payment_id}"} <= set(
        document["paths"]
    )
    assert document["components"]["securitySchemes"]["apiToken"]["scheme"] == "bearer"
    assert document["paths"]["/status"]["get"]["security"] == [{"apiToken": []}]
