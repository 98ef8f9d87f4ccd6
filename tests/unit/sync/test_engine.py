"""The pull pass against the real store: pages commit with their cursor, crashes resume cleanly."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from syncd.config.models import ConnectionSettings
from syncd.connector import ConnectorContext, Page, Rejected, Stream
from syncd.model import Customer, Invoice, InvoiceStatus
from syncd.store.state import load_state
from syncd.store.tables import customers, invoices, quarantine, sync_runs
from syncd.sync import pull_stream, sync_connection
from syncd.testing import FakeClock, FakeConnector, FakeSettings

T0 = dt.datetime(2026, 5, 1, 9, tzinfo=dt.UTC)


def settings(lookback: int = 300) -> ConnectionSettings:
    return ConnectionSettings(name="cw", connector="fake", lookback=lookback)


def connector(clock: FakeClock, page_size: int = 2) -> FakeConnector:
    return FakeConnector(
        FakeSettings(token="secret-token", page_size=page_size),
        ConnectorContext(connection="cw", clock=clock),
    )


def invoice(ext: int, minutes: int, balance: str = "100.00", status: str = "open") -> Invoice:
    return Invoice(
        connection="cw",
        external_id=str(ext),
        source_updated_at=T0 + dt.timedelta(minutes=minutes),
        number=f"INV-{ext}",
        customer_external_id="c1",
        currency="USD",
        total=Decimal("100.00"),
        balance=Decimal(balance),
        status=InvoiceStatus(status),
        raw={"id": ext, "_info": {"lastUpdated": str(minutes)}},
    )


def stored_invoices(engine: Engine) -> dict[str, tuple[Decimal, str]]:
    with engine.connect() as conn:
        return {
            r.external_id: (r.balance, r.status)
            for r in conn.execute(select(invoices).where(invoices.c.deleted_at.is_(None)))
        }


def test_full_pull_then_incremental_with_lookback(engine: Engine) -> None:
    clock = FakeClock(T0 + dt.timedelta(hours=1))
    fake = connector(clock)
    fake.records[Stream.INVOICES] = [invoice(i, i) for i in range(5)]
    first = pull_stream(engine, settings(), fake, Stream.INVOICES, clock=clock)
    assert (first.status, first.created, first.pages) == ("succeeded", 5, 3)
    assert fake.cursors[-1].since is None

    with engine.connect() as conn:
        state = load_state(conn, "cw", "invoices")
    assert state.watermark == T0 + dt.timedelta(minutes=4)
    assert not state.in_pass and state.last_complete_at == T0 + dt.timedelta(hours=1)

    fake.records[Stream.INVOICES][2] = invoice(2, 30, balance="60.00", status="partially_paid")
    second = pull_stream(engine, settings(), fake, Stream.INVOICES, clock=clock)
    # The look-back (5 minutes before the 09:04 watermark) re-reads invoice 4: unchanged.
    assert fake.cursors[-1].since == T0 - dt.timedelta(minutes=1)
    assert (second.updated, second.unchanged, second.created) == (1, 4, 0)
    assert stored_invoices(engine)["2"] == (Decimal("60.00"), "partially_paid")


def test_same_pull_twice_rewrites_nothing(engine: Engine) -> None:
    clock = FakeClock(T0 + dt.timedelta(hours=1))
    fake = connector(clock)
    fake.records[Stream.INVOICES] = [invoice(i, i) for i in range(4)]
    pull_stream(engine, settings(), fake, Stream.INVOICES, clock=clock)
    with engine.connect() as conn:
        before = {r.external_id: r.updated_at for r in conn.execute(select(invoices))}
    clock.advance(60)
    fake_full = settings(lookback=86400)
    again = pull_stream(engine, fake_full, fake, Stream.INVOICES, clock=clock)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)
    with engine.connect() as conn:
        after = {r.external_id: r.updated_at for r in conn.execute(select(invoices))}
    assert after == before


def test_crash_mid_pass_resumes_from_the_last_committed_page(engine: Engine) -> None:
    clock = FakeClock(T0 + dt.timedelta(hours=1))
    fake = connector(clock)
    fake.records[Stream.INVOICES] = [invoice(i, i) for i in range(7)]
    fake.fail_after_pages = 2
    broken = pull_stream(engine, settings(), fake, Stream.INVOICES, clock=clock)
    assert broken.status == "failed" and "dropped" in (broken.error or "")
    assert len(stored_invoices(engine)) == 4
    with engine.connect() as conn:
        state = load_state(conn, "cw", "invoices")
    assert state.in_pass and state.position == "4"
    assert state.watermark is None  # the watermark waits for the pass to complete

    fake.fail_after_pages = None
    resumed = pull_stream(engine, settings(), fake, Stream.INVOICES, clock=clock)
    assert fake.cursors[-1].position == "4" and fake.cursors[-1].since is None
    assert (resumed.status, resumed.created) == ("succeeded", 3)
    assert sorted(stored_invoices(engine)) == [str(i) for i in range(7)]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(invoices)).scalar_one() == 7
        statuses = [r.status for r in conn.execute(select(sync_runs).order_by(sync_runs.c.id))]
    assert statuses == ["failed", "succeeded"]


def test_watermark_never_passes_the_start_of_the_pull(engine: Engine) -> None:
    clock = FakeClock(T0)
    fake = connector(clock)
    fake.records[Stream.INVOICES] = [invoice(1, 90)]  # the source's clock runs ahead of ours
    pull_stream(engine, settings(), fake, Stream.INVOICES, clock=clock)
    with engine.connect() as conn:
        assert load_state(conn, "cw", "invoices").watermark == T0


def test_bad_records_are_quarantined_and_the_rest_goes_on(engine: Engine) -> None:
    clock = FakeClock(T0 + dt.timedelta(hours=1))
    fake = connector(clock)
    fake.records[Stream.INVOICES] = [invoice(1, 1), invoice(2, 2)]
    fake.rejected[Stream.INVOICES] = [Rejected("3", "total: not a number", {"id": 3, "total": "x"})]
    result = pull_stream(engine, settings(), fake, Stream.INVOICES, clock=clock)
    assert (result.created, result.quarantined) == (2, 1)
    with engine.connect() as conn:
        row = conn.execute(select(quarantine)).one()
    assert (row.external_id, row.reason, row.payload) == (
        "3",
        "total: not a number",
        {"id": 3, "total": "x"},
    )


def test_void_is_a_state_and_tombstone_marks_deleted(engine: Engine) -> None:
    clock = FakeClock(T0 + dt.timedelta(hours=1))
    fake = connector(clock)
    fake.records[Stream.INVOICES] = [invoice(1, 1), invoice(2, 1)]
    pull_stream(engine, settings(), fake, Stream.INVOICES, clock=clock)
    fake.records[Stream.INVOICES] = [invoice(1, 5, status="void"), invoice(2, 5, status="deleted")]
    result = pull_stream(engine, settings(), fake, Stream.INVOICES, clock=clock)
    assert (result.voided, result.deleted) == (1, 1)
    assert stored_invoices(engine) == {"1": (Decimal("100.00"), "void")}


def test_a_cursor_that_stops_advancing_fails_loudly(engine: Engine) -> None:
    clock = FakeClock(T0)

    class Stuck(FakeConnector):
        def pull(self, stream, cursor):  # type: ignore[no-untyped-def]
            while True:
                yield Page(records=(invoice(1, 1),), next_position="same")

    stuck = Stuck(FakeSettings(token="t0ken"), ConnectorContext(connection="cw", clock=clock))
    result = pull_stream(engine, settings(), stuck, Stream.INVOICES, clock=clock)
    assert result.status == "failed"
    assert "stopped advancing" in (result.error or "")


def test_sync_connection_pulls_customers_then_invoices(engine: Engine) -> None:
    clock = FakeClock(T0 + dt.timedelta(hours=1))
    fake = connector(clock, page_size=10)
    fake.records[Stream.CUSTOMERS] = [
        Customer(connection="cw", external_id="c1", source_updated_at=T0, name='Acme "Q" & Co')
    ]
    fake.records[Stream.INVOICES] = [invoice(1, 1)]
    results = sync_connection(engine, settings(), fake, clock=clock)
    assert [(r.stream, r.created) for r in results] == [("customers", 1), ("invoices", 1)]
    assert len({r.run_id for r in results}) == 1
    with engine.connect() as conn:
        assert conn.execute(select(customers.c.name)).scalar_one() == 'Acme "Q" & Co'


@pytest.mark.parametrize("page_size", [1, 3, 100])
def test_requests_and_pages_are_recorded(engine: Engine, page_size: int) -> None:
    clock = FakeClock(T0 + dt.timedelta(hours=1))
    fake = connector(clock, page_size=page_size)
    fake.records[Stream.INVOICES] = [invoice(i, i) for i in range(6)]
    result = pull_stream(engine, settings(), fake, Stream.INVOICES, clock=clock)
    with engine.connect() as conn:
        run = conn.execute(select(sync_runs)).one()
    assert run.pages == result.pages == fake.requests_made == run.requests


def test_a_record_rejected_on_every_pass_is_one_quarantine_row(engine: Engine) -> None:
    clock = FakeClock(T0 + dt.timedelta(hours=1))
    fake = connector(clock)
    fake.records[Stream.INVOICES] = [invoice(1, 1)]
    fake.rejected[Stream.INVOICES] = [Rejected("3", "total: not a number", {"id": 3, "v": 1})]
    pull_stream(engine, settings(), fake, Stream.INVOICES, clock=clock)
    fake.rejected[Stream.INVOICES] = [Rejected("3", "total: still bad", {"id": 3, "v": 2})]
    again = pull_stream(engine, settings(lookback=86400), fake, Stream.INVOICES, clock=clock)
    assert again.quarantined == 1  # counted in the run: it was met again
    with engine.connect() as conn:
        rows = conn.execute(select(quarantine)).all()
    assert [(r.external_id, r.reason, r.payload, r.run_id) for r in rows] == [
        ("3", "total: still bad", {"id": 3, "v": 2}, again.run_id)
    ]
