"""The sweep deletes only after a complete listing, refuses mass deletions, and names drift."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.engine import Engine

from syncd.config.models import ConnectionSettings
from syncd.connector import ConnectorContext, Stream
from syncd.model import Invoice, InvoiceStatus
from syncd.store.tables import invoices, review_items
from syncd.sync import pull_stream
from syncd.sync.sweep import sweep_stream
from syncd.testing import FakeClock, FakeConnector, FakeSettings

T0 = dt.datetime(2026, 5, 1, 9, tzinfo=dt.UTC)


def invoice(ext: int, balance: str = "100.00", minutes: int = 0) -> Invoice:
    value = Decimal(balance)
    status = InvoiceStatus.OPEN if value == 100 else InvoiceStatus.PARTIALLY_PAID
    return Invoice(
        connection="cw",
        external_id=str(ext),
        source_updated_at=T0 + dt.timedelta(minutes=minutes),
        number=f"INV-{ext}",
        customer_external_id="c1",
        currency="USD",
        total=Decimal("100.00"),
        balance=value,
        status=status if value else InvoiceStatus.PAID,
    )


def setup(
    engine: Engine, count: int, share: float = 0.2
) -> tuple[FakeConnector, FakeClock, ConnectionSettings]:
    clock = FakeClock(T0 + dt.timedelta(hours=1))
    fake = FakeConnector(FakeSettings(token="t0ken", page_size=3), ConnectorContext("cw", clock))
    # All but the last invoice changed an hour before the last one, outside the look-back window.
    fake.records[Stream.INVOICES] = [
        invoice(i, minutes=0 if i == count - 1 else -60) for i in range(count)
    ]
    settings = ConnectionSettings(name="cw", connector="fake", max_delete_share=share)
    pull_stream(engine, settings, fake, Stream.INVOICES, clock=clock)
    return fake, clock, settings


def live(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(select(invoices).where(invoices.c.deleted_at.is_(None)))
        return {r.external_id: r.status for r in rows}


def reviews(engine: Engine) -> list[tuple[str, dict[str, object]]]:
    with engine.connect() as conn:
        return [(r.kind, r.detail) for r in conn.execute(select(review_items))]


def test_records_gone_from_the_source_are_marked_deleted(engine: Engine) -> None:
    fake, clock, settings = setup(engine, 10)
    del fake.records[Stream.INVOICES][3]
    result = sweep_stream(engine, settings, fake, Stream.INVOICES, clock=clock)
    assert (result.status, result.seen, result.deleted) == ("succeeded", 9, 1)
    assert "3" not in live(engine) and len(live(engine)) == 9
    with engine.connect() as conn:
        gone = conn.execute(select(invoices).where(invoices.c.external_id == "3")).one()
    assert gone.status == "deleted" and gone.deleted_at is not None
    assert reviews(engine) == []


def test_mass_deletion_is_held_back_for_a_person(engine: Engine) -> None:
    fake, clock, settings = setup(engine, 10)
    fake.records[Stream.INVOICES] = fake.records[Stream.INVOICES][:5]
    first = sweep_stream(engine, settings, fake, Stream.INVOICES, clock=clock)
    second = sweep_stream(engine, settings, fake, Stream.INVOICES, clock=clock)
    assert (first.deleted, first.held_back) == (0, 5)
    assert second.held_back == 5
    assert len(live(engine)) == 10
    [(kind, detail)] = reviews(engine)  # one open item, refreshed, not one per sweep
    assert kind == "mass_delete" and detail["missing_count"] == 5


def test_a_failed_listing_deletes_nothing(engine: Engine) -> None:
    fake, clock, settings = setup(engine, 10, share=1.0)
    fake.fail_after_pages = 1
    result = sweep_stream(engine, settings, fake, Stream.INVOICES, clock=clock)
    assert result.status == "failed" and result.deleted == 0
    assert len(live(engine)) == 10


def test_drift_that_no_change_feed_reported_is_repaired_and_named(engine: Engine) -> None:
    fake, clock, settings = setup(engine, 4)
    # The source changed a balance without bumping its modified time (Xero does this), so the
    # incremental pull, which asks for changes since the watermark, cannot see it.
    fake.records[Stream.INVOICES][2] = invoice(2, balance="0.00", minutes=-60)
    incremental = pull_stream(engine, settings, fake, Stream.INVOICES, clock=clock)
    assert (incremental.updated, incremental.unchanged) == (0, 1)
    result = sweep_stream(engine, settings, fake, Stream.INVOICES, clock=clock)
    assert [(d.number, d.stored_balance, d.source_balance) for d in result.drift] == [
        ("INV-2", Decimal("100.00"), Decimal("0.00"))
    ]
    assert result.store_open_before == Decimal("400.00")
    assert result.source_open == Decimal("300.00")
    assert live(engine)["2"] == "paid"
    [(kind, detail)] = reviews(engine)
    assert kind == "money_drift"
    assert detail["invoices"] == [
        {
            "number": "INV-2",
            "external_id": "2",
            "stored_balance": "100.00",
            "source_balance": "0.00",
        }
    ]
