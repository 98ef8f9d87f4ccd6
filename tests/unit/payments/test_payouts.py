"""Recording payouts: a payment is paid out once; refusals change nothing and say why; the same
payout recorded twice (by hand, or by importing a file again) is a no-op."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from syncd.cli import cli
from syncd.connector import PushAccounts
from syncd.payments.csv_import import import_payouts
from syncd.payments.ledger import NewPayment, Recorded, record_payment, reverse_payment
from syncd.payments.payouts import (
    NewPayout,
    PayoutDuplicate,
    PayoutRecorded,
    PayoutRefused,
    record_payout,
)
from syncd.payments.pusher import Pusher
from syncd.store import open_store
from syncd.store.tables import payout_payments, payouts
from syncd.testing import FakeClock, store_invoice

from .conftest import POLICY, T0, FakeBooks

AddInvoice = Callable[..., None]


@pytest.fixture
def paid(engine: Engine, clock: FakeClock, add_invoice: AddInvoice) -> list[int]:
    """Payments 1-3 in USD (40, 30 and 20, fees 1.20, 1.00, 0.80) and 4 in EUR."""
    for n, currency in ((1, "USD"), (2, "USD"), (3, "USD"), (4, "EUR")):
        add_invoice("qb", f"Q{n}", f"100{n}", currency=currency)
    ids = []
    amounts = (("40.00", "1.20"), ("30.00", "1.00"), ("20.00", "0.80"), ("9.00", "0.30"))
    for n, (amount, fee) in enumerate(amounts, 1):
        done = record_payment(
            engine,
            NewPayment(
                amount=Decimal(amount),
                fee=Decimal(fee),
                received_at=clock.now(),
                invoice_number=f"100{n}",
                reference=f"ch_{n}",
            ),
            ["qb"],
            now=clock.now(),
        )
        assert isinstance(done, Recorded)
        ids.append(done.payment_id)
    return ids


def payout(engine: Engine, reference: str, fee: str, *ids: int, **kw: Any) -> Any:
    return record_payout(
        engine, NewPayout(reference, Decimal(fee), T0, payment_ids=ids, **kw), now=T0
    )


def count(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(payouts)).scalar_one(),
            conn.execute(select(func.count()).select_from(payout_payments)).scalar_one(),
        )


def test_a_payout_groups_payments_and_recording_it_again_is_a_no_op(
    engine: Engine, paid: list[int]
) -> None:
    done = payout(engine, "po_1", "2.20", paid[0], paid[1])
    assert isinstance(done, PayoutRecorded)
    assert (done.amount, done.fee, done.net, done.currency) == (
        Decimal("70.00"),
        Decimal("2.20"),
        Decimal("67.80"),
        "USD",
    )
    again = payout(engine, "po_1", "2.20", paid[1], paid[0])
    assert again == PayoutDuplicate(done.payout_id, "po_1")
    by_reference = record_payout(
        engine,
        NewPayout("po_1", Decimal("2.20"), T0, payment_references=("ch_1", "ch_2")),
        now=T0,
    )
    assert isinstance(by_reference, PayoutDuplicate)
    assert count(engine) == (1, 2)


@pytest.mark.parametrize(
    ("reference", "fee", "which", "why"),
    [
        ("po_1", "70.00", (0, 1), "is not less than the payments' total 70.00"),
        ("po_1", "-1", (0,), "negative"),
        ("po_1", "0.001", (0,), "more decimals than USD"),
        ("po_1", "1", (0, 3), "in EUR, USD: a payout is in one currency"),
        ("po_1", "1", (), "name the payments"),
        ("po_1", "1", (0, 0), "named twice"),
        ("  ", "1", (0,), "give the payout's reference"),
    ],
)
def test_refusals_store_nothing(
    engine: Engine, paid: list[int], reference: str, fee: str, which: tuple[int, ...], why: str
) -> None:
    with pytest.raises(PayoutRefused, match=why):
        payout(engine, reference, fee, *(paid[i] for i in which))
    assert count(engine) == (0, 0)


def test_unknown_and_reversed_payments_are_refused(engine: Engine, paid: list[int]) -> None:
    with pytest.raises(PayoutRefused, match="no payment 99"):
        payout(engine, "po_1", "1", 99)
    with pytest.raises(PayoutRefused, match="no payment has the reference 'ch_x'"):
        record_payout(
            engine, NewPayout("po_1", Decimal(1), T0, payment_references=("ch_x",)), now=T0
        )
    reverse_payment(engine, paid[2], "refund", now=T0)
    with pytest.raises(PayoutRefused, match="is reversed"):
        payout(engine, "po_1", "1", paid[2])


def test_a_payment_is_paid_out_once(engine: Engine, paid: list[int]) -> None:
    payout(engine, "po_1", "1.20", paid[0])
    with pytest.raises(PayoutRefused, match=f"payment {paid[0]} is already in payout po_1"):
        payout(engine, "po_2", "2.20", paid[0], paid[1])
    with pytest.raises(PayoutRefused, match=r"already recorded .* and differs"):
        payout(engine, "po_1", "2.20", paid[0], paid[1])
    assert count(engine) == (1, 1)


def test_a_payment_deposited_on_its_own_is_refused_with_the_reason(
    engine: Engine, paid: list[int], clock: FakeClock
) -> None:
    books = FakeBooks()
    Pusher(
        engine,
        targets={"qb": PushAccounts(fee_account="Fees")},
        connector_for=lambda _: books,
        clock=clock,
        policy=POLICY,
    ).run_pass()
    assert len(books.deposits) == 4  # each card payment on its own
    with pytest.raises(PayoutRefused, match=r"already has a deposit of its own: push .* is done"):
        payout(engine, "po_1", "2.20", paid[0], paid[1])


def test_csv_import_groups_rows_by_payout(engine: Engine, paid: list[int]) -> None:
    text = (
        "payout,payment_id,payment_reference,fee,paid_at,memo\n"
        f"po_1,{paid[0]},,1.20,2026-05-02,May 2\n"
        "po_1,,ch_2,1.00,2026-05-02,\n"
        "po_2,,ch_3,20.00,,\n"  # the fee eats the payout: refused alone
        f"po_3,{paid[3]},,0.30,2026-05-02,\n"
        f"po_3,{paid[3]},,0.30,2026-05-03,\n"  # paid_at disagrees
    )
    report = import_payouts(engine, text.splitlines(keepends=True), now=T0)
    assert report.lines[0].startswith("payout po_1 (rows 2, 3): recorded payout 1: 2 payment(s)")
    assert "70.00 - 2.20 fee = 67.80 USD" in report.lines[0]
    assert "payout po_2 (row 4): refused: the fee 20.00 is not less" in report.lines[1]
    assert "refused: its rows give different paid_at" in report.lines[2]
    assert report.summary() == "3 payouts: 1 recorded, 0 already recorded, 2 refused"
    again = import_payouts(engine, text.splitlines(keepends=True), now=T0)
    assert again.counts["duplicate"] == 1 and count(engine) == (1, 2)
    with engine.connect() as conn:
        row = conn.execute(select(payouts)).one()
    assert row.paid_at == dt.datetime(2026, 5, 2, tzinfo=dt.UTC) and row.memo == "May 2"


@pytest.mark.parametrize(
    ("header", "why"),
    [
        ("payout,amount\n", "unknown column"),
        ("payout,fee\n", "payment_id or payment_reference"),
        ("", "the file is empty"),
    ],
)
def test_csv_import_refuses_a_bad_header(engine: Engine, header: str, why: str) -> None:
    with pytest.raises(PayoutRefused, match=why):
        import_payouts(engine, [header] if header else [], now=T0)


def test_the_command_line(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'syncd.db'}"
    config = tmp_path / "config.toml"
    config.write_text(f'[store]\nurl = "{store}"\n')
    engine = open_store(store)
    try:
        for n in (1, 2):
            store_invoice(engine, "qb", f"Q{n}", f"100{n}")
            record_payment(
                engine,
                NewPayment(
                    amount=Decimal("50.00"),
                    fee=Decimal("1.50"),
                    received_at=T0,
                    invoice_number=f"100{n}",
                    reference=f"ch_{n}",
                ),
                ["qb"],
                now=T0,
            )
    finally:
        engine.dispose()
    runner = CliRunner()

    def syncd(*args: str) -> Any:
        return runner.invoke(cli, ["--config", str(config), *args], catch_exceptions=False)

    done = syncd("payouts", "record", "--reference", "po_7", "--payments", "1,2", "--fee", "3")
    assert done.exit_code == 0, done.output
    assert "recorded payout 1 (po_7): payments 1, 2, 100.00 - 3 fee = 97.00 USD" in done.output
    again = syncd("payouts", "record", "--reference", "po_7", "--payments", "2,1", "--fee", "3")
    assert again.exit_code == 0 and "already recorded as payout 1" in again.output
    refused = syncd("payouts", "record", "--reference", "po_8", "--payments", "1", "--fee", "1")
    assert refused.exit_code == 2 and "payment 1 is already in payout po_7" in refused.output
    assert "po_7: payments 1, 2, 100.00 - 3 fee = 97.00 USD" in syncd("payouts", "list").output
    shown = syncd("payments", "show", "2")
    assert "paid out in payout 1 (po_7), fee 3" in shown.output
