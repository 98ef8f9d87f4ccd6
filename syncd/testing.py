"""Fakes shipped beside the interfaces they stand in for, for tests and connector authors."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from syncd.connector import (
    BaseConnector,
    Capability,
    CheckResult,
    ConnectorContext,
    Cursor,
    Page,
    Rejected,
    Stream,
)
from syncd.errors import RetriableError
from syncd.model import Record


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


class FakeSettings(BaseModel):
    """Settings of the in-memory connector: a token (to exercise secrets) and a page size."""

    model_config = ConfigDict(extra="forbid")
    token: SecretStr
    page_size: int = Field(default=2, ge=1)


class FakeConnector(BaseConnector):
    """An in-memory connector for engine tests: serves ``records[stream]`` in pages.

    Pages are ordered by (source updated-at, external id) and filtered by ``cursor.since``, as a
    vendor's incremental query would be; ``position`` is the offset of the next page. Set
    ``fail_after_pages`` to raise a ``RetriableError`` mid-pass (a crash stand-in).
    """

    name = "fake"
    settings_model = FakeSettings
    capabilities = frozenset({Capability.CUSTOMERS, Capability.INVOICES})

    def __init__(self, settings: BaseModel, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        assert isinstance(settings, FakeSettings)
        self.page_size = settings.page_size
        self.records: dict[Stream, list[Record]] = {Stream.CUSTOMERS: [], Stream.INVOICES: []}
        self.rejected: dict[Stream, list[Rejected]] = {Stream.CUSTOMERS: [], Stream.INVOICES: []}
        self.fail_after_pages: int | None = None
        self.requests_made = 0
        self.cursors: list[Cursor] = []

    def check(self) -> CheckResult:
        return CheckResult(ok=True, detail="in-memory")

    def pull(self, stream: Stream, cursor: Cursor) -> Iterator[Page]:
        self.cursors.append(cursor)
        since = cursor.since
        chosen = sorted(
            (r for r in self.records[stream] if since is None or r.source_updated_at >= since),
            key=lambda r: (r.source_updated_at, r.external_id),
        )
        offset = int(cursor.position or 0)
        served = 0
        while True:
            if self.fail_after_pages is not None and served >= self.fail_after_pages:
                raise RetriableError("fake connection dropped")
            chunk = tuple(chosen[offset : offset + self.page_size])
            offset += len(chunk)
            self.requests_made += 1
            last = offset >= len(chosen)
            rejected = tuple(self.rejected[stream]) if last else ()
            yield Page(
                records=chunk, rejected=rejected, next_position=None if last else str(offset)
            )
            served += 1
            if last:
                return
