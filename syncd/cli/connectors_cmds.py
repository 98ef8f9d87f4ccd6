"""``syncd connectors list``: what is installed and what each can do."""

from __future__ import annotations

import click

from syncd.registry import default_registry


@click.group()
def connectors() -> None:
    """Installed connectors (found through the `syncd.connectors` entry points)."""


@connectors.command("list")
def list_connectors() -> None:
    """List each installed connector with its capabilities; broken plugins are named, not fatal."""
    good, bad = default_registry().load_all()
    if not good and not bad:
        click.echo("no connectors installed")
    for name, cls in sorted(good.items()):
        capabilities = ", ".join(sorted(c.value for c in cls.capabilities)) or "none"
        click.echo(f"{name}: {capabilities}")
    for failure in bad:
        click.echo(f"{failure.name}: NOT LOADED: {failure.reason}", err=True)
