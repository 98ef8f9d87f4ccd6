"""``syncd demo``: the product working end to end with no accounts.

Starts the bundled vendor emulators on loopback with seeded data, writes a config that points
connections at them, runs real syncs into a SQLite store (twice, to show that a second pass
rewrites nothing), and prints what was pulled. Steps that later issues build (cross-system
linking, payment push) are named as such rather than faked.
"""

from __future__ import annotations

import tomllib
from contextlib import ExitStack
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from syncd.cli._context import AppContext
from syncd.clock import SystemClock
from syncd.config import settings_from_tree
from syncd.errors import SyncdError
from syncd.registry import default_registry
from syncd.sandbox import Sandbox
from syncd.sandboxes import sandbox_for
from syncd.store import open_store, store_lock
from syncd.store.tables import customers, invoices, quarantine
from syncd.sync import PullResult, sync_connection
from syncd.sync.factory import build_connector

# The most common MSP stack first; each is demoed when it is installed.
DEMO_CONNECTORS = ("connectwise", "quickbooks_online", "autotask", "xero")


@dataclass(frozen=True)
class DemoSummary:
    first: list[PullResult]
    second: list[PullResult]
    folder: Path


def run_demo(app: AppContext, folder: str) -> DemoSummary:
    installed = set(default_registry().names())
    chosen = [name for name in DEMO_CONNECTORS if name in installed]
    if not chosen:
        raise SyncdError("no connector with a sandbox is installed; reinstall syncd")
    where = Path(folder).resolve()
    where.mkdir(parents=True, exist_ok=True)
    for stale in (*where.glob("syncd.db*"), where / "config.toml"):
        stale.unlink(missing_ok=True)

    with ExitStack() as stack:
        sandboxes: dict[str, Sandbox] = {}
        for name in chosen:
            emulator = sandbox_for(name)
            stack.enter_context(emulator)
            sandboxes[name] = emulator
            click.echo(f"started the {name} sandbox on {emulator.base_url}")
        config_text = _config_text(where, sandboxes)
        (where / "config.toml").write_text(config_text, encoding="utf-8")
        settings = settings_from_tree(
            tomllib.loads(config_text),
            label=str(where / "config.toml"),
            base_dir=where,
            env={},
            registry=default_registry(),
            source=where / "config.toml",
        )
        app.use_settings(settings)
        engine = open_store(settings.store.url)
        stack.callback(engine.dispose)
        lock = store_lock(engine, "syncd demo")
        if lock is not None:
            stack.enter_context(lock)

        click.echo("\nfirst sync (full backfill):")
        first = _sync_all(engine, settings)
        click.echo("\nsecond sync (incremental, nothing changed at the source):")
        second = _sync_all(engine, settings)
        click.echo("")
        _print_store(engine)
        for name, emulator in sandboxes.items():
            click.echo(f"{name} sandbox answered {len(emulator.log.entries)} requests")
    click.echo(
        "\nlinked: cross-system matching of customers and invoices is not built yet (issue #4)"
        "\npushed: the payments ledger and exactly-once push are not built yet (issue #5)"
        f"\n\nthe store and its config are in {where}; look around with:"
        f"\n  syncd --config {where / 'config.toml'} status"
        f"\n  syncd --config {where / 'config.toml'} export invoices --format csv"
    )
    return DemoSummary(first, second, where)


def _config_text(folder: Path, sandboxes: dict[str, Sandbox]) -> str:
    parts = [
        "# Written by `syncd demo`: connections to the bundled sandboxes (gone when it ends).",
        "[store]",
        f'url = "sqlite:///{folder / "syncd.db"}"',
        "",
        "[logging]",
        'level = "warning"',
        "",
    ]
    for name, emulator in sandboxes.items():
        parts.append(emulator.config_snippet(f"demo-{name}"))
    return "\n".join(parts) + "\n"


def _sync_all(engine: Engine, settings: Any) -> list[PullResult]:
    results: list[PullResult] = []
    for connection in settings.connections.values():
        connector = build_connector(settings, connection, clock=SystemClock())
        try:
            outcome = sync_connection(engine, connection, connector, clock=SystemClock())
        finally:
            connector.close()
        for r in outcome:
            click.echo(
                f"  {r.connection}/{r.stream}: {r.status}: {r.created} created, "
                f"{r.updated} updated, {r.unchanged} unchanged, {r.voided} voided, "
                f"{r.quarantined} quarantined in {r.pages} pages / {r.requests} requests"
            )
            if r.error:
                click.echo(f"    error: {r.error}")
        results += outcome
    return results


def _print_store(engine: Engine) -> None:
    with engine.connect() as conn:
        people: dict[str, int] = dict(
            conn.execute(
                select(customers.c.connection, func.count()).group_by(customers.c.connection)
            ).all()
        )
        bills = conn.execute(
            select(invoices.c.connection, invoices.c.status, invoices.c.balance).where(
                invoices.c.deleted_at.is_(None)
            )
        ).all()
        held = conn.execute(select(func.count()).select_from(quarantine)).scalar_one()
    click.echo("in the store:")
    for connection in sorted({*people, *(b.connection for b in bills)}):
        mine = [b for b in bills if b.connection == connection]
        open_balance = sum((b.balance for b in mine if b.status != "void"), Decimal(0))
        by_status: dict[str, int] = {}
        for b in mine:
            by_status[b.status] = by_status.get(b.status, 0) + 1
        statuses = ", ".join(f"{count} {status}" for status, count in sorted(by_status.items()))
        click.echo(
            f"  {connection}: {people.get(connection, 0)} customers, {len(mine)} invoices "
            f"({statuses}), open balance {open_balance}"
        )
    click.echo(f"  quarantined records: {held}")
