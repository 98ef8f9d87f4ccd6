"""``syncd status``: what synced when, what is stuck, what needs a person."""

from __future__ import annotations

import datetime as dt
import json

import click

from syncd.cli._context import AppContext
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
        click.echo(
            f"{s.connection}/{s.stream}: {s.rows} rows, "
            f"last run {s.last_status}, {lag_text}{resume}"
        )
        if s.last_error and s.last_status != "succeeded":
            click.echo(f"  error: {s.last_error}")
    click.echo(
        f"quarantined records: {counts['quarantined']}, open review items: "
        f"{counts['review_items']}, unapplied payments: {counts['unapplied_payments']}, "
        f"pushes pending: {counts['pushes_pending']}, dead: {counts['pushes_dead']}"
    )


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
