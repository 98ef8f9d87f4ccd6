"""``syncd demo``: bundled sandboxes on loopback, a real sync into SQLite, and what happened."""

from __future__ import annotations

import click

from syncd.cli._context import AppContext


@click.command()
@click.option("--db", "db_path", default="syncd-demo.db", show_default=True, help="SQLite file.")
@click.pass_obj
def demo(app: AppContext, db_path: str) -> None:
    """Start the bundled sandboxes, sync them into a SQLite file and print what was pulled."""
    from syncd.demo import run_demo

    run_demo(app, db_path)
