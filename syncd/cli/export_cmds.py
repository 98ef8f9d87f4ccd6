"""``syncd export``: the store's records on stdout, as JSON or CSV, with canonical field names."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import click
from sqlalchemy.engine import Connection

from syncd.cli._context import AppContext
from syncd.store.reports import (
    CUSTOMER_FIELDS,
    INVOICE_FIELDS,
    PAYMENT_FIELDS,
    iter_customers,
    iter_invoices,
    iter_payments,
)

_KINDS: dict[str, tuple[tuple[str, ...], Callable[[Connection], Iterator[dict[str, Any]]]]] = {
    "customers": (CUSTOMER_FIELDS, iter_customers),
    "invoices": (INVOICE_FIELDS, iter_invoices),
    "payments": (PAYMENT_FIELDS, iter_payments),
}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@click.command()
@click.argument("kind", type=click.Choice(sorted(_KINDS)))
@click.option(
    "--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True
)
@click.pass_obj
def export(app: AppContext, kind: str, fmt: str) -> None:
    """Write every stored customer, invoice or payment to stdout.

    Amounts are exact decimal strings; times are ISO 8601 UTC. JSON is one array; CSV has a
    header row (a payment's pushes are a JSON list in one column).
    """
    fields, rows = _KINDS[kind]
    out = sys.stdout
    with app.engine.connect() as conn:
        if fmt == "csv":
            writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
            writer.writeheader()
            for row in rows(conn):
                plain = _plain(row)
                if "pushes" in plain:
                    plain["pushes"] = json.dumps(plain["pushes"])
                writer.writerow(plain)
            return
        out.write("[")
        count = 0
        for row in rows(conn):
            out.write(",\n" if count else "\n")
            out.write(json.dumps(_plain(row), ensure_ascii=False))
            count += 1
        out.write("\n]\n" if count else "]\n")
