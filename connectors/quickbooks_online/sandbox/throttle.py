"""Per-realm request limits, enforced the way Intuit documents them.

"500 requests per minute per realm; 10 requests per second per realm and app"; batch: "40 batch
requests per minute per realm and app" (developer.intuit.com/app/developer/qbo/docs/learn/limits-
and-throttles, research §1.10). Windows slide; only admitted requests count. Time comes from a
monotonic callable (``time.monotonic`` by default, not the records' clock: a frozen fake clock must
not freeze the throttle).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class Throttle:
    def __init__(
        self,
        *,
        per_second: int = 10,
        per_minute: int = 500,
        batch_per_minute: int = 40,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_second = per_second
        self.per_minute = per_minute
        self.batch_per_minute = batch_per_minute
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._all: dict[str, deque[float]] = {}
        self._batch: dict[str, deque[float]] = {}
        self.refused = 0

    def admit(self, realm: str, *, batch: bool = False) -> bool:
        """Record one request for ``realm``; False (and not recorded) when over a limit."""
        with self._lock:
            now = self.monotonic()
            window = self._all.setdefault(realm, deque())
            while window and window[0] <= now - 60.0:
                window.popleft()
            last_second = 0
            for t in reversed(window):
                if t <= now - 1.0:
                    break
                last_second += 1
            over = last_second >= self.per_second or len(window) >= self.per_minute
            batches = self._batch.setdefault(realm, deque())
            while batches and batches[0] <= now - 60.0:
                batches.popleft()
            if batch and len(batches) >= self.batch_per_minute:
                over = True
            if over:
                self.refused += 1
                return False
            window.append(now)
            if batch:
                batches.append(now)
            return True

    def reset(self) -> None:
        with self._lock:
            self._all.clear()
            self._batch.clear()


__all__ = ["Throttle"]
