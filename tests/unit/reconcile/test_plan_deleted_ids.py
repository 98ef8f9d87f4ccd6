"""``Page.deleted``: ids the source reports deleted without their fields (QuickBooks CDC
tombstones) become ``Plan.delete_ids`` for stored rows, and nothing else."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from syncd.model import Invoice, InvoiceStatus
from syncd.reconcile.plan import StoredRow, content_hash, plan_page

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def inv(ext: str, minute: int = 0, balance: str = "10") -> Invoice:
    return Invoice(
        connection="qbo",
        external_id=ext,
        source_updated_at=T0 + dt.timedelta(minutes=minute),
        number=f"N{ext}",
        customer_external_id="c",
        currency="USD",
        total=Decimal("10"),
        balance=Decimal(balance),
        status=InvoiceStatus.OPEN,
        raw={"Id": ext},
    )


def stored(*records: Invoice, deleted: tuple[str, ...] = ()) -> dict[str, StoredRow]:
    return {
        r.external_id: StoredRow(
            r.external_id,
            content_hash(r),
            r.source_updated_at,
            r.status,
            deleted=r.external_id in deleted,
        )
        for r in records
    }


def test_stored_live_rows_are_deleted_by_id() -> None:
    plan = plan_page(stored(inv("1"), inv("2")), [], deleted_ids=["2"])
    assert plan.delete_ids == ("2",)
    assert plan.counts["deleted"] == 1
    assert plan.writes == ()


def test_unknown_and_already_deleted_ids_are_ignored() -> None:
    plan = plan_page(stored(inv("1"), deleted=("1",)), [], deleted_ids=["1", "9"])
    assert plan.delete_ids == ()
    assert plan.counts["deleted"] == 0


def test_repeated_ids_count_once() -> None:
    plan = plan_page(stored(inv("1")), [], deleted_ids=["1", "1"])
    assert plan.delete_ids == ("1",)
    assert plan.counts["deleted"] == 1


def test_a_record_in_the_same_page_wins_over_its_bare_id() -> None:
    plan = plan_page(stored(inv("1")), [inv("1", 5, balance="4")], deleted_ids=["1"])
    assert plan.delete_ids == ()
    assert [c.record.external_id for c in plan.update] == ["1"]


def test_without_deleted_ids_plans_are_as_before() -> None:
    plan = plan_page(stored(inv("1")), [inv("1", 5)])
    assert plan.delete_ids == ()
    assert plan.unchanged == ("1",)
