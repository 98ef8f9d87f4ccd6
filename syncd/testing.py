"""Fakes shipped beside the interfaces they stand in for, for syncd's tests and connector authors."""

from __future__ import annotations

import datetime as dt
import threading


class FakeClock:
    """A clock that starts at a fixed instant and moves only when slept on or advanced."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        self._mono = 0.0
        self._lock = threading.Lock()
        self.slept: list[float] = []

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += dt.timedelta(seconds=max(seconds, 0))
            self._mono += max(seconds, 0)
