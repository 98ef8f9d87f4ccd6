"""``syncd sandbox NAME``: serve one vendor emulator on loopback for manual trials."""

from __future__ import annotations

import signal
import threading

import click

from syncd.sandboxes import sandbox_for, sandbox_names


@click.command()
@click.argument("connector", required=False)
@click.option(
    "--port", default=0, show_default=True, help="Port on 127.0.0.1 (0 picks a free one)."
)
@click.option("--seed", default=7, show_default=True, help="Seed of the generated data.")
def sandbox(connector: str | None, port: int, seed: int) -> None:
    """Serve CONNECTOR's sandbox (a faithful emulator of the vendor API) until Ctrl-C, and print
    the config snippet that points a connection at it. Without CONNECTOR, list the sandboxes."""
    if connector is None:
        names = sandbox_names()
        click.echo("sandboxes: " + (", ".join(names) if names else "none installed"))
        return
    emulator = sandbox_for(connector, seed=seed, port=port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with emulator:
        click.echo(f"# {connector} sandbox on {emulator.base_url} (Ctrl-C stops it)")
        click.echo(emulator.config_snippet(connector))
        stop.wait()
