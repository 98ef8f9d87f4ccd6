"""Plan, then apply: from the stored state of some records and an incoming page, what to change.

Pure: no I/O, no clock. The sync engine loads the stored rows a page touches, asks ``plan_page``,
and hands the plan to the store. A record never replaces a stored one with an older source
timestamp, so a stale copy from an overlapping page cannot undo a newer one; with an equal
timestamp and different content the incoming record wins, because it was read later (Xero and
others change records without bumping their modified time). Two properties hold and are tested
with hypothesis: applying the same page twice changes nothing, and any order of overlapping pages
converges to the same store when each source version carries its own timestamp.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from syncd.connector import Rejected
from syncd.model import Customer, Invoice, InvoiceStatus, Record

# Raw-payload keys that change without the record changing (audit stamps, hrefs, versions).
DEFAULT_VOLATILE_KEYS = frozenset({"_info", "MetaData", "UpdatedDateUTC", "_links", "@odata.etag"})
_NEVER_HASHED = frozenset({"connection", "source_updated_at", "raw"})


@dataclass(frozen=True)
class StoredRow:
    """What the planner needs to know of a stored record."""

    external_id: str
    content_hash: str
    source_updated_at: dt.datetime
    status: str | None = None
    deleted: bool = False


@dataclass(frozen=True)
class Change:
    record: Record
    content_hash: str


@dataclass(frozen=True)
class Plan:
    create: tuple[Change, ...] = ()
    update: tuple[Change, ...] = ()
    void: tuple[Change, ...] = ()  # updates that turn an invoice void: a state, not a delete
    delete: tuple[Change, ...] = ()  # the source reported the record deleted (tombstone)
    unchanged: tuple[str, ...] = ()
    # Unchanged content with a newer source timestamp: only the timestamp is written, so that a
    # stale copy arriving later (overlapping pages) cannot win over what the source said last.
    touch: tuple[tuple[str, dt.datetime], ...] = ()
    quarantine: tuple[Rejected, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def writes(self) -> tuple[Change, ...]:
        return self.create + self.update + self.void + self.delete


def content_hash(record: Record, volatile: Collection[str] = DEFAULT_VOLATILE_KEYS) -> str:
    """A digest of what the record says: canonical fields plus the raw payload minus volatile keys.

    ``source_updated_at`` is left out, so a record whose only change is its timestamp is unchanged.
    """
    fields = record.model_dump(mode="json", exclude=set(_NEVER_HASHED))
    raw = {k: v for k, v in record.raw.items() if k not in volatile}
    blob = json.dumps([fields, raw], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def plan_page(
    stored: Mapping[str, StoredRow],
    records: Iterable[Record],
    rejected: Iterable[Rejected] = (),
    *,
    hasher: Callable[[Record], str] = content_hash,
) -> Plan:
    """Decide for each incoming record: create, update, void, delete or unchanged."""
    latest: dict[str, Change] = {}
    for record in records:
        change = Change(record, hasher(record))
        seen = latest.get(record.external_id)
        if seen is None or record.source_updated_at >= seen.record.source_updated_at:
            latest[record.external_id] = change

    create: list[Change] = []
    update: list[Change] = []
    void: list[Change] = []
    delete: list[Change] = []
    unchanged: list[str] = []
    touch: list[tuple[str, dt.datetime]] = []
    for external_id, change in latest.items():
        row = stored.get(external_id)
        if row is None:
            (delete if _is_deleted(change.record) else create).append(change)
            continue
        if (
            change.content_hash == row.content_hash
            or change.record.source_updated_at < row.source_updated_at
        ):
            unchanged.append(external_id)
            if change.record.source_updated_at > row.source_updated_at:
                touch.append((external_id, change.record.source_updated_at))
        elif _is_deleted(change.record):
            delete.append(change)
        elif _is_void(change.record) and row.status != InvoiceStatus.VOID:
            void.append(change)
        else:
            update.append(change)
    quarantine = tuple(rejected)
    return Plan(
        create=tuple(create),
        update=tuple(update),
        void=tuple(void),
        delete=tuple(delete),
        unchanged=tuple(unchanged),
        touch=tuple(touch),
        quarantine=quarantine,
        counts={
            "created": len(create),
            "updated": len(update),
            "voided": len(void),
            "deleted": len(delete),
            "unchanged": len(unchanged),
            "quarantined": len(quarantine),
        },
    )


def _is_void(record: Record) -> bool:
    return isinstance(record, Invoice) and record.status == InvoiceStatus.VOID


def _is_deleted(record: Record) -> bool:
    return isinstance(record, Invoice) and record.status == InvoiceStatus.DELETED


def row_values(record: Record, digest: str) -> dict[str, Any]:
    """The column values of a record's row (without bookkeeping timestamps)."""
    values = record.model_dump(exclude={"raw"})
    values["raw"] = record.raw
    values["content_hash"] = digest
    if isinstance(record, Invoice | Customer):
        return values
    raise TypeError(f"no table for {type(record).__name__}")
