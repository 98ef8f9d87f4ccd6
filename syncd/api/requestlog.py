"""One ``api_request`` log line per request: method, path, status, duration_ms, client.

A pure ASGI middleware rather than uvicorn's access log, so the line goes through structlog (JSON,
redaction) like every other. It logs the path without its query string and no header at all, so
an ``Authorization`` value cannot reach the log. Successful probes (``/healthz``, ``/readyz``,
``/metrics``) log at debug level: a scraper every few seconds would otherwise drown the log.

An exception escaping an endpoint becomes a 500 with a generic body and one ``api_error`` line
(its traceback redacted like any other); it is not re-raised, so uvicorn never prints a raw
traceback to stderr.
"""

from __future__ import annotations

import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROBES = frozenset({"/healthz", "/readyz", "/metrics"})
_log = structlog.get_logger("syncd.api")


class RequestLog:
    """Logs each request just before its last body chunk goes out, so a client that has its
    answer can rely on the line being written (tests and audits do)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        responded = logged = False

        def log_once() -> None:
            nonlocal logged
            if not logged:
                logged = True
                _log_request(scope, status, started)

        async def send_and_log(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status = int(message["status"])
                responded = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                log_once()
            await send(message)

        try:
            await self.app(scope, receive, send_and_log)
        except Exception:
            _log.error("api_error", method=scope["method"], path=scope["path"], exc_info=True)
            if not responded:
                await _internal_error(send_and_log)
        finally:
            log_once()  # a client that went away before the last chunk


def _log_request(scope: Scope, status: int, started: float) -> None:
    client = scope.get("client")
    fields = {
        "method": scope["method"],
        "path": scope["path"],
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        "client": client[0] if client else None,
    }
    if status >= 500:
        _log.error("api_request", **fields)
    elif status >= 400:
        _log.warning("api_request", **fields)
    elif scope["path"] in PROBES:
        _log.debug("api_request", **fields)
    else:
        _log.info("api_request", **fields)


async def _internal_error(send: Send) -> None:
    body = b'{"detail":"internal error; the daemon log has the details"}'
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
