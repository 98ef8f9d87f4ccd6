"""plan_page is pure: idempotent, order-independent, and blind to volatile fields."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from syncd.connector import Rejected
from syncd.model import Invoice, InvoiceStatus
from syncd.reconcile.plan import StoredRow, content_hash, plan_page

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def inv(ext: str, minute: int, balance: str = "10", status: str = "open", **raw: object) -> Invoice:
    return Invoice(
        connection="cw",
        external_id=ext,
        source_updated_at=T0 + dt.timedelta(minutes=minute),
        number=f"N{ext}",
        customer_external_id="c",
        currency="USD",
        total=Decimal("10"),
        balance=Decimal(balance),
        status=InvoiceStatus(status),
        raw={"id": ext, **raw},
    )


def stored_of(records: list[Invoice]) -> dict[str, StoredRow]:
    return {
        r.external_id: StoredRow(r.external_id, content_hash(r), r.source_updated_at, r.status)
        for r in records
    }


def apply(store: dict[str, Invoice], records: list[Invoice]) -> dict[str, Invoice]:
    """A tiny in-memory apply, the model of what the store does with a plan."""
    plan = plan_page(stored_of(list(store.values())), records)
    out = dict(store)
    for change in plan.writes:
        assert isinstance(change.record, Invoice)
        out[change.record.external_id] = change.record
    for external_id, when in plan.touch:
        out[external_id] = out[external_id].model_copy(update={"source_updated_at": when})
    return out


def test_new_changed_void_deleted_and_unchanged() -> None:
    old = [inv("1", 0), inv("2", 0), inv("3", 0), inv("4", 0)]
    page = [
        inv("1", 5),  # only the timestamp moved: unchanged
        inv("2", 5, balance="4"),
        inv("3", 5, status="void"),
        inv("4", 5, status="deleted"),
        inv("5", 5),
    ]
    plan = plan_page(stored_of(old), page, [Rejected("6", "bad currency", {"id": 6})])
    assert plan.unchanged == ("1",)
    assert [c.record.external_id for c in plan.update] == ["2"]
    assert [c.record.external_id for c in plan.void] == ["3"]
    assert [c.record.external_id for c in plan.delete] == ["4"]
    assert [c.record.external_id for c in plan.create] == ["5"]
    assert plan.counts["quarantined"] == 1


def test_volatile_raw_keys_do_not_count_as_change() -> None:
    a = inv("1", 0, _info={"lastUpdated": "2026-01-01T00:00:00Z"})
    b = inv("1", 9, _info={"lastUpdated": "2026-01-01T00:09:00Z"})
    assert content_hash(a) == content_hash(b)
    c = inv("1", 9, customFields=[{"caption": "PO", "value": "7"}])
    assert content_hash(a) != content_hash(c)


def test_an_older_copy_never_overwrites_a_newer_one() -> None:
    newer = inv("1", 10, balance="0", status="paid")
    plan = plan_page(stored_of([newer]), [inv("1", 5, balance="10")])
    assert plan.unchanged == ("1",)


def test_equal_timestamp_with_new_content_wins() -> None:
    # Xero and others change a record without bumping its modified time: what we read last wins.
    stored = inv("1", 5, balance="10")
    plan = plan_page(stored_of([stored]), [inv("1", 5, balance="4")])
    [change] = plan.update
    assert change.record.balance == Decimal("4")


def test_duplicates_in_one_page_keep_the_latest() -> None:
    plan = plan_page({}, [inv("1", 1, balance="9"), inv("1", 3, balance="3"), inv("1", 2)])
    [change] = plan.create
    assert change.record.balance == Decimal("3")


def version(ext: str, minute: int) -> Invoice:
    """The source's record ``ext`` as it was at ``minute``: one content per timestamp."""
    balance = ["0", "5", "10"][(int(ext) * 7 + minute) % 3]
    status = ["open", "paid", "void", "deleted", "open"][(int(ext) + minute) % 5]
    if minute % 4 == 3:  # some versions differ only in their timestamp
        return inv(ext, minute, balance="10", status="open")
    return inv(ext, minute, balance=balance, status=status)


records = st.builds(version, ext=st.sampled_from(["1", "2", "3", "4"]), minute=st.integers(0, 7))
pages = st.lists(st.lists(records, max_size=6), min_size=1, max_size=5)


@given(pages)
def test_applying_the_same_page_twice_changes_nothing(pages: list[list[Invoice]]) -> None:
    store: dict[str, Invoice] = {}
    for page in pages:
        store = apply(store, page)
        again = plan_page(stored_of(list(store.values())), page)
        assert not again.writes
        assert not again.touch


@given(pages, st.randoms(use_true_random=False))
def test_any_order_of_overlapping_pages_converges(pages: list[list[Invoice]], rnd: object) -> None:
    forward: dict[str, Invoice] = {}
    for page in pages:
        forward = apply(forward, page)
    shuffled = list(pages)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    backward: dict[str, Invoice] = {}
    for page in shuffled:
        backward = apply(backward, page)
    assert {k: (content_hash(v), v.source_updated_at) for k, v in forward.items()} == {
        k: (content_hash(v), v.source_updated_at) for k, v in backward.items()
    }
