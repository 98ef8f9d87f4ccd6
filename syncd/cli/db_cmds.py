"""``syncd db upgrade``: apply schema migrations (also done automatically on start)."""

from __future__ import annotations

import click

from syncd.cli._context import AppContext
from syncd.store.engine import create_store_engine, open_store
from syncd.store.migrate import current_revision, head_revision


@click.group()
def db() -> None:
    """Manage the store's schema."""


@db.command("upgrade")
@click.pass_obj
def upgrade(app: AppContext) -> None:
    """Bring the store's schema to this version of syncd (safe to run repeatedly)."""
    url = app.settings.store.url
    engine = open_store(url, migrate=True)
    try:
        click.echo(f"store schema at {current_revision(engine)} (head {head_revision()})")
    finally:
        engine.dispose()


@db.command("current")
@click.pass_obj
def current(app: AppContext) -> None:
    """Show the store's schema revision without changing anything."""
    engine = create_store_engine(app.settings.store.url)
    try:
        click.echo(f"{current_revision(engine) or 'empty'} (head {head_revision()})")
    finally:
        engine.dispose()
