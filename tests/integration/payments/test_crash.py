"""Kill the pusher (a real ``python -m syncd push``, SIGKILL) at every step: nothing doubles.

The ConnectWise sandbox runs in this process; each ``syncd`` command is its own process on a
SQLite store. ``SYNCD_CRASH_AT`` makes the pusher SIGKILL itself at a named step (test-only hook,
``syncd.payments.pusher.crash_point``). After the crashes, plain ``syncd push`` runs finish the
job, and every payment is in the sandbox exactly once, with our marker, and every push is done
with the sandbox's id.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connectors.connectwise.sandbox import ConnectWiseSandbox
from syncd.store import open_store
from syncd.store.tables import payment_pushes

LEASE_SECONDS = 1


@dataclass
class Done:
    code: int
    out: str
    err: str


@pytest.fixture
def cw() -> Iterator[ConnectWiseSandbox]:
    with ConnectWiseSandbox(seed=21, companies=5, invoices=16) as sandbox:
        yield sandbox


@pytest.fixture
def syncd(tmp_path: Path, cw: ConnectWiseSandbox) -> Callable[..., Done]:
    (tmp_path / "config.toml").write_text(
        '[store]\nurl = "sqlite:///./syncd.db"\n\n'
        f'[payments]\nlease = "{LEASE_SECONDS}s"\nsettle_after = "0s"\nretry_base = "1s"\n\n'
        + cw.config_snippet("cw")
        + "receives_payments = true\n"
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


def open_invoices(cw: ConnectWiseSandbox, count: int) -> list[dict[str, Any]]:
    found = [
        i
        for i in cw.all_invoices()
        if i["type"] != "CreditMemo"
        and i["balance"] >= 50
        and i["payments"] == 0
        and i["currency"]["currencyCode"] == "USD"
    ]
    assert len(found) >= count
    return found[:count]


def crash(syncd: Callable[..., Done], step: str) -> None:
    done = syncd("push", crash_at=step)
    assert done.code == -signal.SIGKILL, (step, done.code, done.err)
    time.sleep(LEASE_SECONDS + 0.2)  # the dead worker's lease runs out


def assert_exactly_once(
    tmp_path: Path, cw: ConnectWiseSandbox, invoices: list[dict[str, Any]]
) -> list[Any]:
    engine = open_store(f"sqlite:///{tmp_path / 'syncd.db'}")
    try:
        with engine.connect() as conn:
            rows = list(conn.execute(select(payment_pushes).order_by(payment_pushes.c.id)))
    finally:
        engine.dispose()
    assert len(rows) == len(invoices)
    for row, invoice in zip(rows, invoices, strict=True):
        ours = [p for p in cw.payments(invoice["id"]) if p["appliedBy"] == row.marker]
        assert len(ours) == 1, (row.marker, cw.payments(invoice["id"]))
        assert row.status == "done" and row.external_id == str(ours[0]["id"])
        assert len(cw.payments(invoice["id"])) == 1  # nothing else either
    return rows


def test_killed_after_send_before_commit_is_settled_by_marker(
    syncd: Callable[..., Done], cw: ConnectWiseSandbox, tmp_path: Path
) -> None:
    [invoice] = open_invoices(cw, 1)
    recorded = syncd(
        "payments", "record", "--invoice", invoice["invoiceNumber"], "--amount", "10.00",
        "--reference", "ch_kill",
    )  # fmt: skip
    assert recorded.code == 0, recorded.err
    crash(syncd, "after_send_before_commit")
    assert len(cw.payments(invoice["id"])) == 1  # it landed before the kill
    done = syncd("push")
    assert done.code == 0 and "1 settled" in done.out, done.out + done.err
    [row] = assert_exactly_once(tmp_path, cw, [invoice])
    assert row.settled_by == "marker"
    assert "nothing due" in syncd("push").out


@pytest.mark.slow
def test_killed_at_every_step_each_payment_lands_exactly_once(
    syncd: Callable[..., Done], cw: ConnectWiseSandbox, tmp_path: Path
) -> None:
    invoices = open_invoices(cw, 3)
    for n, invoice in enumerate(invoices):
        done = syncd(
            "payments", "record", "--invoice", invoice["invoiceNumber"], "--amount", "10.00",
            "--reference", f"ch_{n}",
        )  # fmt: skip
        assert done.code == 0, done.err
    # Push 1 meets every step: claimed, then searched, sent, searched again, marked done;
    # push 2 is killed after its send; push 3 goes out in the last, clean run.
    for step in (
        "after_claim_commit",
        "after_find_before_commit",  # the search found nothing
        "after_send_before_commit",
        "after_find_before_commit",  # the search found it
        "after_done_commit",
        "after_send_before_commit",
    ):
        crash(syncd, step)
    done = syncd("push")
    assert done.code == 0, done.out + done.err
    rows = assert_exactly_once(tmp_path, cw, invoices)
    assert [r.settled_by for r in rows] == ["marker", "marker", "send"]
