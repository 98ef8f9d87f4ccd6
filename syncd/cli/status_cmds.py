"""``syncd status``: what synced when, what is stuck, what needs a person."""

from __future__ import annotations

import datetime as dt
import json

import click

from syncd.cli._context import AppContext
from syncd.status import build_status
from syncd.store.reports import unapplied_payments


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--connection", "names", multiple=True, help="Only this connection (repeatable).")
@click.pass_obj
def status(app: AppContext, as_json: bool, names: tuple[str, ...]) -> None:
    """Show, per connection and stream, the last run, the last success, the lag behind the source,
    and the quarantined records, review items and payments that need attention."""
    report = build_status(app.engine, app.settings, names, dt.datetime.now(dt.UTC))
    if as_json:
        click.echo(json.dumps(report.model_dump(mode="json"), indent=2))
        return
    if not report.streams:
        click.echo("no sync has run yet: try `syncd sync`")
    for s in report.streams:
        lag = s.lag_seconds
        lag_text = "never succeeded" if lag is None else f"last success {_ago(lag)} ago"
        resume = ", resumes an interrupted pass" if s.resuming else ""
        next_text = f", next run {s.next_run:%Y-%m-%d %H:%M} UTC" if s.next_run else ""
        click.echo(
            f"{s.connection}/{s.stream}: {s.rows} rows, "
            f"last run {s.last_status}, {lag_text}{next_text}{resume}"
        )
        if s.last_error and s.last_status != "succeeded":
            click.echo(f"  error: {s.last_error}")
    click.echo(
        f"quarantined records: {report.quarantined}, open review items: "
        f"{report.review_items}, unapplied payments: {report.unapplied_payments}, "
        f"pushes pending: {report.pushes_pending}, dead: {report.pushes_dead}"
    )
    with app.engine.connect() as conn:
        held = unapplied_payments(conn)
    for p in held:
        invoice = f"invoice {p['invoice_number']}" if p["invoice_number"] else "no invoice"
        why = f" ({p['hold_reason']})" if p["hold_reason"] else ""
        click.echo(
            f"  unapplied payment {p['id']}: {p['amount']} {p['currency']}, {invoice}, "
            f"received {p['received_at']:%Y-%m-%d}, memo: {p['memo'] or '-'}{why}"
        )


def _ago(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"
