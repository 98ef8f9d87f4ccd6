"""uvicorn in a background thread of ``syncd run``, on a socket bound before anything starts.

Binding up front (``ApiServer.bind``) makes a busy or forbidden address fail the daemon's start
with a clear message instead of a log line from a thread, and lets ``listen = "…:0"`` pick a free
port (logged as ``api_listening``). The daemon keeps the signal handlers: uvicorn installs none
outside the main thread, and ``stop`` asks it to finish in-flight requests, then forces it.

uvicorn runs with ``log_config=None`` (it must not reconfigure the process's logging), no access
log (``syncd.api.requestlog`` writes one structlog line per request instead), no lifespan and no
websockets; its own warnings go through structlog as ``http_server`` events.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time

import structlog
import uvicorn
from fastapi import FastAPI

from syncd.errors import ConfigError

_log = structlog.get_logger("syncd.api")
STARTUP_TIMEOUT = 10.0


class _ToStructlog(logging.Handler):
    """uvicorn logs through the standard library; forward what it says to structlog."""

    def emit(self, record: logging.LogRecord) -> None:
        level = "error" if record.levelno >= logging.ERROR else "warning"
        getattr(_log, level)(
            "http_server", message=record.getMessage(), exc_info=record.exc_info or None
        )


def _route_uvicorn_logs() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(h, _ToStructlog) for h in logger.handlers):
        logger.addHandler(_ToStructlog(logging.WARNING))
    logger.setLevel(logging.WARNING)
    logger.propagate = False


class ApiServer:
    """One HTTP server on one bound socket: ``bind``, then ``start(app)``, then ``stop()``."""

    def __init__(self, sock: socket.socket) -> None:
        self._socket = sock
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def bind(cls, host: str, port: int) -> ApiServer:
        """Bind ``host:port`` now; raise ``ConfigError`` naming ``daemon.listen`` if we cannot."""
        where = (
            f"daemon.listen {host}:{port}" if ":" not in host else f"daemon.listen [{host}]:{port}"
        )
        try:
            family, kind, proto, _name, address = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )[0]
        except socket.gaierror as exc:
            raise ConfigError(f"{where}: cannot resolve {host!r} ({exc.strerror})") from None
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
            sock.listen(128)
        except OSError as exc:
            sock.close()
            hint = (
                " (another syncd or program uses it: choose another port, or set daemon.http = "
                "false)"
                if exc.errno == errno.EADDRINUSE
                else ""
            )
            raise ConfigError(f"{where}: cannot listen: {exc.strerror}{hint}") from None
        return cls(sock)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._socket.getsockname()[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self, app: FastAPI) -> None:
        """Serve ``app`` from a daemon thread; return once it accepts requests."""
        _route_uvicorn_logs()
        config = uvicorn.Config(
            app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            http="h11",
            loop="asyncio",
            server_header=False,
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [self._socket]}, name="syncd-http", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the HTTP server did not start (see the log)")
            time.sleep(0.01)
        _log.info("api_listening", url=self.url)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish in-flight requests (up to ``timeout``), then stop; closes the socket."""
        server, thread = self._server, self._thread
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(timeout)
            if thread.is_alive():
                server.force_exit = True
                thread.join(1.0)
        self._socket.close()
