"""``syncd payments`` and ``syncd push`` as a user meets them: real processes, plain answers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from syncd.store import open_store
from syncd.testing import store_invoice

Run = Callable[..., Any]

CONFIG = """
[store]
url = "sqlite:///./syncd.db"

[payments]
settle_after = "0s"

[connections.qb]
connector = "fakepay"
receives_payments = true
token = "tok-123456"
refuse = {refuse}
"""


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    """The in-memory payments target, installed as a plugin the way any package would be."""
    dist = tmp_path / "plugins" / "syncd_test_payments-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: syncd-test-payments\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[syncd.connectors]\nfakepay = syncd.testing:FakePaymentsConnector\n"
    )
    return dist.parent


@pytest.fixture
def shop(tmp_path: Path) -> Callable[..., None]:
    """Write the config and store invoices 1001 (100.00 USD) and 1002 (void) in qb."""

    def make(refuse: bool = False) -> None:
        (tmp_path / "config.toml").write_text(CONFIG.format(refuse=str(refuse).lower()))
        engine = open_store(f"sqlite:///{tmp_path / 'syncd.db'}")
        store_invoice(engine, "qb", "Q1", "1001")
        store_invoice(engine, "qb", "Q2", "1002", status="void")
        engine.dispose()

    return make


def test_record_then_push(syncd: Run, shop: Callable[..., None]) -> None:
    shop()
    done = syncd(
        "payments", "record", "--invoice", "1001", "--amount", "40.00", "--reference", "ch_1"
    )
    assert done.code == 0, done.err
    assert "recorded payment 1: 40.00 USD to invoice 1001 (40.00)" in done.out
    assert "push to qb: queued" in done.out
    again = syncd(
        "payments", "record", "--invoice", "1001", "--amount", "40.00", "--reference", "ch_1"
    )
    assert again.code == 0
    assert "already recorded as payment 1 (reference ch_1); nothing changed" in again.out
    pushed = syncd("push")
    assert pushed.code == 0, pushed.err
    assert "push: 1 done" in pushed.out
    shown = json.loads(syncd("payments", "show", "1", "--json").out)
    assert shown["pushes"][0]["status"] == "done" and shown["pushes"][0]["external_id"]
    assert "40.00 USD applied" in syncd("payments", "list").out


BAD = [
    (["--invoice", "1001", "--amount", "12.345"], "amount 12.345 has more decimals than USD"),
    (["--invoice", "1001", "--amount", "-1"], "amount must be positive"),
    (["--invoice", "1001", "--amount", "5", "--currency", "EUR"], "invoice 1001 is in USD"),
    (["--invoice", "9999", "--amount", "5"], "invoice 9999 is not in the store"),
    (["--invoice", "1002", "--amount", "5"], "invoice 1002 is void in qb"),
    (["--invoice", "1001", "--amount", "100.01"], "more than the 100.00 USD still open"),
    (["--invoice", "1001", "--amount", "5", "--received-at", "2026-05-01T10:00"], "no timezone"),
]


def test_bad_input_is_refused_and_nothing_is_stored(syncd: Run, shop: Callable[..., None]) -> None:
    shop()
    for args, message in BAD:
        result = syncd("payments", "record", *args)
        assert result.code == 2, result.err
        assert result.err.startswith("syncd: payment refused: ") and message in result.err
        assert "nothing was stored" in result.err and "Traceback" not in result.err
    assert json.loads(syncd("payments", "list", "--json").out) == []


def test_unknown_invoice_with_a_memo_is_held_and_listed_by_status(
    syncd: Run, shop: Callable[..., None]
) -> None:
    shop()
    held = syncd(
        "payments", "record", "--invoice", "7777", "--amount", "5.00", "--currency", "usd",
        "--memo", "wire, says INV 7777",
    )  # fmt: skip
    assert held.code == 0, held.err
    assert "held payment 1: 5.00 USD as unapplied" in held.out
    status = syncd("status")
    assert "unapplied payments: 1" in status.out
    assert "unapplied payment 1: 5.00 USD, invoice 7777" in status.out
    assert "memo: wire, says INV 7777" in status.out


def test_import_reports_each_row_and_a_second_import_records_nothing(
    syncd: Run, shop: Callable[..., None], tmp_path: Path
) -> None:
    shop()
    (tmp_path / "in.csv").write_text(
        "invoice_number,amount,currency,fee,method,reference,received_at,memo,customer\n"
        "1001,10.00,USD,0.30,card,ch_1,2026-05-01,,Acme Ltd\n"
        "1001,12.345,USD,,card,ch_2,,,\n"
        ",5.00,USD,,check,chk_9,2026-05-02T10:00:00Z,cash at the desk,\n"
        "1002,5.00,,,ach,ach_1,,,\n"
    )
    first = syncd("payments", "import", "in.csv")
    assert first.code == 1  # a row was refused
    lines = first.out.splitlines()
    assert lines[0] == "row 2: recorded payment 1: 10.00 USD to invoice 1001"
    assert lines[1] == "row 3: refused: amount 12.345 has more decimals than USD allows"
    assert lines[2].startswith("row 4: held payment 2: 5.00 USD as unapplied")
    assert lines[3] == "row 5: refused: invoice 1002 is void in qb"
    assert lines[4] == "4 rows: 1 recorded, 1 held as unapplied, 0 already recorded, 2 refused"
    second = syncd("payments", "import", "in.csv")
    assert "row 2: already recorded as payment 1 (reference ch_1)" in second.out
    assert "2 already recorded" in second.out
    assert len(json.loads(syncd("payments", "list", "--json").out)) == 2


def test_import_refuses_a_bad_header(syncd: Run, shop: Callable[..., None], tmp_path: Path) -> None:
    shop()
    (tmp_path / "in.csv").write_text("invoice,amount\n1001,5.00\n")
    result = syncd("payments", "import", "in.csv")
    assert result.code == 2 and "unknown column(s) 'invoice'" in result.err


def test_import_help_documents_the_header(syncd: Run) -> None:
    out = syncd("payments", "import", "--help").out
    assert "invoice_number,amount,currency,fee,method,reference,received_at,memo,customer" in out


def test_push_list_retry_cancel(syncd: Run, shop: Callable[..., None]) -> None:
    shop(refuse=True)
    for ref in ("a", "b"):
        syncd("payments", "record", "--invoice", "1001", "--amount", "5", "--reference", ref)
    pushed = syncd("push")
    assert pushed.code == 1 and "2 dead" in pushed.out
    listed = syncd("push", "list")
    assert "1 (payment 1): dead" in listed.out and "qb refused it" in listed.out
    retried = syncd("push", "retry", "1")
    assert retried.code == 0 and "push 1 is uncertain and due now" in retried.out
    refused = syncd("push", "cancel", "1")
    assert refused.code == 2 and "may have reached qb" in refused.err
    assert syncd("push", "cancel", "2").out.strip() == "push 2 cancelled"
    assert [p["status"] for p in json.loads(syncd("push", "list", "--all", "--json").out)] == [
        "uncertain",
        "cancelled",
    ]


def test_reverse(syncd: Run, shop: Callable[..., None]) -> None:
    shop()
    syncd("payments", "record", "--invoice", "1001", "--amount", "5", "--reference", "a")
    syncd("payments", "record", "--invoice", "1001", "--amount", "5", "--reference", "b")
    syncd("push", "--limit", "1")
    first = syncd("payments", "reverse", "1", "--reason", "chargeback")
    assert first.code == 0 and "reversal queued for qb" in first.out
    second = syncd("payments", "reverse", "2", "--reason", "refund")
    assert "1 push(es) not sent yet: cancelled" in second.out
    assert "already reversed" in syncd("payments", "reverse", "2", "--reason", "x").out
    assert "1 done" in syncd("push").out
    assert syncd("payments", "reverse", "9", "--reason", "x").code == 2
