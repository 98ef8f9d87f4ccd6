"""Idempotency keys and markers: deterministic, distinct per push, short enough for vendors."""

from __future__ import annotations

import datetime as dt

from syncd.payments.keys import deposit_names, push_names

T = dt.datetime(2026, 5, 1, 9, 0, 0, 123456, tzinfo=dt.UTC)


def test_names_are_deterministic_and_fit_vendor_fields() -> None:
    one = push_names(7, T, "qb", "1001", "push")
    assert one == push_names(
        7, T.astimezone(dt.timezone(dt.timedelta(hours=2))), "qb", "1001", "push"
    )
    assert one.marker.startswith("syncd:") and len(one.marker) == 21  # QBO PaymentRefNum: 21
    assert one.key.startswith("syncd-") and len(one.key) <= 50  # QBO requestid: 50
    assert one.marker.isascii() and one.key.isascii()


def test_every_part_changes_both_names() -> None:
    base = push_names(7, T, "qb", "1001", "push")
    others = [
        push_names(8, T, "qb", "1001", "push"),
        push_names(7, T + dt.timedelta(microseconds=1), "qb", "1001", "push"),
        push_names(7, T, "cw", "1001", "push"),
        push_names(7, T, "qb", "1002", "push"),
        push_names(7, T, "qb", "1001", "reverse"),
    ]
    assert len({base.key, *(o.key for o in others)}) == 6
    assert len({base.marker, *(o.marker for o in others)}) == 6


def test_a_deposit_has_names_of_its_own() -> None:
    one = deposit_names(3, T, "qb")
    assert one == deposit_names(3, T, "qb")
    assert one.marker.startswith("syncd:") and len(one.marker) == 21
    assert one.key.startswith("syncd-") and len(one.key) <= 50
    others = [
        deposit_names(4, T, "qb"),
        deposit_names(3, T, "xero"),
        push_names(3, T, "qb", "", "deposit"),
    ]
    assert len({one.key, *(o.key for o in others)}) == 4
    assert len({one.marker, *(o.marker for o in others)}) == 4
