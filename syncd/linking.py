"""Linking connections after a sync: the same customer and invoice across systems.

Thin on purpose: the store loads, :mod:`syncd.reconcile.link` decides, the store writes, all in
one transaction per pair of connections. Which connection is the PSA and which the accounting
system cannot be read from capabilities, so every pair of configured connections is linked, each
pair ordered by name so that "left" and "right" never swap between runs.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import structlog
from sqlalchemy.engine import Engine

from syncd.clock import Clock
from syncd.reconcile.link import (
    THRESHOLDS,
    Thresholds,
    plan_customer_links,
    plan_invoice_links,
)
from syncd.store.links import (
    apply_link_plan,
    begin_pair,
    load_customer_inputs,
    ordered,
    with_invoices,
)


@dataclass(frozen=True)
class LinkResult:
    """What one linking pass over one pair did; logged as one event."""

    left: str
    right: str
    customers: Mapping[str, int] = field(default_factory=dict)  # new links by method
    invoices: Mapping[str, int] = field(default_factory=dict)
    reviews_opened: int = 0
    reviews_closed: int = 0  # open questions that no longer arise


def connection_pairs(names: Iterable[str]) -> list[tuple[str, str]]:
    """Every unordered pair of distinct connections, each as (left, right) by name."""
    return [ordered(a, b) for a, b in itertools.combinations(sorted(set(names)), 2)]


def link_connections(
    engine: Engine,
    left: str,
    right: str,
    *,
    clock: Clock,
    thresholds: Thresholds = THRESHOLDS,
) -> LinkResult:
    """Link customers, then invoices of linked customers, between two connections."""
    left, right = ordered(left, right)
    with engine.connect() as conn:
        begin_pair(conn, left, right)
        inputs = load_customer_inputs(conn, left, right)
        customers = apply_link_plan(
            conn, left, right, plan_customer_links(inputs, thresholds), now=clock.now()
        )
        invoices = apply_link_plan(
            conn, left, right, plan_invoice_links(with_invoices(conn, inputs)), now=clock.now()
        )
        conn.commit()
    result = LinkResult(
        left=left,
        right=right,
        customers=dict(Counter(link.method.value for link in customers.links)),
        invoices=dict(Counter(link.method.value for link in invoices.links)),
        reviews_opened=customers.opened + invoices.opened,
        reviews_closed=customers.closed + invoices.closed,
    )
    structlog.get_logger("syncd.linking").info(
        "connections_linked",
        left=left,
        right=right,
        customers=result.customers,
        invoices=result.invoices,
        reviews_opened=result.reviews_opened,
        reviews_closed=result.reviews_closed,
    )
    return result


def link_all(engine: Engine, names: Iterable[str], *, clock: Clock) -> list[LinkResult]:
    """Link every pair of the given connections (``syncd sync`` calls this after pulling)."""
    return [link_connections(engine, a, b, clock=clock) for a, b in connection_pairs(names)]


__all__ = ["LinkResult", "connection_pairs", "link_all", "link_connections"]
