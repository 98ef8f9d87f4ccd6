"""A loopback HTTP server in a background thread, with a router, a request log and faults.

Built on the standard library's ``ThreadingHTTPServer`` (HTTP/1.1, keep-alive), bound to
``127.0.0.1`` on a free port. ``stop()`` stops accepting, shuts down every open connection so that
handler threads blocked on keep-alive reads return, joins them, and closes the listening socket:
nothing is left for the garbage collector to warn about.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from syncd.sandbox.faults import Fault, FaultInjector, FaultRule
from syncd.sandbox.routing import HTTPError, Match, Request, Response, Router, not_found

MASKED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})


def mask_header(name: str, value: str) -> str:
    """``Authorization: Basic abc`` → ``Basic ***``; other secret headers → ``***``."""
    if name.lower() not in MASKED_HEADERS:
        return value
    scheme, sep, _ = value.partition(" ")
    return f"{scheme} ***" if sep else "***"


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the server saw it. ``status`` is None when no response was sent (dropped)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int | None
    route: str | None = None
    fault: Fault | None = None
    at: float = field(default=0.0, compare=False)


class RequestLog:
    """Thread-safe record of every request a server answered (or refused to answer)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[LoggedRequest] = []

    def append(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._entries.append(entry)

    @property
    def entries(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def find(
        self, method: str | None = None, path: str | None = None, status: int | None = None
    ) -> list[LoggedRequest]:
        """Entries filtered by method, path suffix and status."""
        return [
            e
            for e in self.entries
            if (method is None or e.method == method.upper())
            and (path is None or e.path.endswith(path))
            and (status is None or e.status == status)
        ]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __iter__(self) -> Iterator[LoggedRequest]:
        return iter(self.entries)


FaultResponder = Callable[[Fault, Request, FaultRule], Response]
PageCallback = Callable[[Request, Any], None]


def default_fault_response(kind: Fault, request: Request, rule: FaultRule) -> Response:
    """Generic bodies; a vendor sandbox overrides this with the vendor's own."""
    if kind is Fault.RATE_LIMIT:
        return Response.json_body(
            {"message": rule.message or "Too Many Requests"},
            429,
            {"Retry-After": format_seconds(rule.retry_after), **rule.headers},
        )
    if kind is Fault.EXPIRED_TOKEN:
        return Response.json_body(
            {"error": "invalid_token", "message": rule.message or "token expired"},
            401,
            {"WWW-Authenticate": 'Bearer error="invalid_token"', **rule.headers},
        )
    return Response.json_body(
        {"message": rule.message or "Internal Server Error"}, rule.status, rule.headers
    )


def format_seconds(seconds: float) -> str:
    """``Retry-After`` value: an integer when whole (``"2"``), else a decimal (``"0.5"``)."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: SandboxServer) -> None:
        self.owner = owner
        self._conn_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._handler_threads: set[threading.Thread] = set()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection, args=(request, client_address), daemon=True
        )
        with self._conn_lock:
            self._connections.add(request)
            self._handler_threads.add(thread)
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: S110 - a broken client connection must not kill the server
            pass
        finally:
            with self._conn_lock:
                self._connections.discard(request)
            self.shutdown_request(request)
            with self._conn_lock:
                self._handler_threads.discard(threading.current_thread())

    def close_connections(self, timeout: float = 5.0) -> None:
        with self._conn_lock:
            connections = list(self._connections)
            threads = list(self._handler_threads)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms stalls
    server: _HTTPServer
    server_version = "syncd-sandbox"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log (the server keeps its own request log)."""

    def _dispatch(self) -> None:
        self.server.owner.handle(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch


class SandboxServer:
    """A router served on loopback. ``with SandboxServer() as s: requests.get(s.base_url + …)``.

    Hooks a vendor sandbox sets: ``fault_responder`` (vendor bodies for 429/5xx/401 faults),
    ``faults.churn_hook`` (mutate records for ``Fault.CHURN``) and ``on_page_served`` callbacks,
    which the sandbox triggers through ``page_served`` after building each list page, so that a
    test can change records between page requests.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, router: Router | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.router = router or Router()
        self.faults = FaultInjector()
        self.log = RequestLog()
        self.fault_responder: FaultResponder = default_fault_response
        self.errors: list[str] = []  # tracebacks of handler crashes (tests assert it stays empty)
        self._page_callbacks: list[PageCallback] = []
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        with self._lock:
            if self._httpd is not None:
                return self
            self._stopping.clear()
            httpd = _HTTPServer((self.host, self.port), self)
            thread = threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"sandbox-{httpd.server_address[1]}",
                daemon=True,
            )
            self._httpd, self._thread = httpd, thread
            thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and the listening socket. Safe to call twice."""
        with self._lock:
            httpd, thread = self._httpd, self._thread
            self._httpd = self._thread = None
        if httpd is None:
            return
        self._stopping.set()  # wakes handlers sleeping in a SLOW fault
        httpd.shutdown()
        if thread is not None:
            thread.join(5.0)
        httpd.close_connections()
        httpd.server_close()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def base_url(self) -> str:
        httpd = self._httpd
        if httpd is None:
            raise RuntimeError("the sandbox server is not running: call start() first")
        host, port = httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- page hooks --------------------------------------------------------------------------

    def on_page_served(self, callback: PageCallback) -> PageCallback:
        """Register ``callback(request, page_info)``; usable as a decorator."""
        self._page_callbacks.append(callback)
        return callback

    def clear_page_callbacks(self) -> None:
        self._page_callbacks.clear()

    def page_served(self, request: Request, info: Any) -> None:
        """Called by a sandbox after it has built a list page and before it is sent."""
        for callback in list(self._page_callbacks):
            callback(request, info)

    # -- request handling ---------------------------------------------------------------------

    def handle(self, h: _Handler) -> None:
        split = urlsplit(h.path)
        query_all = parse_qs(split.query, keep_blank_values=True)
        headers = {k.lower(): v for k, v in h.headers.items()}
        try:
            length = int(headers.get("content-length", "0") or 0)
        except ValueError:
            length = 0
        body = h.rfile.read(length) if length > 0 else b""
        request = Request(
            method=h.command.upper(),
            path=split.path,
            query={k: v[0] for k, v in query_all.items()},
            query_all=query_all,
            headers=headers,
            body=body,
            base_url=self.base_url if self._httpd is not None else "",
            raw_query=split.query,
        )
        match = self.router.match(request.method, request.path)
        if match is not None:
            request.params = match.params
        pattern = match.route.pattern if match else None
        rule = self.faults.pick(request.method, request.path, pattern)
        kind = rule.kind if rule else None

        def record(status: int | None) -> None:
            # Logged before the response leaves, so a client that has its answer finds it logged.
            self.log.append(
                LoggedRequest(
                    method=request.method,
                    path=request.path,
                    query=dict(request.query),
                    headers={k: mask_header(k, v) for k, v in headers.items()},
                    status=status,
                    route=match.route.key if match else None,
                    fault=kind,
                    at=time.time(),
                )
            )

        if kind is Fault.DROP or (
            rule is not None and kind is Fault.SLOW and self._stopping.wait(rule.delay)
        ):
            record(None)
            h.close_connection = True
            return
        try:
            if kind is Fault.CHURN and self.faults.churn_hook:
                try:
                    self.faults.churn_hook(request)
                except Exception:
                    self.errors.append(traceback.format_exc())
            if rule is not None and kind in (
                Fault.RATE_LIMIT,
                Fault.SERVER_ERROR,
                Fault.EXPIRED_TOKEN,
            ):
                response = self.fault_responder(rule.kind, request, rule)
            else:
                response = self._respond(request, match)
        except BaseException:
            record(None)
            raise
        record(response.status)
        self._write(h, request, response, truncate=kind is Fault.TRUNCATE)

    def _respond(self, request: Request, match: Match | None) -> Response:
        if match is None:
            allowed = self.router.allowed(request.path)
            if allowed:
                return Response.json_body(
                    {"code": "MethodNotAllowed", "message": f"{request.method} not allowed"},
                    405,
                    {"Allow": ", ".join(allowed)},
                )
            return not_found(request)
        try:
            return match.route.handler(request)
        except HTTPError as exc:
            return exc.response
        except Exception as exc:
            self.errors.append(traceback.format_exc())
            return Response.json_body(
                {"code": "SandboxError", "message": f"{type(exc).__name__}: {exc}"}, 500
            )

    def _write(self, h: _Handler, request: Request, response: Response, *, truncate: bool) -> None:
        body = response.body
        try:
            h.send_response(response.status)
            has_length = False
            for name, value in response.headers.items():
                if name.lower() == "content-length":
                    has_length = True
                h.send_header(name, value)
            if not has_length:
                h.send_header("Content-Length", str(len(body)))
            if truncate:
                h.send_header("Connection", "close")
            h.end_headers()
            if request.method != "HEAD":
                h.wfile.write(body[: len(body) // 2] if truncate else body)
            h.wfile.flush()
        except OSError:
            h.close_connection = True  # the client went away (timed out, reset)
        if truncate:
            h.close_connection = True


__all__ = [
    "MASKED_HEADERS",
    "FaultResponder",
    "LoggedRequest",
    "PageCallback",
    "RequestLog",
    "SandboxServer",
    "default_fault_response",
    "format_seconds",
    "mask_header",
]
