"""``syncd status``: what synced when, what is stuck, what needs a person."""

from __future__ import annotations

import datetime as dt
import json

import click
from apscheduler.triggers.cron import CronTrigger

from syncd.cli._context import AppContext
from syncd.config.schedule import Schedule
from syncd.store.reports import open_counts, stream_statuses


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--connection", "names", multiple=True, help="Only this connection (repeatable).")
@click.pass_obj
def status(app: AppContext, as_json: bool, names: tuple[str, ...]) -> None:
    """Show, per connection and stream, the last run, the last success, the lag behind the source,
    and the quarantined records, review items and payments that need attention."""
    now = dt.datetime.now(dt.UTC)
    with app.engine.connect() as conn:
        streams = stream_statuses(conn, list(names))
        counts = open_counts(conn)
    configured = sorted(app.settings.connections)
    upcoming = {
        s.connection: next_run(
            app.settings.connections[s.connection].schedule, s.last_started_at, now
        )
        for s in streams
        if s.connection in app.settings.connections
    }
    if as_json:
        payload = {
            "connections": configured,
            "streams": [
                {
                    "connection": s.connection,
                    "stream": s.stream,
                    "last_status": s.last_status,
                    "last_started_at": _iso(s.last_started_at),
                    "last_success_at": _iso(s.last_success_at),
                    "last_error": s.last_error,
                    "watermark": _iso(s.watermark),
                    "lag_seconds": _lag(now, s.last_success_at),
                    "next_run": _iso(upcoming.get(s.connection)),
                    "resuming": s.in_pass,
                    "rows": s.rows,
                }
                for s in streams
            ],
            **counts,
        }
        click.echo(json.dumps(payload, indent=2))
        return
    if not streams:
        click.echo("no sync has run yet: try `syncd sync`")
    for s in streams:
        lag = _lag(now, s.last_success_at)
        lag_text = "never succeeded" if lag is None else f"last success {_ago(lag)} ago"
        resume = ", resumes an interrupted pass" if s.in_pass else ""
        when = upcoming.get(s.connection)
        next_text = f", next run {when:%Y-%m-%d %H:%M} UTC" if when else ""
        click.echo(
            f"{s.connection}/{s.stream}: {s.rows} rows, "
            f"last run {s.last_status}, {lag_text}{next_text}{resume}"
        )
        if s.last_error and s.last_status != "succeeded":
            click.echo(f"  error: {s.last_error}")
    click.echo(
        f"quarantined records: {counts['quarantined']}, open review items: "
        f"{counts['review_items']}, unapplied payments: {counts['unapplied_payments']}, "
        f"pushes pending: {counts['pushes_pending']}, dead: {counts['pushes_dead']}"
    )


def next_run(schedule: Schedule, last: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    """When the daemon will next pull: an interval after the last start, or the cron's next time."""
    if schedule.seconds is not None:
        if last is None:
            return now
        return max(now, last + dt.timedelta(seconds=schedule.seconds))
    assert schedule.cron is not None
    fire = CronTrigger.from_crontab(schedule.cron, timezone="UTC").get_next_fire_time(None, now)
    assert isinstance(fire, dt.datetime)
    return fire.astimezone(dt.UTC)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _lag(now: dt.datetime, then: dt.datetime | None) -> int | None:
    return None if then is None else int((now - then).total_seconds())


def _ago(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"
