"""The connector contract: the few things syncd asks of a system it talks to.

A connector is one class per system, constructed with its validated settings and a
``ConnectorContext`` (the daemon's clock, logger, token vault and mapping). It declares what it can
do and then only ever:

- ``check()``: one cheap authenticated call, with a verdict a person can act on;
- ``pull(stream, cursor)``: pages of canonical records, each with the resume point after it;
- ``push_payment(push)`` and ``find_payment(push)``: for connectors with ``payments:write``;
- optionally ``reverse_payment(push, receipt)`` (``ReversesPayments``): undo a pushed payment;
- optionally ``book_deposit``/``find_deposit`` (``BooksDeposits``): book a processor's payout, its
  fee included, where the vendor's practice is a deposit (QuickBooks Online);
- optionally ``push_payments(pushes)`` (``PushesInBatches``): several pushes in one request.

It never touches the store: the sync engine decides what changed and commits each page with its
cursor; the payments outbox decides what to push and when a push is settled.

The shape fits request/response APIs (REST, OData, GraphQL, SOAP gateways) directly. Systems that
call *us* (QuickBooks Desktop's Web Connector polls the daemon) implement ``pull`` over the queue
that their endpoint fills, so the engine sees the same pages either way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel

from syncd.clock import Clock, SystemClock
from syncd.errors import ConnectorError, FatalError
from syncd.model import PaymentMethod, Record

if TYPE_CHECKING:
    import structlog


class Capability(StrEnum):
    CUSTOMERS = "customers"
    INVOICES = "invoices"
    PAYMENTS_READ = "payments:read"
    PAYMENTS_WRITE = "payments:write"
    WEBHOOKS = "webhooks"


class Stream(StrEnum):
    CUSTOMERS = "customers"
    INVOICES = "invoices"
    PAYMENTS = "payments"


STREAM_CAPABILITY: Mapping[Stream, Capability] = {
    Stream.CUSTOMERS: Capability.CUSTOMERS,
    Stream.INVOICES: Capability.INVOICES,
    Stream.PAYMENTS: Capability.PAYMENTS_READ,
}


@dataclass(frozen=True)
class Cursor:
    """Where a pull starts.

    ``since``: only records the source changed at or after this instant (the engine has already
    subtracted its look-back window); None means a full enumeration. ``position``: the connector's
    own opaque resume point inside an interrupted pass (a keyset id, a next-page URL, an id
    watermark), exactly as a previous ``Page.next_position`` returned it.
    """

    since: dt.datetime | None = None
    position: str | None = None


@dataclass(frozen=True)
class Rejected:
    """A source record that could not become a canonical one: quarantined, never dropped."""

    external_id: str | None
    reason: str
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class Page:
    """One page of a pull. ``next_position`` is None on the last page of the pass.

    ``deleted`` holds external ids the source reports deleted without the record itself (a
    QuickBooks CDC tombstone carries only ``Id``): the engine marks the stored rows deleted and
    leaves their last known fields as they were.
    """

    records: tuple[Record, ...]
    rejected: tuple[Rejected, ...] = ()
    next_position: str | None = None
    deleted: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str


@dataclass(frozen=True)
class PushAccounts:
    """Where a target books a payment, from the connection's config (names or ids, per vendor)."""

    deposit_account: str | None = None
    payment_method: str | None = None
    fee_account: str | None = None


@dataclass(frozen=True)
class PaymentPush:
    """One payment to write to one target.

    ``key`` is deterministic per (payment, target) and goes into the vendor's idempotency mechanism
    where one exists; ``marker`` is text of ours written into the vendor record (reference, memo,
    private note) so that ``find_payment`` can tell whether an uncertain push landed.
    """

    key: str
    marker: str
    invoice_external_id: str
    customer_external_id: str
    amount: Decimal
    fee: Decimal
    currency: str
    method: PaymentMethod
    received_at: dt.datetime
    reference: str | None = None
    memo: str | None = None
    accounts: PushAccounts = field(default_factory=PushAccounts)


@dataclass(frozen=True)
class PushReceipt:
    """What the target said it created: its id for the payment, and its payload for audit."""

    external_id: str
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DepositLine:
    """One payment a deposit moves out of the target's holding account (Undeposited Funds), for
    its full amount: ``payment_id`` is the target's id of a payment syncd pushed there."""

    payment_id: str
    amount: Decimal


@dataclass
class ConnectorContext:
    """What the daemon hands a connector: never the store, never another connection."""

    connection: str
    clock: Clock = field(default_factory=SystemClock)
    log: structlog.stdlib.BoundLogger | Any = None
    secrets: tuple[str, ...] = ()  # values the HTTP layer must redact from every log and error
    extras: dict[str, Any] = field(default_factory=dict)  # token vault, mapping, rate limiter …


@runtime_checkable
class Connector(Protocol):
    """What syncd calls. Checked structurally when a plugin is loaded."""

    name: ClassVar[str]
    settings_model: ClassVar[type[BaseModel]]
    capabilities: ClassVar[frozenset[Capability]]

    def check(self) -> CheckResult: ...

    def pull(self, stream: Stream, cursor: Cursor) -> Iterator[Page]: ...

    def push_payment(self, push: PaymentPush) -> PushReceipt: ...

    def find_payment(self, push: PaymentPush) -> PushReceipt | None: ...

    def close(self) -> None: ...


@runtime_checkable
class ReversesPayments(Protocol):
    """Optional: a connector that can undo a payment it pushed (refund, chargeback).

    ``reverse_payment`` voids or deletes the vendor payment ``receipt`` names (or records a
    refund), so the invoice's balance returns. It must be safe to repeat: the outbox calls it
    again after an uncertain outcome, so reversing an already reversed payment returns normally
    (a connector that *creates* a record to reverse, such as a refund, finds its own marker
    first). ``push`` is the original push, with its marker.
    """

    def reverse_payment(self, push: PaymentPush, receipt: PushReceipt) -> None: ...


@runtime_checkable
class BooksDeposits(Protocol):
    """Optional: a target whose practice books a card processor's payout as a deposit.

    The payments are pushed gross (to a holding account such as QuickBooks' Undeposited Funds);
    the payout that reached the bank is then one deposit of those payments plus one negative line
    of ``fee`` on ``fee_account``, so the deposit equals the money received and the fee is an
    expense (research/accounting-apis.md 1.6). ``deposits_enabled`` says whether this connection
    is configured for it (QuickBooks: ``deposit_bank_account`` set); when it is not, fees are not
    booked there. ``book_deposit`` must be safe to repeat with the same ``key`` (the vendor's
    idempotency mechanism), writes ``marker`` into the deposit, and ``find_deposit`` finds it by
    that marker among deposits created since ``deposited_at`` (less the connector's clock skew;
    the outbox passes the earlier of the payout date and the push's creation).
    """

    def deposits_enabled(self) -> bool: ...

    def book_deposit(
        self,
        key: str,
        marker: str,
        lines: Sequence[DepositLine],
        fee: Decimal,
        *,
        fee_account: str | None,
        deposited_at: dt.datetime,
        memo: str | None = None,
    ) -> PushReceipt: ...

    def find_deposit(self, marker: str, deposited_at: dt.datetime) -> PushReceipt | None: ...


@runtime_checkable
class PushesInBatches(Protocol):
    """Optional: a target that takes several payment creates in one request (QuickBooks' batch).

    ``push_payments`` answers one result per push, in order: a receipt, or the error that push
    alone met (an ``UncertainWrite`` when the request as a whole may have landed). The pusher
    sends only pushes never attempted before, each committed ``in_flight`` first, and settles
    every uncertain one by its own marker before any single re-send.
    """

    def push_payments(
        self, pushes: Sequence[PaymentPush]
    ) -> list[PushReceipt | ConnectorError]: ...


class BaseConnector:
    """Optional base: stores settings and context, and refuses writes it was not built for."""

    name: ClassVar[str]
    settings_model: ClassVar[type[BaseModel]]
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    # "module:attribute" of a callable that starts this system's sandbox emulator (sandbox kit).
    sandbox: ClassVar[str | None] = None
    # The default field mapping file (mappings/<system>.toml, shipped in the package).
    default_mapping: ClassVar[Path | None] = None

    def __init__(self, settings: BaseModel, context: ConnectorContext) -> None:
        self.settings = settings
        self.context = context

    def check(self) -> CheckResult:
        raise NotImplementedError

    def pull(self, stream: Stream, cursor: Cursor) -> Iterator[Page]:
        raise NotImplementedError

    def push_payment(self, push: PaymentPush) -> PushReceipt:
        raise FatalError(f"{self.name} does not write payments")

    def find_payment(self, push: PaymentPush) -> PushReceipt | None:
        raise FatalError(f"{self.name} does not write payments")

    def close(self) -> None:
        """Release sessions and threads; safe to call twice."""


__all__ = [
    "STREAM_CAPABILITY",
    "BaseConnector",
    "BooksDeposits",
    "Capability",
    "CheckResult",
    "Connector",
    "ConnectorContext",
    "Cursor",
    "DepositLine",
    "Page",
    "PaymentPush",
    "PushAccounts",
    "PushReceipt",
    "PushesInBatches",
    "Rejected",
    "ReversesPayments",
    "Stream",
]
