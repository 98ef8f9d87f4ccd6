"""``syncd sync``: one pull pass over the configured connections, then exit."""

from __future__ import annotations

import click

from syncd.cli._context import AppContext
from syncd.cli._render import print_links, print_results, print_sweeps
from syncd.clock import SystemClock
from syncd.errors import SyncdError
from syncd.linking import link_all
from syncd.payments.jobs import after_sync_job
from syncd.payments.verify import describe
from syncd.store import store_lock
from syncd.sync import PullResult, sync_connection
from syncd.sync.factory import build_connector
from syncd.sync.sweep import SweepResult, sweep_connection


@click.command()
@click.option("--connection", "names", multiple=True, help="Only this connection (repeatable).")
@click.option(
    "--sweep",
    is_flag=True,
    help="Also list every record to find deletions and balances that drifted (normally daily).",
)
@click.pass_obj
def sync(app: AppContext, names: tuple[str, ...], sweep: bool) -> None:
    """Pull customers and invoices from each enabled connection once, then exit.

    Exit status 0 when every stream synced, 1 when any failed (the others still ran).
    """
    settings = app.settings
    try:
        chosen = (
            [settings.connection(n) for n in names]
            if names
            else [c for c in settings.connections.values() if c.enabled]
        )
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="--connection") from None
    if not chosen:
        click.echo("nothing to sync: no enabled connections in the config", err=True)
        return
    lock = store_lock(app.engine, "syncd sync")
    if lock is not None:
        lock.acquire()
    results: list[PullResult] = []
    sweeps: list[SweepResult] = []
    try:
        for connection in chosen:
            try:
                connector = build_connector(settings, connection, engine=app.engine)
            except SyncdError as exc:
                raise SyncdError(f"connection {connection.name}: {exc}") from None
            try:
                results += sync_connection(app.engine, connection, connector, clock=SystemClock())
                if sweep:
                    sweeps += sweep_connection(
                        app.engine, connection, connector, clock=SystemClock()
                    )
            finally:
                connector.close()
        links = link_all(app.engine, sorted(settings.connections), clock=SystemClock())
        paid = after_sync_job(settings, app.engine, results)
    finally:
        if lock is not None:
            lock.release()
    print_results(results)
    print_sweeps(sweeps)
    print_links(links)
    for line in describe(paid):
        click.echo(line)
    if not all(r.ok for r in results) or not all(s.ok for s in sweeps):
        raise SystemExit(1)
