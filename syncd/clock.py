"""Time as a dependency: code takes a ``Clock`` instead of calling ``datetime.now`` or ``sleep``.

Tests pass a ``FakeClock`` (``syncd.testing``) whose ``sleep`` advances time instantly, so retry
and rate-limit logic is exercised without waiting.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """Current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for measuring intervals."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds`` (a fake clock only advances)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)
