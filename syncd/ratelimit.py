"""Client-side rate limits, shared by every job that talks to the same vendor tenant.

Vendors meter per tenant (a QuickBooks realm, a Xero organisation, an Autotask zone), not per
process job, so limiters live in one registry keyed by ``(vendor, tenant)``: two jobs of the same
tenant draw from one budget (``get_limiter``).

The algorithm is a *sliding-window log*: we remember the instant of the last N grants (N = the
largest window count) and grant a request only if, for every window ``(count, seconds)``, fewer than
``count`` grants fall inside the last ``seconds``. It is exact (a token bucket lets a full burst
through at a window boundary, which is what trips "500 per minute" meters), needs no background
thread, and its memory is bounded by the largest count. Concurrency is a plain counted slot held
for the duration of one HTTP exchange.

Waiting goes through the ``Clock``: a ``FakeClock`` makes every wait instant in tests. A server-side
429 pauses the whole tenant (``pause``), so the other jobs stop hammering too.

Issue 7 will make budgets hold across processes through the store. The seam is ``Limits`` (plain
data) plus the ``Limiter`` protocol the HTTP client depends on, and the registry's ``factory``: a
store-backed limiter only has to implement the protocol.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from syncd.clock import Clock, SystemClock


@dataclass(frozen=True)
class Limits:
    """A tenant's budget: any number of ``(count, window_seconds)`` windows and a concurrency cap.

    ``Limits(windows=((500, 60), (10_000, 86_400)), max_concurrency=10)`` reads "500 a minute,
    10 000 a day, 10 at once". ``Limits.per(minute=500, day=10_000, concurrency=10)`` says the same.
    """

    windows: tuple[tuple[int, float], ...] = ()
    max_concurrency: int | None = None

    def __post_init__(self) -> None:
        windows = tuple((int(count), float(seconds)) for count, seconds in self.windows)
        for count, seconds in windows:
            if count < 1 or not (seconds > 0 and math.isfinite(seconds)):
                raise ValueError(f"rate window ({count}, {seconds}) needs count >= 1, seconds > 0")
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {self.max_concurrency}")
        object.__setattr__(self, "windows", windows)

    @classmethod
    def per(
        cls,
        *,
        second: int | None = None,
        minute: int | None = None,
        hour: int | None = None,
        day: int | None = None,
        concurrency: int | None = None,
    ) -> Limits:
        spans = ((second, 1.0), (minute, 60.0), (hour, 3600.0), (day, 86400.0))
        return cls(
            windows=tuple((count, seconds) for count, seconds in spans if count is not None),
            max_concurrency=concurrency,
        )

    @property
    def history(self) -> int:
        """How many past grants the largest window needs remembered."""
        return max((count for count, _ in self.windows), default=0)


class Limiter(Protocol):
    """What the HTTP client needs from a limiter; a store-backed one (issue 7) implements this."""

    @property
    def limits(self) -> Limits: ...

    @property
    def waited_seconds(self) -> float: ...

    def acquire(self) -> float:
        """Block until a request may start; return the seconds waited. Pair with ``release``."""
        ...

    def release(self) -> None: ...

    def pause(self, seconds: float) -> None:
        """The vendor said 429: hold every request of this tenant for ``seconds``."""
        ...

    def reconfigure(self, limits: Limits) -> None: ...


class RateLimiter:
    """In-process sliding-window limiter with a concurrency cap. Thread-safe."""

    def __init__(self, limits: Limits, clock: Clock | None = None) -> None:
        self._clock: Clock = clock or SystemClock()
        self._cond = threading.Condition()
        self._limits = limits
        self._grants: deque[float] = deque(maxlen=limits.history)
        self._in_flight = 0
        self._paused_until = -math.inf
        self._waited = 0.0

    @property
    def limits(self) -> Limits:
        return self._limits

    @property
    def waited_seconds(self) -> float:
        """Total seconds callers spent waiting here (for the run's metrics)."""
        with self._cond:
            return self._waited

    @property
    def in_flight(self) -> int:
        with self._cond:
            return self._in_flight

    def reconfigure(self, limits: Limits) -> None:
        """Adopt new limits (config reload) keeping the grant history."""
        with self._cond:
            self._limits = limits
            self._grants = deque(self._grants, maxlen=limits.history)
            self._cond.notify_all()

    def pause(self, seconds: float) -> None:
        with self._cond:
            until = self._clock.monotonic() + max(seconds, 0.0)
            self._paused_until = max(self._paused_until, until)

    def acquire(self) -> float:
        # Slot first, then the window: the grant is stamped just before the request goes out, so
        # time spent queueing for a slot never makes us think a window has more room than it has.
        started = self._clock.monotonic()
        with self._cond:
            while (cap := self._limits.max_concurrency) is not None and self._in_flight >= cap:
                self._cond.wait()
            self._in_flight += 1
        waited = self._clock.monotonic() - started
        try:
            while (delay := self._try_grant()) > 0:
                self._clock.sleep(delay)
                waited += delay
        except BaseException:
            self.release()
            raise
        with self._cond:
            self._waited += waited
        return waited

    def release(self) -> None:
        with self._cond:
            self._in_flight = max(self._in_flight - 1, 0)
            self._cond.notify()

    @contextmanager
    def slot(self) -> Iterator[float]:
        """``with limiter.slot():`` around one request; yields the seconds waited."""
        waited = self.acquire()
        try:
            yield waited
        finally:
            self.release()

    def _try_grant(self) -> float:
        """Record a grant and return 0, or return how long to wait before trying again."""
        with self._cond:
            now = self._clock.monotonic()
            delay = self._paused_until - now
            for count, seconds in self._limits.windows:
                if len(self._grants) >= count:
                    # The count-th most recent grant must have left the window.
                    delay = max(delay, self._grants[-count] + seconds - now)
            if delay > 0:
                return delay
            self._grants.append(now)
            return 0.0


LimiterKey = Hashable  # e.g. ("quickbooks", realm_id)


class LimiterRegistry:
    """One limiter per tenant key, so every job of that tenant shares one budget."""

    def __init__(self, factory: Callable[[Limits, Clock], Limiter] = RateLimiter) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._limiters: dict[LimiterKey, Limiter] = {}

    def get(self, key: LimiterKey, limits: Limits, clock: Clock | None = None) -> Limiter:
        """The tenant's limiter, created on first use. Later calls with other limits reconfigure it
        (latest configuration wins); the clock is fixed by the first call."""
        with self._lock:
            limiter = self._limiters.get(key)
            if limiter is None:
                limiter = self._factory(limits, clock or SystemClock())
                self._limiters[key] = limiter
            elif limiter.limits != limits:
                limiter.reconfigure(limits)
            return limiter

    def clear(self) -> None:
        """Forget every limiter (tests, or a daemon reload)."""
        with self._lock:
            self._limiters.clear()


# The process-wide registry: connectors call ``get_limiter`` with their tenant key.
REGISTRY = LimiterRegistry()


def get_limiter(key: LimiterKey, limits: Limits, clock: Clock | None = None) -> Limiter:
    """Shorthand for ``REGISTRY.get``: the shared limiter of ``key`` (e.g. ``("xero", tenant)``)."""
    return REGISTRY.get(key, limits, clock)


__all__ = [
    "REGISTRY",
    "Limiter",
    "LimiterKey",
    "LimiterRegistry",
    "Limits",
    "RateLimiter",
    "get_limiter",
]
