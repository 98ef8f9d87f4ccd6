"""Secret redaction: one place that knows how to remove secret values from text and structures.

The config loader registers every secret it resolves; tokens obtained at run time are added as they
arrive. The logging processor and the HTTP layer both call ``redact`` before anything is written or
raised, so a secret cannot reach a log line or an exception message by any path we own.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterable
from typing import Any

MASK = "***"
_MIN_SECRET_LENGTH = 4  # shorter values would mask innocent text ("true", "1") everywhere


class Redactor:
    """A thread-safe set of secret values and the function that masks them."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        self.add(*secrets)

    def add(self, *values: str | None) -> None:
        """Register secret values; their base64 form is registered too (Basic auth headers)."""
        fresh = set()
        for value in values:
            if value and len(value) >= _MIN_SECRET_LENGTH:
                fresh.add(value)
                fresh.add(base64.b64encode(value.encode()).decode())
        with self._lock:
            merged = set(self._secrets) | fresh
            # Longest first, so a secret that contains another is masked whole.
            self._secrets = tuple(sorted(merged, key=len, reverse=True))

    @property
    def secrets(self) -> tuple[str, ...]:
        return self._secrets

    def redact(self, value: Any) -> Any:
        """Return ``value`` with every registered secret masked, recursing into dicts and lists."""
        if isinstance(value, str):
            for secret in self._secrets:
                if secret in value:
                    value = value.replace(secret, MASK)
            return value
        if isinstance(value, dict):
            return {k: self.redact(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.redact(v) for v in value)
        return value


# The process-wide redactor: config and token vault add to it, logging and HTTP read it.
REDACTOR = Redactor()
