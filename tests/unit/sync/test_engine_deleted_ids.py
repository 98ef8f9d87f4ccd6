"""A page's ``deleted`` ids reach the store: stored rows are marked deleted in the page's
transaction, their last known fields kept, and the run counts them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.engine import Engine

from syncd.config.models import ConnectionSettings
from syncd.connector import BaseConnector, Capability, ConnectorContext, Cursor, Page, Stream
from syncd.model import Invoice, InvoiceStatus
from syncd.store.tables import invoices
from syncd.sync import pull_stream
from syncd.testing import FakeClock

T0 = dt.datetime(2026, 5, 1, 9, tzinfo=dt.UTC)


class _Settings(BaseModel):
    pass


class Scripted(BaseConnector):
    """Serves the pages it is given, one list per pull."""

    name = "scripted"
    settings_model = _Settings
    capabilities = frozenset({Capability.INVOICES})

    def __init__(self, passes: list[list[Page]]) -> None:
        super().__init__(_Settings(), ConnectorContext(connection="qbo"))
        self.passes = passes

    def pull(self, stream: Stream, cursor: Cursor) -> Iterator[Page]:
        yield from self.passes.pop(0)


def invoice(ext: str) -> Invoice:
    return Invoice(
        connection="qbo",
        external_id=ext,
        source_updated_at=T0,
        number=f"INV-{ext}",
        customer_external_id="c1",
        currency="USD",
        total=Decimal("100.00"),
        balance=Decimal("100.00"),
        status=InvoiceStatus.OPEN,
        raw={"Id": ext},
    )


def test_deleted_ids_mark_stored_rows_deleted(engine: Engine) -> None:
    clock = FakeClock(T0 + dt.timedelta(hours=1))
    settings = ConnectionSettings(name="qbo", connector="scripted")
    connector = Scripted(
        [
            [Page((invoice("1"), invoice("2")))],
            [Page((), deleted=("2", "404"))],  # "404" was never stored: nothing to do
        ]
    )
    assert pull_stream(engine, settings, connector, Stream.INVOICES, clock=clock).created == 2

    result = pull_stream(engine, settings, connector, Stream.INVOICES, clock=clock)

    assert (result.ok, result.deleted, result.created, result.updated) == (True, 1, 0, 0)
    with engine.connect() as conn:
        rows = {r.external_id: r for r in conn.execute(select(invoices))}
    assert rows["2"].status == "deleted"
    assert rows["2"].deleted_at is not None
    assert (rows["2"].number, rows["2"].balance) == ("INV-2", Decimal("100.00"))  # fields kept
    assert rows["1"].deleted_at is None and rows["1"].status == "open"
