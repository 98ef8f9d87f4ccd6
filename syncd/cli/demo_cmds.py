"""``syncd demo``: bundled sandboxes on loopback, a real sync into SQLite, and what happened."""

from __future__ import annotations

import click

from syncd.cli._context import AppContext


@click.command()
@click.option(
    "--dir",
    "folder",
    default="syncd-demo",
    show_default=True,
    help="Folder for the demo's SQLite store and config (its syncd.db and config.toml are "
    "replaced on each run).",
)
@click.pass_obj
def demo(app: AppContext, folder: str) -> None:
    """See syncd work with no accounts: start the bundled vendor sandboxes on loopback, sync
    them into a SQLite store for real (twice: the second pass rewrites nothing), and print what
    was pulled."""
    from syncd.demo import run_demo

    run_demo(app, folder)
