"""The baselines every figure is divided by, measured in the same run as the figure.

- ``fetch_and_parse``: the cost of merely getting the pages. It replays the exact requests the
  measured sync sent (same URLs, same headers, in the same order, over one keep-alive
  ``requests.Session``) and parses each body with ``json.loads``: no mapping, no validation, no
  store. The bytes received are compared with what the sync received, so a baseline that fetched
  other pages would be caught.
- ``NaiveStore``: the apply step written the obvious way, one statement per record: for each
  record a ``SELECT`` of its stored hash, then an ``INSERT`` (or an ``UPDATE`` when it changed),
  one transaction per page. Same tables, same column types, same content hash as the real store,
  so the only difference is statements per record versus bulk statements per page.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests
from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Engine

from bench.common import Exchange
from syncd.connector import Page, Stream
from syncd.reconcile.plan import content_hash, row_values
from syncd.store.records import table_for


@dataclass(frozen=True)
class Fetched:
    seconds: float
    requests: int
    items: int  # JSON objects received (every list item, contacts included)
    nbytes: int


def fetch_and_parse(exchanges: Sequence[Exchange], timeout: float = 60.0) -> Fetched:
    """Replay ``exchanges`` with plain ``requests`` + ``json``; wall time of the whole replay."""
    items = nbytes = 0
    with requests.Session() as session:
        started = time.perf_counter()
        for exchange in exchanges:
            response = session.request(
                exchange.method, exchange.url, headers=exchange.headers, timeout=timeout
            )
            response.raise_for_status()
            body = json.loads(response.content)
            items += len(body) if isinstance(body, list) else 1
            nbytes += len(response.content)
        seconds = time.perf_counter() - started
    return Fetched(seconds, len(exchanges), items, nbytes)


class NaiveStore:
    """One statement per record (see the module docstring), timed page by page."""

    def __init__(self, engine: Engine, connection: str, volatile: frozenset[str] | None) -> None:
        self.engine = engine
        self.connection = connection
        self.volatile = volatile
        self.seconds = 0.0
        self.records = 0
        self.statements = 0

    def apply(self, stream: Stream, page: Page, now: dt.datetime) -> None:
        table = table_for(stream)
        started = time.perf_counter()
        with self.engine.begin() as conn:
            for record in page.records:
                digest = (
                    content_hash(record)
                    if self.volatile is None
                    else content_hash(record, self.volatile)
                )
                where = and_(
                    table.c.connection == self.connection,
                    table.c.external_id == record.external_id,
                )
                stored = conn.execute(select(table.c.content_hash).where(where)).scalar()
                self.statements += 1
                values: dict[str, Any] = row_values(record, digest)
                values["updated_at"] = now
                values["deleted_at"] = None
                if stored is None:
                    values["created_at"] = now
                    conn.execute(insert(table).values(values))
                    self.statements += 1
                elif stored != digest:
                    conn.execute(update(table).where(where).values(values))
                    self.statements += 1
                self.records += 1
        self.seconds += time.perf_counter() - started


__all__ = ["Fetched", "NaiveStore", "fetch_and_parse"]
