"""``syncd run``: APScheduler wiring, signals and a graceful stop. No business logic lives here.

One job per enabled connection on its schedule, ``max_instances=1`` (a run never overlaps itself)
and ``coalesce=True`` (missed runs collapse into one). Each job's first run is delayed by a random
start-up jitter so that many connections do not fire at once. SIGTERM or SIGINT stops taking new
runs and waits up to ``daemon.stop_timeout`` for running pages to commit; a second signal exits at
once (every committed page is safe: pages commit atomically with their cursor).

Unless ``daemon.http = false``, the HTTP app (``syncd.api``: health, readiness, metrics, status,
payments API) serves on ``daemon.listen`` from a background thread: its address is bound before
any job is scheduled, it answers while running pages drain, and it stops last.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import threading
from types import FrameType

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING, BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import Engine

from syncd.clock import Clock, SystemClock
from syncd.config.models import Settings
from syncd.config.schedule import Schedule
from syncd.linking import link_all
from syncd.payments.jobs import after_sync_job, push_job
from syncd.sync import sync_connection
from syncd.sync.factory import build_connector
from syncd.sync.sweep import sweep_connection

log = structlog.get_logger("syncd.daemon")


def trigger_for(schedule: Schedule, jitter: int) -> IntervalTrigger | CronTrigger:
    if schedule.seconds is not None:
        first = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=random.uniform(0, jitter))
        return IntervalTrigger(seconds=schedule.seconds, start_date=first, timezone=dt.UTC)
    assert schedule.cron is not None
    return CronTrigger.from_crontab(schedule.cron, timezone="UTC")


def _first_run(trigger: IntervalTrigger | CronTrigger) -> dict[str, dt.datetime]:
    """An interval job first runs at its start date, even when that instant has passed as the
    scheduler starts (always, with zero jitter): APScheduler would skip to one interval later."""
    if isinstance(trigger, IntervalTrigger):
        start: dt.datetime = trigger.start_date
        return {"next_run_time": start}
    return {}  # a cron job runs at its next fire time


def sync_job(settings: Settings, engine: Engine, name: str) -> None:
    connection = settings.connection(name)
    connector = build_connector(settings, connection, engine=engine)
    try:
        results = sync_connection(engine, connection, connector, clock=SystemClock())
    finally:
        connector.close()
    link_all(engine, sorted(settings.connections), clock=SystemClock())
    after_sync_job(settings, engine, results)


def sweep_job(settings: Settings, engine: Engine, name: str) -> None:
    connection = settings.connection(name)
    connector = build_connector(settings, connection, engine=engine)
    try:
        sweep_connection(engine, connection, connector, clock=SystemClock())
    finally:
        connector.close()


class SchedulerStatus:
    """The scheduler as ``/readyz`` sees it (``syncd.api.SchedulerState``): running, started when,
    how many jobs. ``stopping`` turns readiness off as soon as a stop begins."""

    def __init__(self, scheduler: BaseScheduler, clock: Clock) -> None:
        self._scheduler = scheduler
        self._clock = clock
        self.started_at: dt.datetime | None = None
        self.stopping = False

    @property
    def running(self) -> bool:
        return bool(self._scheduler.state == STATE_RUNNING) and not self.stopping

    def job_count(self) -> int:
        return len(self._scheduler.get_jobs())

    def mark_started(self) -> None:
        self.started_at = self._clock.now()


class Daemon:
    def __init__(self, settings: Settings, engine: Engine, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.stopping = threading.Event()
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=4)},
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 300},
            timezone=dt.UTC,
        )
        self.status = SchedulerStatus(self.scheduler, clock or SystemClock())

    def schedule(self) -> int:
        jitter = self.settings.daemon.startup_jitter
        count = 0
        for name, connection in sorted(self.settings.connections.items()):
            if not connection.enabled:
                continue
            pull = trigger_for(connection.schedule, jitter)
            self.scheduler.add_job(
                sync_job,
                pull,
                args=(self.settings, self.engine, name),
                id=f"pull:{name}",
                name=f"pull {name}",
                **_first_run(pull),
            )
            sweep = trigger_for(connection.sweep, connection.sweep.seconds or jitter)
            self.scheduler.add_job(
                sweep_job,
                sweep,
                args=(self.settings, self.engine, name),
                id=f"sweep:{name}",
                name=f"sweep {name}",
                **_first_run(sweep),
            )
            count += 2
        if any(c.enabled and c.receives_payments for c in self.settings.connections.values()):
            every = self.settings.payments.push_every
            push = IntervalTrigger(seconds=every, timezone=dt.UTC)
            self.scheduler.add_job(
                push_job,
                push,
                args=(self.settings, self.engine),
                id="push",
                name="push payments",
                **_first_run(push),
            )
            count += 1
        return count

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.stopping.is_set():
            log.warning("daemon_exit_now", signal=signal.Signals(signum).name)
            os._exit(1)
        log.info("daemon_stopping", signal=signal.Signals(signum).name)
        self.stopping.set()

    def run(self) -> None:
        # Imported here: FastAPI and uvicorn take ~0.2 s to import, which other commands skip.
        from syncd.api import ApiServer, create_app, protected_routers

        daemon = self.settings.daemon
        server = ApiServer.bind(*daemon.listen_address) if daemon.http else None
        try:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
            jobs = self.schedule()
            self.scheduler.start()
            self.status.mark_started()
            if server is not None:
                server.start(
                    create_app(self.settings, self.engine, self.status, routers=protected_routers())
                )
            log.info("daemon_started", jobs=jobs, pid=os.getpid())
            self.stopping.wait()
            self.status.stopping = True
            self.scheduler.pause()
            done = threading.Thread(
                target=self.scheduler.shutdown, kwargs={"wait": True}, daemon=True
            )
            done.start()
            done.join(daemon.stop_timeout)
            if done.is_alive():
                log.warning("daemon_stop_timeout", timeout=daemon.stop_timeout)
        finally:
            if server is not None:
                server.stop()
        log.info("daemon_stopped")
