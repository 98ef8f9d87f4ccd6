"""The sandbox kit: what every vendor emulator is built from.

A vendor emulator subclasses ``Sandbox``: it registers its routes on ``self.router`` in its
constructor, seeds its data from ``seed``, answers faults in the vendor's own words
(``fault_response``), says how records change under a client (``churn``), and tells syncd how to
reach it (``config_snippet``)::

    with ConnectWiseSandbox(seed=1) as cw:
        cw.faults.inject(Fault.RATE_LIMIT, route="GET /company/companies", times=2, retry_after=1)
        requests.get(cw.base_url + "/login/companyinfo/sandbox")

Under it: ``SandboxServer`` (loopback HTTP in a daemon thread), ``Router``/``Request``/``Response``,
``FaultInjector`` (queued or seeded-random faults, counted per kind), ``RequestLog`` (thread-safe,
``Authorization`` masked) and ``SeededData`` (deterministic names, money and instants).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from types import TracebackType
from typing import Any, ClassVar, Self

from syncd.sandbox.faults import Fault, FaultInjector, FaultRule
from syncd.sandbox.routing import Request, Response, Router
from syncd.sandbox.server import RequestLog, SandboxServer, default_fault_response


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string, quotes included."""
    out = ['"']
    for ch in value:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("TOML snippet values must be finite")
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return toml_string(str(value))


def toml_key(key: str) -> str:
    bare = key.replace("-", "").replace("_", "")
    return key if key and bare.isascii() and bare.isalnum() else toml_string(key)


def toml_table(header: str | Sequence[str], values: dict[str, Any]) -> str:
    """``[header]`` followed by ``key = value`` lines (None values are left out).

    ``header`` is a sequence of keys (``("connections", name)``, each quoted when needed) or a
    ready-made dotted header string.
    """
    if not isinstance(header, str):
        header = ".".join(toml_key(k) for k in header)
    lines = [f"[{header}]"]
    lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in values.items() if v is not None]
    return "\n".join(lines) + "\n"


class Sandbox(abc.ABC):
    """Base of every vendor emulator: a seeded, fault-injectable vendor API on loopback.

    Subclasses register routes on ``self.router`` in ``__init__`` (after calling ``super()``),
    override ``fault_response`` to answer 429/5xx/expired-token faults as the vendor does, may
    override ``churn`` (called for ``Fault.CHURN``), and implement ``config_snippet``.
    """

    name: ClassVar[str] = "sandbox"

    def __init__(self, *, seed: int = 0, host: str = "127.0.0.1", port: int = 0) -> None:
        self.seed = seed
        self.server = SandboxServer(host, port)
        self.server.fault_responder = self.fault_response
        self.server.faults.churn_hook = self.churn

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``; raises until ``start()``."""
        return self.server.base_url

    @property
    def router(self) -> Router:
        return self.server.router

    @property
    def faults(self) -> FaultInjector:
        return self.server.faults

    @property
    def log(self) -> RequestLog:
        return self.server.log

    # -- vendor hooks ------------------------------------------------------------------------

    def fault_response(self, kind: Fault, request: Request, rule: FaultRule) -> Response:
        """The vendor's answer for an injected RATE_LIMIT, SERVER_ERROR or EXPIRED_TOKEN."""
        return default_fault_response(kind, request, rule)

    def churn(self, request: Request) -> None:  # noqa: B027 - optional hook, no-op by default
        """Change some records (``Fault.CHURN``): by default nothing."""

    def expected_ids(self, stream: str) -> set[str]:
        """The external ids a connector must deliver on a full pull of ``stream`` (as records or
        quarantined rejects), by this vendor's semantics; the contract tests compare with it."""
        raise NotImplementedError(f"{type(self).__name__} does not list expected ids")

    @abc.abstractmethod
    def config_snippet(self, connection_name: str) -> str:
        """A TOML snippet that points syncd connection ``connection_name`` at this sandbox."""


__all__ = ["Sandbox", "toml_key", "toml_string", "toml_table", "toml_value"]
