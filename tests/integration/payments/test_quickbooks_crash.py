"""Kill a real ``python -m syncd push`` (SIGKILL) in the middle of a QuickBooks batch and of a
deposit: after plain runs finish the job, each payment is in QuickBooks exactly once and in
exactly one Deposit, with the fee line, and nothing was sent twice.

The QuickBooks sandbox runs in this process (throttled as Intuit documents); each ``syncd``
command is its own process on a SQLite store. ``SYNCD_CRASH_AT`` names the step at which the
pusher kills itself (``syncd.payments.pusher.crash_point``).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connectors.quickbooks_online.sandbox import QuickBooksSandbox
from syncd.model import PaymentMethod
from syncd.payments.ledger import NewPayment, Recorded, record_payment
from syncd.store import open_store
from syncd.store.tables import payment_pushes

LEASE_SECONDS = 1
PAYMENTS = 4


@dataclass
class Done:
    code: int
    out: str
    err: str


@pytest.fixture
def qbo() -> Iterator[QuickBooksSandbox]:
    with QuickBooksSandbox(seed=31, customers=3, invoices=0) as sandbox:
        customer = next(c for c in sandbox.all_customers() if c["Active"])
        for n in range(PAYMENTS):
            sandbox.add_invoice(customer["Id"], "80.00", DocNumber=f"K-{n}")
        yield sandbox
        assert sandbox.server.errors == []


@pytest.fixture
def syncd(tmp_path: Path, qbo: QuickBooksSandbox) -> Callable[..., Done]:
    (tmp_path / "config.toml").write_text(
        '[store]\nurl = "sqlite:///./syncd.db"\n\n'
        f'[payments]\nlease = "{LEASE_SECONDS}s"\nsettle_after = "0s"\nretry_base = "1s"\n\n'
        + qbo.config_snippet("books")
        + 'receives_payments = true\nfee_account = "Merchant Fees"\n'
        + 'deposit_bank_account = "Checking"\n'
    )

    def run(*args: str, crash_at: str | None = None) -> Done:
        env = {k: v for k, v in os.environ.items() if k not in ("SYNCD_CONFIG", "SYNCD_CRASH_AT")}
        if crash_at:
            env["SYNCD_CRASH_AT"] = crash_at
        done = subprocess.run(
            [sys.executable, "-m", "syncd", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return Done(done.returncode, done.stdout, done.stderr)

    assert run("sync").code == 0
    return run


def crash(syncd: Callable[..., Done], step: str) -> None:
    done = syncd("push", crash_at=step)
    assert done.code == -signal.SIGKILL, (step, done.code, done.err)
    time.sleep(LEASE_SECONDS + 0.2)  # the dead worker's lease runs out


def rows(tmp_path: Path) -> list[Any]:
    engine = open_store(f"sqlite:///{tmp_path / 'syncd.db'}")
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(payment_pushes).order_by(payment_pushes.c.id)))
    finally:
        engine.dispose()


def test_killed_in_a_batch_and_in_a_deposit_everything_lands_once(
    syncd: Callable[..., Done], qbo: QuickBooksSandbox, tmp_path: Path
) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'syncd.db'}")
    try:  # recorded in this process: the same ledger call as `syncd payments record`
        for n in range(PAYMENTS):
            done = record_payment(
                engine,
                NewPayment(
                    amount=Decimal("50.00"),
                    fee=Decimal("1.75"),
                    method=PaymentMethod.CARD,
                    received_at=dt.datetime.now(dt.UTC),
                    invoice_number=f"K-{n}",
                    reference=f"ch_k{n}",
                ),
                ["books"],
                now=dt.datetime.now(dt.UTC),
            )
            assert isinstance(done, Recorded), done
    finally:
        engine.dispose()
    deposits_before = len(qbo.deposits())

    crash(syncd, "after_send_before_commit")  # the batch of 4 landed, nothing committed
    assert {r.status for r in rows(tmp_path)} == {"in_flight"}
    crash(syncd, "after_send_before_commit")  # 4 settled by marker; the first deposit sent
    done = syncd("push")
    assert done.code == 0, done.out + done.err

    found = rows(tmp_path)
    payments = [r for r in found if r.kind == "push"]
    deposits = [r for r in found if r.kind == "deposit"]
    assert {r.status for r in found} == {"done"} and len(deposits) == PAYMENTS
    assert [r.settled_by for r in payments] == ["marker"] * PAYMENTS
    assert [r.settled_by for r in deposits] == ["marker"] + ["send"] * (PAYMENTS - 1)
    posts = [e for e in qbo.log.entries if e.method == "POST"]
    assert len([e for e in posts if e.path.endswith("/batch")]) == 1
    assert not [e for e in posts if e.path.endswith("/payment")]  # never re-sent alone
    assert len([e for e in posts if e.path.endswith("/deposit")]) == PAYMENTS

    assert len(qbo.deposits()) == deposits_before + PAYMENTS
    for row in payments:
        invoice = next(i for i in qbo.all_invoices() if i["Id"] == row.invoice_external_id)
        [payment] = qbo.payments_for_invoice(invoice["Id"])
        assert payment["Id"] == row.external_id and row.marker in payment["PrivateNote"]
        deposit = qbo.deposit(str(qbo.deposit_of(payment["Id"])))
        assert Decimal(str(deposit["TotalAmt"])) == Decimal("48.25")
    assert "nothing due" in syncd("push").out
