"""Small renderers shared by commands."""

from __future__ import annotations

from collections.abc import Iterable

import click

from syncd.linking import LinkResult
from syncd.sync import PullResult
from syncd.sync.sweep import SweepResult


def print_results(results: Iterable[PullResult]) -> None:
    for r in results:
        line = (
            f"{r.connection}/{r.stream}: {r.status}, {r.pages} pages, {r.requests} requests, "
            f"{r.created} created, {r.updated} updated, {r.unchanged} unchanged, "
            f"{r.voided} voided, {r.deleted} deleted, {r.quarantined} quarantined"
        )
        click.echo(line)
        if r.error:
            click.echo(f"  error: {r.error}")


def print_sweeps(results: Iterable[SweepResult]) -> None:
    for r in results:
        click.echo(
            f"{r.connection}/{r.stream} sweep: {r.status}, {r.seen} listed, {r.deleted} deleted, "
            f"{r.held_back} held back, {len(r.drift)} drifted"
        )
        if r.error:
            click.echo(f"  error: {r.error}")
        for subject in r.review_items:
            click.echo(f"  review item: {subject}")


def print_links(results: Iterable[LinkResult]) -> None:
    for r in results:
        customers = sum(r.customers.values())
        invoices = sum(r.invoices.values())
        how = ", ".join(f"{n} by {m}" for m, n in sorted(r.customers.items()) if n)
        click.echo(
            f"linked {r.left} ~ {r.right}: {customers} new customer links"
            f"{f' ({how})' if how else ''}, {invoices} new invoice links, "
            f"{r.reviews_opened} questions for a person"
        )
