"""Fault injection: the failures real vendor APIs hand out, on demand and countable.

Faults are programmed per route or globally, either as a queue (``inject``: the next N matching
requests fail this way) or by probability with a seeded RNG (``random``: each matching request fails
with probability ``rate``). Queued faults are consumed before the random policy is consulted. Every
fault that fires is counted per kind, so a chaos run can assert what it actually survived.

A route spec is ``"METHOD /path"``, ``"/path"`` (any method) or ``"METHOD"``. The path matches a
request whose path equals it or ends with it at a segment boundary (``"/company/companies"`` matches
``/v4_6_release/apis/3.0/company/companies``), or whose matched route pattern ends with it
(``"/finance/invoices/{id:int}/payments"``).
"""

from __future__ import annotations

import random as _random
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from syncd.sandbox.routing import Request


class Fault(StrEnum):
    RATE_LIMIT = "rate_limit"
    """429 with ``Retry-After: <seconds>``; the vendor's body (``Sandbox.fault_response``)."""
    SERVER_ERROR = "server_error"
    """A 5xx (``status``, default 500) with a vendor-style body carrying ``message``."""
    SLOW = "slow"
    """Wait ``delay`` seconds, then answer normally (longer than a client's read timeout)."""
    DROP = "drop"
    """Close the connection without sending a single byte of response."""
    TRUNCATE = "truncate"
    """Send the full ``Content-Length`` but only half the body, then close."""
    EXPIRED_TOKEN = "expired_token"  # noqa: S105 - a fault name, not a credential
    """Answer 401 the way the vendor does for an expired or revoked credential."""
    CHURN = "churn"
    """Call the sandbox's churn hook (records change under the client), then answer normally."""


DEFAULT_RANDOM_KINDS: tuple[Fault, ...] = (
    Fault.RATE_LIMIT,
    Fault.SERVER_ERROR,
    Fault.DROP,
    Fault.TRUNCATE,
)


def _split_route(spec: str | None) -> tuple[str | None, str | None]:
    if not spec:
        return None, None
    spec = spec.strip()
    if spec.startswith("/"):
        return None, spec
    method, _, path = spec.partition(" ")
    method = method.upper()
    return (None if method == "*" else method), (path.strip() or None)


def route_matches(spec: str | None, method: str, path: str, pattern: str | None) -> bool:
    """Whether a route spec (see module doc) covers a request."""
    want_method, want_path = _split_route(spec)
    if want_method is not None and want_method != method.upper():
        return False
    if want_path is None:
        return True
    if path == want_path or path.endswith(want_path):
        return True
    return pattern is not None and pattern.endswith(want_path)


@dataclass
class FaultRule:
    """One programmed fault. ``times=None`` fires on every matching request until cleared."""

    kind: Fault
    route: str | None = None
    times: int | None = 1
    retry_after: float = 1.0
    status: int = 500
    message: str | None = None
    delay: float = 2.0
    headers: dict[str, str] = field(default_factory=dict)

    def matches(self, method: str, path: str, pattern: str | None) -> bool:
        return route_matches(self.route, method, path, pattern)


@dataclass
class _RandomPolicy:
    rate: float
    kinds: tuple[Fault, ...]
    rng: _random.Random
    route: str | None
    exclude: tuple[str, ...]
    template: FaultRule


class FaultInjector:
    """The server's fault programme. Thread-safe; one per server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._random: _RandomPolicy | None = None
        self._counts: Counter[Fault] = Counter()
        self.churn_hook: Callable[[Request], None] | None = None

    def inject(
        self,
        kind: Fault,
        *,
        route: str | None = None,
        times: int | None = 1,
        retry_after: float = 1.0,
        status: int = 500,
        message: str | None = None,
        delay: float = 2.0,
        headers: dict[str, str] | None = None,
    ) -> FaultRule:
        """Queue a fault for the next ``times`` requests that match ``route`` (all when None)."""
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for every request)")
        rule = FaultRule(
            Fault(kind), route, times, retry_after, status, message, delay, dict(headers or {})
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def random(
        self,
        rate: float,
        kinds: Iterable[Fault] | None = None,
        *,
        seed: int = 0,
        route: str | None = None,
        exclude: Sequence[str] = (),
        retry_after: float = 1.0,
        status: int = 500,
        message: str | None = None,
        delay: float = 2.0,
    ) -> None:
        """Fail each matching request with probability ``rate``, the kind drawn from ``kinds``.

        The draw uses ``random.Random(seed)``, so a single-threaded client sees the same sequence
        of faults on every run. ``exclude`` lists route specs never to fail.
        """
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        chosen = tuple(Fault(k) for k in (kinds if kinds is not None else DEFAULT_RANDOM_KINDS))
        if not chosen:
            raise ValueError("kinds must not be empty")
        template = FaultRule(Fault.SERVER_ERROR, route, 1, retry_after, status, message, delay)
        with self._lock:
            self._random = _RandomPolicy(
                rate, chosen, _random.Random(seed), route, tuple(exclude), template
            )

    def stop_random(self) -> None:
        with self._lock:
            self._random = None

    def clear(self) -> None:
        """Forget every queued fault and the random policy (counts are kept)."""
        with self._lock:
            self._rules.clear()
            self._random = None

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()

    @property
    def pending(self) -> list[FaultRule]:
        with self._lock:
            return [replace(r) for r in self._rules]

    @property
    def counts(self) -> dict[Fault, int]:
        """How many faults of each kind have fired."""
        with self._lock:
            return dict(self._counts)

    def count(self, kind: Fault | None = None) -> int:
        with self._lock:
            return self._counts[kind] if kind is not None else sum(self._counts.values())

    def pick(self, method: str, path: str, pattern: str | None) -> FaultRule | None:
        """The fault to apply to this request, if any; consumes it and counts it."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path, pattern):
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times <= 0:
                            self._rules.remove(rule)
                    self._counts[rule.kind] += 1
                    return rule
            policy = self._random
            if policy is None:
                return None
            if not route_matches(policy.route, method, path, pattern):
                return None
            if any(route_matches(x, method, path, pattern) for x in policy.exclude):
                return None
            if policy.rng.random() >= policy.rate:
                return None
            kind = policy.rng.choice(policy.kinds)
            self._counts[kind] += 1
            return replace(policy.template, kind=kind)


__all__ = ["DEFAULT_RANDOM_KINDS", "Fault", "FaultInjector", "FaultRule", "route_matches"]
