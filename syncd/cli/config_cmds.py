"""``syncd check-config``: validate the configuration without touching the network."""

from __future__ import annotations

import click

from syncd.cli._context import AppContext


@click.command("check-config")
@click.pass_obj
def check_config(app: AppContext) -> None:
    """Validate the config file: syntax, keys, schedules, secrets and each connector's settings.

    Nothing is sent over the network and the store is not opened. Every problem is listed at
    once, each with the file, the key path and what is expected. Exit status 2 on problems.
    """
    settings = app.settings
    click.echo(f"{app.config_path}: OK")
    click.echo(f"  store: {_store_label(settings.store.url)}")
    for name, connection in sorted(settings.connections.items()):
        state = "" if connection.enabled else " (disabled)"
        pushes = ", receives payments" if connection.receives_payments else ""
        click.echo(
            f"  connection {name}: {connection.connector}, every {connection.schedule}"
            f"{pushes}{state}"
        )
    if not settings.connections:
        click.echo("  no connections configured yet (see config.example.toml)")


def _store_label(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
