"""``syncd run``: APScheduler wiring, signals and a graceful stop. No business logic lives here.

One job per enabled connection on its schedule, ``max_instances=1`` (a run never overlaps itself)
and ``coalesce=True`` (missed runs collapse into one). Each job's first run is delayed by a random
start-up jitter so that many connections do not fire at once. SIGTERM or SIGINT stops taking new
runs and waits up to ``daemon.stop_timeout`` for running pages to commit; a second signal exits at
once (every committed page is safe: pages commit atomically with their cursor).
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
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import Engine

from syncd.clock import SystemClock
from syncd.config.models import Settings
from syncd.config.schedule import Schedule
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


def sync_job(settings: Settings, engine: Engine, name: str) -> None:
    connection = settings.connection(name)
    connector = build_connector(settings, connection)
    try:
        sync_connection(engine, connection, connector, clock=SystemClock())
    finally:
        connector.close()


def sweep_job(settings: Settings, engine: Engine, name: str) -> None:
    connection = settings.connection(name)
    connector = build_connector(settings, connection)
    try:
        sweep_connection(engine, connection, connector, clock=SystemClock())
    finally:
        connector.close()


class Daemon:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.stopping = threading.Event()
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=4)},
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 300},
            timezone=dt.UTC,
        )

    def schedule(self) -> int:
        jitter = self.settings.daemon.startup_jitter
        count = 0
        for name, connection in sorted(self.settings.connections.items()):
            if not connection.enabled:
                continue
            self.scheduler.add_job(
                sync_job,
                trigger_for(connection.schedule, jitter),
                args=(self.settings, self.engine, name),
                id=f"pull:{name}",
                name=f"pull {name}",
            )
            self.scheduler.add_job(
                sweep_job,
                trigger_for(connection.sweep, connection.sweep.seconds or jitter),
                args=(self.settings, self.engine, name),
                id=f"sweep:{name}",
                name=f"sweep {name}",
            )
            count += 2
        return count

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.stopping.is_set():
            log.warning("daemon_exit_now", signal=signal.Signals(signum).name)
            os._exit(1)
        log.info("daemon_stopping", signal=signal.Signals(signum).name)
        self.stopping.set()

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        jobs = self.schedule()
        self.scheduler.start()
        log.info("daemon_started", jobs=jobs, pid=os.getpid())
        self.stopping.wait()
        self.scheduler.pause()
        done = threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": True}, daemon=True)
        done.start()
        done.join(self.settings.daemon.stop_timeout)
        if done.is_alive():
            log.warning("daemon_stop_timeout", timeout=self.settings.daemon.stop_timeout)
        log.info("daemon_stopped")
