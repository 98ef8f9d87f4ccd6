"""Small renderers shared by commands."""

from __future__ import annotations

from collections.abc import Iterable

import click

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
