"""The server around the app: bound up front, clear errors, no raw tracebacks, a clean stop."""

from __future__ import annotations

import io
import json
import re
import socket
from collections.abc import Callable

import pytest
import requests
from fastapi import APIRouter, FastAPI

from syncd.api import ApiServer
from syncd.config.models import Settings
from syncd.errors import ConfigError
from syncd.logs import configure_logging
from syncd.redact import Redactor

Serve = Callable[..., str]
TOKEN = "api-token-0123456789abcdef"

broken = APIRouter()


@broken.get("/explode")
def explode() -> None:
    raise RuntimeError(f"boom with {TOKEN} inside")


def test_a_busy_address_is_a_config_error_naming_the_key() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"daemon.listen 127.0.0.1:{port}: cannot listen"):
            ApiServer.bind("127.0.0.1", port)


def test_an_unresolvable_host_is_a_config_error() -> None:
    expected = re.escape("daemon.listen no-such-host.invalid:8086: cannot resolve")
    with pytest.raises(ConfigError, match=expected):
        ApiServer.bind("no-such-host.invalid", 8086)


def test_ipv6_loopback_url() -> None:
    try:
        server = ApiServer.bind("::1", 0)
    except ConfigError:
        pytest.skip("no IPv6 loopback on this machine")
    try:
        assert server.url.startswith("http://[::1]:")
    finally:
        server.stop()


def test_an_endpoint_error_is_a_500_and_one_redacted_log_line(
    serve: Serve,
    make_settings: Callable[..., Settings],
    capfd: pytest.CaptureFixture[str],
) -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out, redactor=Redactor([TOKEN]))
    url = serve(make_settings(TOKEN), routers=[broken])
    response = requests.get(
        f"{url}/explode", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    )
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error; the daemon log has the details"}
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    error = next(line for line in lines if line["event"] == "api_error")
    assert "RuntimeError: boom with *** inside" in error["exception"]
    assert [line["status"] for line in lines if line["event"] == "api_request"] == [500]
    assert TOKEN not in out.getvalue()
    captured = capfd.readouterr()
    assert "Traceback" not in captured.out + captured.err


def test_stop_finishes_serving_and_frees_the_port() -> None:
    app = FastAPI()

    @app.get("/ping")
    def ping() -> str:
        return "pong"

    server = ApiServer.bind("127.0.0.1", 0)
    server.start(app)
    url, port = server.url, server.address[1]
    assert requests.get(f"{url}/ping", timeout=5).json() == "pong"
    server.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/ping", timeout=5)
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))
