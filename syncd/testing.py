"""Fakes shipped beside the interfaces they stand in for, for tests and connector authors."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy import and_, insert, select
from sqlalchemy.engine import Engine

from syncd.connector import (
    BaseConnector,
    Capability,
    CheckResult,
    ConnectorContext,
    Cursor,
    Page,
    PaymentPush,
    PushReceipt,
    Rejected,
    Stream,
)
from syncd.errors import ConnectorError, RetriableError, SkippableError, UncertainWrite
from syncd.model import Record
from syncd.store.tables import customers, invoices


class FakeClock:
    """A clock that starts at a fixed instant and moves only when slept on or advanced."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        self._mono = 0.0
        self._lock = threading.Lock()
        self.slept: list[float] = []

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += dt.timedelta(seconds=max(seconds, 0))
            self._mono += max(seconds, 0)


class FakeSettings(BaseModel):
    """Settings of the in-memory connector: a token (to exercise secrets) and a page size."""

    model_config = ConfigDict(extra="forbid")
    token: SecretStr
    page_size: int = Field(default=2, ge=1)


class FakeConnector(BaseConnector):
    """An in-memory connector for engine tests: serves ``records[stream]`` in pages.

    Pages are ordered by (source updated-at, external id) and filtered by ``cursor.since``, as a
    vendor's incremental query would be; ``position`` is the offset of the next page. Set
    ``fail_after_pages`` to raise a ``RetriableError`` mid-pass (a crash stand-in).
    """

    name = "fake"
    settings_model = FakeSettings
    capabilities = frozenset({Capability.CUSTOMERS, Capability.INVOICES})

    def __init__(self, settings: BaseModel, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        assert isinstance(settings, FakeSettings)
        self.page_size = settings.page_size
        self.records: dict[Stream, list[Record]] = {Stream.CUSTOMERS: [], Stream.INVOICES: []}
        self.rejected: dict[Stream, list[Rejected]] = {Stream.CUSTOMERS: [], Stream.INVOICES: []}
        self.fail_after_pages: int | None = None
        self.requests_made = 0
        self.cursors: list[Cursor] = []

    def check(self) -> CheckResult:
        return CheckResult(ok=True, detail="in-memory")

    def pull(self, stream: Stream, cursor: Cursor) -> Iterator[Page]:
        self.cursors.append(cursor)
        since = cursor.since
        chosen = sorted(
            (r for r in self.records[stream] if since is None or r.source_updated_at >= since),
            key=lambda r: (r.source_updated_at, r.external_id),
        )
        offset = int(cursor.position or 0)
        served = 0
        while True:
            if self.fail_after_pages is not None and served >= self.fail_after_pages:
                raise RetriableError("fake connection dropped")
            chunk = tuple(chosen[offset : offset + self.page_size])
            offset += len(chunk)
            self.requests_made += 1
            last = offset >= len(chosen)
            rejected = tuple(self.rejected[stream]) if last else ()
            yield Page(
                records=chunk, rejected=rejected, next_position=None if last else str(offset)
            )
            served += 1
            if last:
                return


class FakePaymentsSettings(FakeSettings):
    """``refuse = true`` makes every push a vendor refusal (``SkippableError``), for CLI tests
    that need dead pushes in another process."""

    refuse: bool = False


class FakePaymentsConnector(BaseConnector):
    """An in-memory target that writes payments, for outbox and pusher tests.

    ``payments`` maps the vendor id to ``{"marker", "invoice", "amount"}``; ``invoices`` (optional)
    holds balances that payments lower and reversals raise. Program the next calls with
    ``script`` (``push_payment``), ``find_script`` and ``reverse_script``: each entry is ``"ok"``,
    ``"lost"`` (the write lands, then the answer is lost: ``UncertainWrite``), ``"drop"``
    (nothing lands: ``UncertainWrite``) or an exception to raise (nothing lands). ``calls``
    records ``(method, marker)`` in order.
    """

    name = "fake-payments"
    settings_model = FakePaymentsSettings
    capabilities = frozenset({Capability.PAYMENTS_WRITE})

    def __init__(self, settings: BaseModel | None = None, context: ConnectorContext | None = None):
        settings = settings or FakePaymentsSettings(token=SecretStr("fake"))
        super().__init__(settings, context or ConnectorContext("fake"))
        self.payments: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, Decimal] = {}
        self.script: list[str | ConnectorError] = []
        self.find_script: list[str | ConnectorError] = []
        self.reverse_script: list[str | ConnectorError] = []
        self.calls: list[tuple[str, str]] = []
        self._next_id = 100
        if isinstance(settings, FakePaymentsSettings) and settings.refuse:
            self.script = [SkippableError("fake: refused (refuse = true)")] * 1000

    def check(self) -> CheckResult:
        return CheckResult(ok=True, detail="in-memory payments")

    def push_payment(self, push: PaymentPush) -> PushReceipt:
        self.calls.append(("push", push.marker))
        step = self.script.pop(0) if self.script else "ok"
        if isinstance(step, ConnectorError):
            raise step
        if step == "drop":
            raise UncertainWrite("fake: connection dropped before the vendor read it")
        self._next_id += 1
        vendor_id = str(self._next_id)
        self.payments[vendor_id] = {
            "marker": push.marker,
            "invoice": push.invoice_external_id,
            "amount": push.amount,
        }
        if push.invoice_external_id in self.invoices:
            self.invoices[push.invoice_external_id] -= push.amount
        if step == "lost":
            raise UncertainWrite("fake: the answer was lost after the vendor wrote it")
        return PushReceipt(external_id=vendor_id, raw=dict(self.payments[vendor_id]))

    def find_payment(self, push: PaymentPush) -> PushReceipt | None:
        self.calls.append(("find", push.marker))
        step = self.find_script.pop(0) if self.find_script else "ok"
        if isinstance(step, ConnectorError):
            raise step
        for vendor_id, payment in self.payments.items():
            if payment["marker"] == push.marker:
                return PushReceipt(external_id=vendor_id, raw=dict(payment))
        return None

    def reverse_payment(self, push: PaymentPush, receipt: PushReceipt) -> None:
        self.calls.append(("reverse", push.marker))
        step = self.reverse_script.pop(0) if self.reverse_script else "ok"
        if isinstance(step, ConnectorError):
            raise step
        if step == "drop":
            raise UncertainWrite("fake: connection dropped before the vendor read it")
        payment = self.payments.pop(receipt.external_id, None)
        if payment is not None and payment["invoice"] in self.invoices:
            self.invoices[payment["invoice"]] += payment["amount"]
        if step == "lost":
            raise UncertainWrite("fake: the answer was lost after the vendor deleted it")

    def landed(self, marker: str) -> int:
        """How many payments carry ``marker``: exactly-once means 1."""
        return sum(1 for p in self.payments.values() if p["marker"] == marker)


def store_invoice(
    engine: Engine,
    connection: str,
    external_id: str,
    number: str,
    total: str = "100.00",
    balance: str | None = None,
    *,
    currency: str = "USD",
    status: str | None = None,
    customer: str = "C1",
    customer_name: str = "Acme Ltd",
    when: dt.datetime | None = None,
) -> None:
    """Store one invoice (and its customer, once) as a pull would have: for payments tests."""
    now = when or dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)
    amount, open_amount = Decimal(total), Decimal(balance if balance is not None else total)
    stamps = {"source_updated_at": now, "content_hash": "x", "raw": {}, "created_at": now}
    with engine.begin() as conn:
        known = conn.execute(
            select(customers.c.id).where(
                and_(customers.c.connection == connection, customers.c.external_id == customer)
            )
        ).first()
        if known is None:
            conn.execute(
                insert(customers).values(
                    connection=connection,
                    external_id=customer,
                    name=customer_name,
                    active=True,
                    updated_at=now,
                    **stamps,
                )
            )
        conn.execute(
            insert(invoices).values(
                connection=connection,
                external_id=external_id,
                number=number,
                customer_external_id=customer,
                currency=currency,
                total=amount,
                balance=open_amount,
                status=status or ("open" if open_amount == amount else "partially_paid"),
                updated_at=now,
                **stamps,
            )
        )
