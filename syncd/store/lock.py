"""One daemon per SQLite file: an exclusive ``flock`` on ``<db>.lock`` held for the process's life.

PostgreSQL needs no such lock (workers share it through row leases), so this applies to SQLite
only. The lock dies with the process, so a ``kill -9`` never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from sqlalchemy.engine import Engine

from syncd.errors import StoreError


class ProcessLock:
    """Held while a daemon or a one-shot sync writes to a SQLite store."""

    def __init__(self, path: Path, purpose: str) -> None:
        self.path = path
        self.purpose = purpose
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise StoreError(
                f"another syncd ({holder}) is already using this store; "
                f"stop it first, or use PostgreSQL to run several workers (lock: {self.path})"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}, {self.purpose}".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> ProcessLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def store_lock(engine: Engine, purpose: str) -> ProcessLock | None:
    """The lock for a SQLite store, or None for a server database."""
    if engine.dialect.name != "sqlite" or not engine.url.database:
        return None
    return ProcessLock(Path(engine.url.database + ".lock").expanduser(), purpose)
