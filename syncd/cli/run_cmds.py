"""``syncd run``: the daemon."""

from __future__ import annotations

import click

from syncd.cli._context import AppContext
from syncd.daemon import Daemon
from syncd.store import store_lock


@click.command()
@click.pass_obj
def run(app: AppContext) -> None:
    """Run the daemon: sync every enabled connection on its schedule until stopped.

    SIGTERM or Ctrl-C stops it gracefully (running pages commit first); a second signal exits at
    once. On SQLite a second daemon on the same store is refused.
    """
    settings = app.settings
    lock = store_lock(app.engine, "syncd run")
    if lock is not None:
        lock.acquire()
    try:
        Daemon(settings, app.engine).run()
    finally:
        if lock is not None:
            lock.release()
