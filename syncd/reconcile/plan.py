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
    # Stored rows the source reported deleted by id only (``Page.deleted``): marked deleted, their
    # last known fields kept.
    delete_ids: tuple[str, ...] = ()

    @property
    def writes(self) -> tuple[Change, ...]:
        return self.create + self.update + self.void + self.delete


class Digest(str):
    """A content hash that also carries the record's whole raw payload as JSON text.

    Encoding the payload is the dearest step of hashing a record, and the store encodes the same
    payload again for its ``raw`` column; with the text at hand it is encoded once. The text is
    the payload's keys sorted (volatile ones last) in compact form: the same JSON value as
    ``json.dumps(record.raw)``. A ``Digest`` compares, hashes and stores as its hex string.
    """

    raw_json: str | None = None


# json.dumps(obj, sort_keys=True, separators=(",", ":")) builds one of these per call; reusing
# them gives the same text without that cost.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
_CANONICAL_ANY = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def content_hash(record: Record, volatile: Collection[str] = DEFAULT_VOLATILE_KEYS) -> str:
    """A digest of what the record says: canonical fields plus the raw payload minus volatile keys.

    ``source_updated_at`` is left out, so a record whose only change is its timestamp is unchanged.
    The digest is sha256 of ``json.dumps([fields, raw minus volatile keys], sort_keys=True,
    separators=(",", ":"), default=str)``; it comes back as a :class:`Digest` whose ``raw_json``
    is the whole payload as JSON text, for the store.
    """
    fields = record.model_dump(mode="json", exclude=set(_NEVER_HASHED))
    raw = record.raw
    kept = {k: v for k, v in raw.items() if k not in volatile}
    try:
        # Without ``default``: a payload that is not plain JSON takes the path below instead, so
        # the store's own encoder still refuses it as it always did.
        kept_json = _CANONICAL.encode(kept)
        dropped_json = ""
        if len(kept) != len(raw):
            dropped_json = _CANONICAL.encode({k: v for k, v in raw.items() if k in volatile})
    except TypeError:
        blob = _CANONICAL_ANY.encode([fields, kept])
        return hashlib.sha256(blob.encode()).hexdigest()
    # json.dumps([a, b], …) is exactly "[" + json.dumps(a, …) + "," + json.dumps(b, …) + "]".
    blob = f"[{_CANONICAL_ANY.encode(fields)},{kept_json}]"
    digest = Digest(hashlib.sha256(blob.encode()).hexdigest())
    if not dropped_json:
        digest.raw_json = kept_json
    elif kept:
        digest.raw_json = f"{kept_json[:-1]},{dropped_json[1:]}"
    else:
        digest.raw_json = dropped_json
    return digest


def plan_page(
    stored: Mapping[str, StoredRow],
    records: Iterable[Record],
    rejected: Iterable[Rejected] = (),
    *,
    hasher: Callable[[Record], str] = content_hash,
    deleted_ids: Iterable[str] = (),
) -> Plan:
    """Decide for each incoming record: create, update, void, delete or unchanged.

    ``deleted_ids`` become ``delete_ids`` when stored and not yet deleted; an id that the page also
    carries as a record is left to that record, the fuller word of the two.
    """
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
    delete_ids = tuple(
        dict.fromkeys(
            ext
            for ext in deleted_ids
            if ext in stored and not stored[ext].deleted and ext not in latest
        )
    )
    return Plan(
        create=tuple(create),
        update=tuple(update),
        void=tuple(void),
        delete=tuple(delete),
        unchanged=tuple(unchanged),
        touch=tuple(touch),
        quarantine=quarantine,
        delete_ids=delete_ids,
        counts={
            "created": len(create),
            "updated": len(update),
            "voided": len(void),
            "deleted": len(delete) + len(delete_ids),
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
    values["content_hash"] = str(digest)  # a plain str, not a Digest
    if isinstance(record, Invoice | Customer):
        return values
    raise TypeError(f"no table for {type(record).__name__}")
