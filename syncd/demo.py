"""``syncd demo``: the product working end to end with no accounts.

Starts the bundled vendor emulators on loopback (ConnectWise Manage and QuickBooks Online) with
seeded data and one shared small business (``syncd.demo_world``: the same customers and invoices
in both, under slightly different names), writes a config that points connections at them, and
then does for real what the daemon does: pulls both into a SQLite store, links the same customer
and invoice across the two systems, records two customer payments, pushes each exactly once to
both systems (in QuickBooks gross, with the card payment's fee booked by a Deposit, as the
payment platforms do), pulls again and checks that every system's balance agrees with the store.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from contextlib import ExitStack
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import click
from sqlalchemy import and_, func, select
from sqlalchemy.engine import Engine

from syncd.cli._context import AppContext
from syncd.cli._render import print_links
from syncd.clock import SystemClock
from syncd.config import Settings, settings_from_tree
from syncd.demo_world import BALANCES, DEPOSITS, PAYMENTS, SEEDERS, SIZES
from syncd.errors import SyncdError
from syncd.linking import link_all
from syncd.model import PaymentMethod
from syncd.payments.jobs import after_sync_job, build_pusher
from syncd.payments.ledger import NewPayment, Recorded, payment_targets, record_payment
from syncd.payments.verify import describe
from syncd.registry import default_registry
from syncd.sandbox import Sandbox
from syncd.sandboxes import sandbox_for
from syncd.store import open_store, store_lock
from syncd.store.tables import (
    customers,
    invoices,
    links,
    payment_pushes,
    payouts,
    quarantine,
    review_items,
)
from syncd.sync import PullResult, sync_connection
from syncd.sync.factory import build_connector

# The most common MSP stack: invoices born in the PSA, books kept in the accounting system.
DEMO_CONNECTORS = ("connectwise", "quickbooks_online")
# Card payouts become deposits in QuickBooks (the payments, less a fee line), as the payment
# platforms users know book them; ConnectWise gets the gross payment and never a fee.
DEPOSIT_SETTINGS = {
    "quickbooks_online": ['fee_account = "Merchant Fees"', 'deposit_bank_account = "Checking"']
}


@dataclass(frozen=True)
class DemoSummary:
    first: list[PullResult]
    second: list[PullResult]
    folder: Path
    agreed: bool


def run_demo(app: AppContext, folder: str) -> DemoSummary:
    installed = set(default_registry().names())
    chosen = [name for name in DEMO_CONNECTORS if name in installed]
    if not chosen:
        raise SyncdError("no connector with a sandbox is installed; reinstall syncd")
    where = Path(folder).resolve()
    where.mkdir(parents=True, exist_ok=True)
    for stale in (*where.glob("syncd.db*"), where / "syncd.key", where / "config.toml"):
        stale.unlink(missing_ok=True)

    with ExitStack() as stack:
        sandboxes: dict[str, Sandbox] = {}
        for name in chosen:
            emulator = sandbox_for(name, **SIZES.get(name, {}))
            stack.enter_context(emulator)
            SEEDERS[name](emulator)
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

        click.echo("\n1. pull both systems into the store (full backfill):")
        first = _sync_all(engine, settings)
        click.echo("\n2. link the same customers and invoices across the two systems:")
        print_links(link_all(engine, sorted(settings.connections), clock=SystemClock()))
        _print_links(engine)

        click.echo("\n3. record what customers paid, once each:")
        _record_payments(engine, settings)
        click.echo("\n4. push each payment to every system that must know, exactly once:")
        pusher = build_pusher(settings, engine)
        if pusher is not None:
            click.echo(f"  {pusher.run_pass().summary()}")
            click.echo(f"  a second pass finds nothing to do: {pusher.run_pass().summary()}")
        _print_deposits(engine, sandboxes)

        click.echo("\n5. pull again: the payments show up in both systems' balances:")
        second = _sync_all(engine, settings)
        for line in describe(after_sync_job(settings, engine, second)):
            click.echo(f"  {line}")
        agreed = _compare_balances(engine, sandboxes)
        click.echo("")
        _print_store(engine)
        for name, emulator in sandboxes.items():
            click.echo(f"{name} sandbox answered {len(emulator.log.entries)} requests")
    click.echo(
        f"\nthe store and its config are in {where}; look around with:"
        f"\n  syncd --config {where / 'config.toml'} status"
        f"\n  syncd --config {where / 'config.toml'} review list"
        f"\n  syncd --config {where / 'config.toml'} payments list"
        f"\n  syncd --config {where / 'config.toml'} export invoices --format csv"
    )
    return DemoSummary(first, second, where, agreed)


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
        parts.append(emulator.config_snippet(f"demo-{name}").rstrip("\n"))
        parts.append("receives_payments = true")
        parts += DEPOSIT_SETTINGS.get(name, [])
        parts.append("")
    return "\n".join(parts) + "\n"


def _sync_all(engine: Engine, settings: Settings) -> list[PullResult]:
    results: list[PullResult] = []
    for connection in settings.connections.values():
        connector = build_connector(settings, connection, clock=SystemClock(), engine=engine)
        try:
            outcome = sync_connection(engine, connection, connector, clock=SystemClock())
        finally:
            connector.close()
        for r in outcome:
            click.echo(
                f"  {r.connection}/{r.stream}: {r.status}: {r.created} created, "
                f"{r.updated} updated, {r.unchanged} unchanged, {r.voided} voided, "
                f"{r.deleted} deleted, {r.quarantined} quarantined "
                f"in {r.pages} pages / {r.requests} requests"
            )
            if r.error:
                click.echo(f"    error: {r.error}")
        results += outcome
    return results


def _print_links(engine: Engine) -> None:
    with engine.connect() as conn:
        rows = conn.execute(
            select(links.c.kind, links.c.method, func.count())
            .group_by(links.c.kind, links.c.method)
            .order_by(links.c.kind, links.c.method)
        ).all()
        questions = conn.execute(
            select(func.count()).select_from(review_items).where(review_items.c.status == "open")
        ).scalar_one()
    for kind, method, count in rows:
        click.echo(f"  {count} {kind} link(s) by {method}")
    click.echo(f"  {questions} question(s) left for a person (syncd review list)")


def _record_payments(engine: Engine, settings: Settings) -> None:
    targets = payment_targets(settings)
    now = dt.datetime.now(dt.UTC)
    for number, amount, fee, method, reference in PAYMENTS:
        new = NewPayment(
            amount=amount,
            received_at=now,
            fee=fee,
            method=PaymentMethod(method),
            reference=reference,
            invoice_number=number,
        )
        for attempt in ("recorded", "again"):
            outcome = record_payment(engine, new, targets, now=now)
            if isinstance(outcome, Recorded):
                fee_text = f" (card fee {fee})" if fee else ""
                click.echo(
                    f"  payment {outcome.payment_id}: {amount} {outcome.currency} by {method}"
                    f"{fee_text} on invoice {number}, queued for "
                    f"{', '.join(p.connection for p in outcome.pushes)}"
                )
            else:
                click.echo(
                    f"  the same reference {reference} {attempt}: already recorded as payment "
                    f"{outcome.payment_id}, nothing new"
                )


def _print_deposits(engine: Engine, sandboxes: dict[str, Sandbox]) -> None:
    """Each card fee as QuickBooks booked it: a deposit of the gross payment less the fee."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(payment_pushes, payouts.c.amount, payouts.c.fee, payouts.c.currency)
            .join(payouts, payouts.c.id == payment_pushes.c.payout_id)
            .where(payment_pushes.c.kind == "deposit")
            .order_by(payment_pushes.c.id)
        ).all()
    for row in rows:
        system = row.connection.removeprefix("demo-")
        if row.status != "done":
            click.echo(f"  the deposit of payment {row.payment_id} in {system}: {row.status}")
            continue
        read = DEPOSITS.get(system)
        there = read(sandboxes[system], row.external_id) if read and system in sandboxes else None
        net = f"{there:.2f}" if there is not None else "(not found there)"
        click.echo(
            f"  card fee of payment {row.payment_id} booked in {system}: deposit "
            f"{row.external_id} = {row.amount} gross - {row.fee} fee = {net} {row.currency} to "
            "the bank, the fee on Merchant Fees"
        )
    if not rows:
        click.echo("  (no card fee to book: no connection books deposits)")
    else:
        click.echo("  (ConnectWise gets each payment gross: fees are booked in accounting only)")


def _compare_balances(engine: Engine, sandboxes: dict[str, Sandbox]) -> bool:
    agreed = True
    with engine.connect() as conn:
        for number, *_ in PAYMENTS:
            for name, emulator in sandboxes.items():
                at_vendor = BALANCES[name](emulator, number)
                stored = conn.execute(
                    select(invoices.c.balance).where(
                        and_(invoices.c.connection == f"demo-{name}", invoices.c.number == number)
                    )
                ).scalar()
                same = at_vendor is not None and stored == at_vendor
                agreed &= same
                verdict = "agrees" if same else "DIFFERS"
                click.echo(
                    f"  invoice {number} in {name}: balance {at_vendor} there, {stored} in the "
                    f"store: {verdict}"
                )
    return agreed


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
