"""Liveness and readiness: what a load balancer or an orchestrator asks the daemon."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.engine import Engine

from syncd.api.health import evaluate_readiness
from syncd.config.models import Settings
from syncd.config.schedule import Schedule
from syncd.daemon import SchedulerStatus
from syncd.store import create_store_engine
from syncd.store.state import finish_run, start_run
from syncd.testing import FakeClock

T0 = dt.datetime(2026, 5, 1, 9, tzinfo=dt.UTC)  # the fake clock's start and the daemon's
H = dt.timedelta(hours=1)
M = dt.timedelta(minutes=1)
Serve = Callable[..., str]


def ran(engine: Engine, stream: str, at: dt.datetime, status: str = "succeeded") -> None:
    with engine.begin() as tx:
        row = start_run(tx, f"r-{stream}-{at:%H%M}", "acme", stream, at - M)
        finish_run(tx, row, status, at)


def test_healthz_answers_while_the_process_serves(serve: Serve) -> None:
    response = requests.get(f"{serve()}/healthz", timeout=5)
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_is_ready_with_a_fresh_success(serve: Serve, store: Engine) -> None:
    ran(store, "customers", T0 - 10 * M)
    response = requests.get(f"{serve()}/readyz", timeout=5)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ready"] is True and body["reasons"] == []
    assert body["store"] is True and body["scheduler_running"] is True and body["jobs"] == 2
    assert [(c["connection"], c["stream"], c["stuck"]) for c in body["connections"]] == [
        ("acme", "customers", False)
    ]  # the disabled connection is not judged


def test_readyz_lists_every_reason_with_503(
    serve: Serve, store: Engine, clock: FakeClock, scheduler: Any
) -> None:
    ran(store, "customers", T0 - 10 * M)
    ran(store, "invoices", T0 - 10 * M)
    scheduler.running, scheduler.started_at = False, T0 - 5 * H
    url = serve()
    clock.advance((3 * H + 16 * M).total_seconds())
    response = requests.get(f"{url}/readyz", timeout=5)
    assert response.status_code == 503
    reasons = response.json()["reasons"]
    assert reasons[0] == "scheduler: not running (starting, paused or stopping)"
    assert len(reasons) == 3
    assert reasons[1].startswith("acme/customers: no successful pull since 2026-05-01T08:50")
    assert "(stuck_after 3h)" in reasons[1] and reasons[2].startswith("acme/invoices:")


def test_readyz_when_the_store_does_not_answer(serve: Serve, tmp_path: Path) -> None:
    folder = tmp_path / "gone"
    folder.mkdir()
    engine = create_store_engine(f"sqlite:///{folder / 'x.db'}")
    folder.rmdir()
    try:
        response = requests.get(f"{serve(engine=engine)}/readyz", timeout=5)
    finally:
        engine.dispose()
    assert response.status_code == 503
    assert response.json()["reasons"] == ["store: does not answer"]


Judge = Callable[..., list[str]]


@pytest.fixture
def judge(make_settings: Callable[..., Settings]) -> Judge:
    """The readiness reasons for ``successes`` at ``now``, the daemon started at ``started_at``."""

    def reasons(
        successes: dict[tuple[str, str], dt.datetime | None],
        now: dt.datetime,
        started_at: dt.datetime | None = T0,
        settings: Settings | None = None,
        **daemon: object,
    ) -> list[str]:
        readiness = evaluate_readiness(
            settings or make_settings(**daemon),
            successes,
            running=True,
            started_at=started_at,
            jobs=2,
            now=now,
        )
        assert readiness.ready is not bool(readiness.reasons)
        return readiness.reasons

    return reasons


def test_a_connection_that_never_ran_is_stuck_only_stuck_after_past_the_start(
    judge: Judge,
) -> None:
    assert judge({}, T0 + 3 * H - M) == []
    assert judge({}, T0 + 3 * H) == [
        "acme: no successful pull since the daemon started; a run was due at "
        "2026-05-01T09:00:00+00:00 (stuck_after 3h)"
    ]
    never = {("acme", "customers"): None}
    assert judge(never, T0 + 3 * H)[0].startswith("acme/customers: no successful pull since the")
    assert judge({}, T0 + 30 * M, stuck_after="20m") != []


def test_stuck_counts_from_the_first_run_due_after_the_last_success(judge: Judge) -> None:
    last = {("acme", "invoices"): T0}
    # Schedule 15m: the next run was due at 09:15; stuck 3h after that.
    assert judge(last, T0 + 3 * H + 14 * M, started_at=T0 - H) == []
    assert judge(last, T0 + 3 * H + 15 * M, started_at=T0 - H) != []


def test_time_the_daemon_was_down_is_not_held_against_a_connection(judge: Judge) -> None:
    last = {("acme", "invoices"): T0 - 48 * H}
    assert judge(last, T0 + 2 * H, started_at=T0) == []
    assert judge(last, T0 + 3 * H, started_at=T0) != []


def test_sweeps_are_not_judged_and_a_recovery_clears_the_reason(judge: Judge) -> None:
    successes: dict[tuple[str, str], dt.datetime | None] = {
        ("acme", "invoices:sweep"): T0 - 30 * H,
        ("acme", "invoices"): T0 + 4 * H,
    }
    assert judge(successes, T0 + 5 * H) == []


def test_a_cron_schedule_is_due_at_its_next_fire_time(
    judge: Judge, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    acme = settings.connections["acme"].model_copy(update={"schedule": Schedule.parse("0 6 * * *")})
    nightly = settings.model_copy(update={"connections": {"acme": acme}})
    last = {("acme", "invoices"): T0}  # 09:00; the next fire is 06:00 the day after
    next_fire = dt.datetime(2026, 5, 2, 6, tzinfo=dt.UTC)
    assert judge(last, next_fire + 3 * H - M, settings=nightly) == []
    assert judge(last, next_fire + 3 * H, settings=nightly) != []


def test_the_daemon_scheduler_state_turns_not_running_as_a_stop_begins() -> None:
    scheduler = BackgroundScheduler(timezone=dt.UTC)
    scheduler.add_job(print, "interval", hours=1, id="pull:acme")
    state = SchedulerStatus(scheduler, FakeClock(T0))
    assert not state.running and state.started_at is None
    scheduler.start()
    try:
        state.mark_started()
        assert state.running and state.started_at == T0 and state.job_count() == 1
        state.stopping = True
        assert not state.running
    finally:
        scheduler.shutdown(wait=False)
