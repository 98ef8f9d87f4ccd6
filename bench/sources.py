"""The sources the benchmarks pull from: one ``Source`` entry per connector.

Every benchmark is written against this table, not against a vendor: adding the QuickBooks Online
connector as a second source is one more entry in ``SOURCES`` (its registry name, how to size its
sandbox, how to change invoices in it, and any store preparation its OAuth tokens need).

The functions that touch a sandbox (``change_invoices``) run inside the sandbox host process
(``bench.sandbox_host``), never in the process whose sync is measured.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from syncd.config import Settings
from syncd.sandbox import Sandbox

Undo = Callable[[], None]


@dataclass(frozen=True)
class Source:
    """How the benchmarks use one connector and its sandbox emulator."""

    connector: str  # the registry name (entry point ``syncd.connectors``)
    # (customers, invoices) → keyword arguments of the connector's sandbox constructor.
    sizes: Callable[[int, int], dict[str, int]]
    # Change ``count`` invoices in the sandbox as the vendor would (their updated-at moves to the
    # sandbox's now); ``round_no`` picks a different set each round. Returns an undo that puts
    # the invoices back exactly as they were, updated-at included.
    change_invoices: Callable[[Sandbox, int, int], Undo]
    # Extra sandbox constructor options (e.g. ``throttle=False`` for an emulator that throttles).
    sandbox_options: Mapping[str, Any] = field(default_factory=dict)
    # Connection settings merged over the sandbox's config snippet.
    settings: Mapping[str, Any] = field(default_factory=dict)
    # Prepare a fresh store before the connector is built (an OAuth connector's tokens).
    prepare_store: Callable[[Engine, Settings, str], None] | None = None
    # Make the sandbox forget what it has cached (condition matches, rendered pages), so every
    # measured request, the sync's and the baseline's alike, does the vendor's full work.
    cold: Callable[[Sandbox], None] | None = None
    # URL path fragments of requests a connector makes once per instance, whatever it pulls
    # (discovery, a token refresh): the incremental benchmark counts them apart from a stream's.
    setup_requests: tuple[str, ...] = ()


def _connectwise_sizes(customers: int, invoices: int) -> dict[str, int]:
    return {"companies": customers, "invoices": invoices}


def _connectwise_change(sandbox: Sandbox, count: int, round_no: int) -> Undo:
    """Edit ``count`` invoices spread over the id range (``internalNotes``; the sandbox bumps
    ``_info.lastUpdated`` as ConnectWise does). Credit memos are skipped: the connector skips
    them too, so a change to one would not be a change the sync sees."""
    from connectors.connectwise.sandbox import ConnectWiseSandbox

    if not isinstance(sandbox, ConnectWiseSandbox):
        raise TypeError(f"expected a ConnectWiseSandbox, got {type(sandbox).__name__}")
    table = sandbox.invoices
    ids = [i for i in table.ids if table.rows[i].get("type") != "CreditMemo"]
    if count > len(ids):
        raise ValueError(f"cannot change {count} invoices: the sandbox has {len(ids)}")
    step = len(ids) // count
    picked = [ids[(k * step + round_no) % len(ids)] for k in range(count)]
    originals = {i: table.rows[i] for i in picked}
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for i in picked:
        sandbox.update_invoice(i, internalNotes=f"bench round {round_no} at {stamp}")

    def undo() -> None:
        # The host runs commands only between pulls, so no request is being served meanwhile.
        for i, row in originals.items():
            table.rows[i] = row
        table.version += 1  # the sandbox caches condition matches per table version

    return undo


def _connectwise_cold(sandbox: Sandbox) -> None:
    """The sandbox caches condition matches per table version (``_matched``): a new version
    makes the next listing filter its table again, as the vendor's database would."""
    from connectors.connectwise.sandbox import ConnectWiseSandbox

    if not isinstance(sandbox, ConnectWiseSandbox):
        raise TypeError(f"expected a ConnectWiseSandbox, got {type(sandbox).__name__}")
    for table in (sandbox.companies, sandbox.contacts, sandbox.invoices):
        table.version += 1


SOURCES: dict[str, Source] = {
    "connectwise": Source(
        connector="connectwise",
        sizes=_connectwise_sizes,
        change_invoices=_connectwise_change,
        cold=_connectwise_cold,
        setup_requests=("/login/companyinfo/",),  # codebase discovery (client.py)
    ),
    # "quickbooks_online": Source(
    #     connector="quickbooks_online",
    #     sizes=lambda customers, invoices: {"customers": customers, "invoices": invoices},
    #     change_invoices=...,  # e.g. a sparse update of PrivateNote through the sandbox
    #     sandbox_options={"throttle": False},
    #     prepare_store=...,  # put the sandbox's OAuth tokens in the store's token vault
    # ),
}


def source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise SystemExit(f"unknown source {name!r} (known: {', '.join(SOURCES)})") from None


__all__ = ["SOURCES", "Source", "Undo", "source"]
