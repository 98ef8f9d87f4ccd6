"""The status report: one model behind ``syncd status`` and the HTTP app's ``GET /status``.

Both surfaces build the same ``StatusReport``, so a script that parses ``syncd status --json`` can
switch to the HTTP endpoint (or back) without noticing. Times are written with
``datetime.isoformat()`` (``+00:00``), as the command always has.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, PlainSerializer, WithJsonSchema
from sqlalchemy.engine import Engine

from syncd.config.models import Settings
from syncd.config.schedule import Schedule
from syncd.store.reports import open_counts, stream_statuses

SWEEP_SUFFIX = ":sweep"  # sync_runs.stream of a sweep run, e.g. "invoices:sweep"

Instant = Annotated[
    dt.datetime,
    PlainSerializer(lambda value: value.isoformat(), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class StreamReport(BaseModel):
    """One (connection, stream) with run history; sweeps appear as ``<stream>:sweep``."""

    model_config = ConfigDict(frozen=True)

    connection: str
    stream: str
    last_status: str | None
    last_started_at: Instant | None
    last_success_at: Instant | None
    last_error: str | None
    watermark: Instant | None
    lag_seconds: int | None  # seconds since the last success; None: never succeeded
    next_run: Instant | None  # when the daemon next runs it; None: not a configured connection
    resuming: bool  # the next pull resumes an interrupted pass
    rows: int  # live rows of this connection in the stream's table


class StatusReport(BaseModel):
    """What synced when, and what needs a person (field order is the JSON's key order)."""

    model_config = ConfigDict(frozen=True)

    connections: list[str]
    streams: list[StreamReport]
    quarantined: int
    review_items: int
    unapplied_payments: int
    pushes_pending: int
    pushes_dead: int


def build_status(
    engine: Engine, settings: Settings, names: Sequence[str], now: dt.datetime
) -> StatusReport:
    """Read the store once into a ``StatusReport``; ``names`` restricts the streams listed."""
    with engine.connect() as conn:
        streams = stream_statuses(conn, list(names))
        counts = open_counts(conn)
    reports = []
    for s in streams:
        connection = settings.connections.get(s.connection)
        upcoming = None
        if connection is not None:
            sweep = s.stream.endswith(SWEEP_SUFFIX)
            schedule = connection.sweep if sweep else connection.schedule
            upcoming = next_run(schedule, s.last_started_at, now)
        reports.append(
            StreamReport(
                connection=s.connection,
                stream=s.stream,
                last_status=s.last_status,
                last_started_at=s.last_started_at,
                last_success_at=s.last_success_at,
                last_error=s.last_error,
                watermark=s.watermark,
                lag_seconds=lag_seconds(now, s.last_success_at),
                next_run=upcoming,
                resuming=s.in_pass,
                rows=s.rows,
            )
        )
    return StatusReport(connections=sorted(settings.connections), streams=reports, **counts)


def due_after(schedule: Schedule, last: dt.datetime) -> dt.datetime:
    """The first time ``schedule`` asks for a run after ``last``: an interval later, or the cron's
    next fire time."""
    if schedule.seconds is not None:
        return last + dt.timedelta(seconds=schedule.seconds)
    assert schedule.cron is not None
    fire = CronTrigger.from_crontab(schedule.cron, timezone="UTC").get_next_fire_time(None, last)
    assert isinstance(fire, dt.datetime)
    return fire.astimezone(dt.UTC)


def next_run(schedule: Schedule, last: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    """When the daemon will next run: an interval after the last start, or the cron's next time."""
    if schedule.seconds is not None:
        return now if last is None else max(now, due_after(schedule, last))
    return due_after(schedule, now)


def lag_seconds(now: dt.datetime, then: dt.datetime | None) -> int | None:
    return None if then is None else int((now - then).total_seconds())
