"""The ConnectWise Manage connector: companies and invoices in, invoice payments out.

- **customers** = ``/company/companies``, soft-deleted ones included (``deletedFlag`` → inactive,
  research/psa-apis.md 1.2). A company has no e-mail of its own: each page's billing contacts are
  looked up in ``/company/contacts`` (by id range in a full pass, else by ``id in (…)``: see
  ``ConnectWiseClient.billing_emails``) and the default e-mail is added to the payload as
  ``_syncd.billingContactEmail``; the mapping falls back to ``invoiceToEmailAddress``. A
  contact's own change does not bump its company's ``lastUpdated``, so an incremental pull misses
  it until the next full pass.
- **invoices** = ``/finance/invoices``. Credit memos (``type = CreditMemo``, research 1.3) are
  not invoices a customer pays: they are skipped before mapping, each logged at debug with its
  id and counted in one info event per pass (``connectwise_credit_memos_skipped``), so they
  neither pollute the quarantine nor vanish unaccounted.
- Incremental pulls ask ``lastUpdated >= [since]`` (django-connectwise ``sync.py`` L454-456);
  pages come in id order (keyset), and each page's position resumes an interrupted pass.
- **payments:write**: ``POST /finance/invoices/{id}/payments`` with ``type``, ``amount``,
  ``paymentDate`` and ``invoice``. The Payment schema has no memo or reference field (pyconnectwise
  ``PaymentModel``: id, type, invoice, credit, amount, paymentDate, appliedBy, _info), so our
  marker goes in ``appliedBy``, the free-text "who applied this payment", which it truthfully
  answers; ``type`` keeps its meaning ("Payment"). ``find_payment`` lists the invoice's payments
  and matches ``appliedBy`` exactly. The amount is the gross amount the customer paid: processor
  fees are booked in accounting, not on the PSA invoice.
- **reversal** (``reverse_payment``): ``DELETE /finance/invoices/{id}/payments/{paymentId}``;
  the invoice's balance returns. A 404 means it is gone already (an earlier uncertain delete
  landed, or the invoice went with it), which is what a repeated reversal must accept.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from connectors.connectwise.client import (
    LIMITS,
    ConnectWiseClient,
    Credentials,
    json_amount,
    site_root,
)
from syncd.connector import (
    BaseConnector,
    Capability,
    CheckResult,
    ConnectorContext,
    Cursor,
    Page,
    PaymentPush,
    PushReceipt,
    Stream,
)
from syncd.errors import AuthError, ConnectorError, FatalError, SkippableError
from syncd.mapping_files import connection_mapping
from syncd.query import cw_condition
from syncd.ratelimit import get_limiter
from syncd.settings_types import HttpUrlText, http_url

RESOURCES: dict[Stream, str] = {
    Stream.CUSTOMERS: "company/companies",
    Stream.INVOICES: "finance/invoices",
}
_HOST = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:\d+)?/?")


class ConnectWiseSettings(BaseModel):
    """A connection's settings. Give ``site`` for ConnectWise cloud, ``base_url`` otherwise."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    site: str | None = None  # api-na.myconnectwise.net; UI hosts (na.myconnectwise.net) work too
    base_url: HttpUrlText | None = (
        None  # https://cw.example.com (on-premise), http://127.0.0.1:8080
    )
    company_id: str = Field(min_length=1)
    public_key: str = Field(min_length=1)
    private_key: SecretStr
    client_id: str = Field(min_length=1)  # developer.connectwise.com/ClientID: an id, not a secret
    api_version: str | None = Field(default=None, pattern=r"^\d{4}\.\d{1,2}$")  # e.g. 2025.1
    page_size: int = Field(default=1000, ge=1, le=1000)  # 1000 is ConnectWise's hard maximum
    codebase: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+/?$")  # skip discovery

    @field_validator("site")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        # A URL is tolerated (sandbox snippets write one); anything else must be a bare host.
        if value is not None and "://" not in value and not _HOST.fullmatch(value.strip()):
            raise ValueError(f"{value!r} is not a host name such as api-na.myconnectwise.net")
        return http_url(value) if value is not None and "://" in value else value

    @field_validator("private_key")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("private_key is empty")
        return value

    @model_validator(mode="after")
    def _one_location(self) -> ConnectWiseSettings:
        if (self.site is None) == (self.base_url is None):
            raise ValueError(
                "give exactly one of site (a ConnectWise cloud host such as "
                "api-na.myconnectwise.net) or base_url (the full URL of an on-premise server)"
            )
        return self

    @property
    def api_root(self) -> str:
        return site_root(self.site) if self.site is not None else str(self.base_url).rstrip("/")


class ConnectWiseConnector(BaseConnector):
    """One ConnectWise Manage tenant (see the module docstring for what it pulls and pushes)."""

    name = "connectwise"
    settings_model = ConnectWiseSettings
    capabilities = frozenset({Capability.CUSTOMERS, Capability.INVOICES, Capability.PAYMENTS_WRITE})
    sandbox = "connectors.connectwise.sandbox:ConnectWiseSandbox"
    volatile_keys: ClassVar[frozenset[str]] = frozenset({"_info"})  # audit stamps and hrefs
    max_page_size: ClassVar[int] = 1000  # ConnectWise's hard maximum (research 1.4)
    # Each page of companies costs one more request: its billing contacts' e-mails.
    requests_per_page: ClassVar[dict[Stream, int]] = {Stream.CUSTOMERS: 2}
    # The default field mapping (a copy of mappings/connectwise.toml shipped in the package).
    default_mapping: ClassVar[Path] = Path(__file__).with_name("mapping.toml")

    def __init__(self, settings: BaseModel, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        if not isinstance(settings, ConnectWiseSettings):
            raise TypeError(f"expected ConnectWiseSettings, got {type(settings).__name__}")
        self.config = settings
        self.log = context.log or structlog.get_logger("connectors.connectwise").bind(
            connection=context.connection
        )
        root = settings.api_root
        self.client = ConnectWiseClient(
            root,
            Credentials(
                settings.company_id,
                settings.public_key,
                settings.private_key.get_secret_value(),
                settings.client_id,
            ),
            connection=context.connection,
            clock=context.clock,
            api_version=settings.api_version,
            page_size=settings.page_size,
            codebase=settings.codebase,
            limiter=get_limiter(
                ("connectwise", urlsplit(root).netloc.lower(), settings.company_id.lower()),
                LIMITS,
                context.clock,
            ),
        )
        self.mapping = connection_mapping(self.default_mapping, context.extras)
        self.credit_memos_skipped = 0

    @property
    def requests_made(self) -> int:
        return self.client.requests_made

    def check(self) -> CheckResult:
        where = f"{self.config.api_root} (company {self.config.company_id})"
        try:
            info = self.client.system_info()
        except AuthError as exc:
            return CheckResult(
                False,
                f"ConnectWise at {where} rejected the credentials: check public_key, private_key "
                f"(an API member's keys) and client_id ({exc})",
            )
        except ConnectorError as exc:
            if exc.status == 404:
                return CheckResult(
                    False,
                    f"ConnectWise at {where} answered 404 to an authenticated call on the right "
                    "codebase; the cloud answers bad API keys that way: check public_key and "
                    f"private_key ({exc})",
                )
            return CheckResult(False, f"ConnectWise at {where}: {exc}")
        version = info.get("version", "unknown version")
        return CheckResult(True, f"ConnectWise {version} at {where}, {self.client.codebase}")

    def pull(self, stream: Stream, cursor: Cursor) -> Iterator[Page]:
        if stream not in RESOURCES:
            raise FatalError(f"connectwise does not offer the {stream.value} stream")
        conditions = None
        if cursor.since is not None:
            conditions = cw_condition("lastUpdated", ">=", cursor.since)
        skipped_before = self.credit_memos_skipped
        for listed in self.client.list_pages(
            RESOURCES[stream], conditions=conditions, position=cursor.position
        ):
            if stream is Stream.CUSTOMERS:
                raws = self._with_billing_emails(listed.records, full=cursor.since is None)
            else:
                raws = self._without_credit_memos(listed.records)
            records, rejected = self.mapping.map_page(stream.value, raws, self.context.connection)
            yield Page(records=records, rejected=rejected, next_position=listed.next_position)
        if self.credit_memos_skipped > skipped_before:
            self.log.info(
                "connectwise_credit_memos_skipped",
                count=self.credit_memos_skipped - skipped_before,
                reason="credit memos are not invoices a customer pays",
            )

    def push_payment(self, push: PaymentPush) -> PushReceipt:
        invoice_id = _invoice_id(push)
        body = {
            "type": "Payment",
            "amount": json_amount(push.amount),
            "paymentDate": push.received_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "appliedBy": push.marker,
            "invoice": {"id": invoice_id},
        }
        try:
            created = self.client.post_payment(invoice_id, body)
        except FatalError as exc:
            if exc.status == 404:
                raise self._missing_invoice(invoice_id, exc) from None
            raise
        return PushReceipt(external_id=str(created["id"]), raw=created)

    def find_payment(self, push: PaymentPush) -> PushReceipt | None:
        invoice_id = _invoice_id(push)
        try:
            payments = self.client.invoice_payments(invoice_id)
        except FatalError as exc:
            if exc.status != 404:
                raise
            verdict = self._missing_invoice(invoice_id, exc)
            if isinstance(verdict, SkippableError):
                return None  # the invoice is gone, and with it any payment of ours
            raise verdict from None
        for payment in payments:
            if payment.get("appliedBy") == push.marker:
                return PushReceipt(external_id=str(payment["id"]), raw=payment)
        return None

    def reverse_payment(self, push: PaymentPush, receipt: PushReceipt) -> None:
        invoice_id = _invoice_id(push)
        if not (receipt.external_id.isascii() and receipt.external_id.isdigit()):
            raise SkippableError(f"connectwise: payment id {receipt.external_id!r} is not a number")
        try:
            self.client.delete_payment(invoice_id, int(receipt.external_id))
        except FatalError as exc:
            if exc.status != 404:
                raise
            try:
                remaining = self.client.invoice_payments(invoice_id)
            except FatalError as missing:
                if missing.status != 404:
                    raise
                verdict = self._missing_invoice(invoice_id, missing)
                if isinstance(verdict, SkippableError):
                    return  # the invoice is gone, and the payment with it
                raise verdict from None
            if any(str(p.get("id")) == receipt.external_id for p in remaining):
                raise
            # Already deleted: a repeated reversal is done.

    def close(self) -> None:
        self.client.close()

    # -- helpers ---------------------------------------------------------------------------------

    def _with_billing_emails(
        self, companies: list[dict[str, Any]], *, full: bool
    ) -> list[dict[str, Any]]:
        """Add each company's billing contact e-mail as ``_syncd.billingContactEmail``. In a full
        pass a page is every company between its first and last id, which lets the client fetch
        the range's billing contacts instead of naming each one."""
        wanted = {rid for rid in map(_billing_contact_id, companies) if rid is not None}
        ids = [c["id"] for c in companies if isinstance(c.get("id"), int)]
        span = (min(ids), max(ids)) if full and ids else None
        emails = self.client.billing_emails(wanted, span) if wanted else {}
        enriched = []
        for company in companies:
            rid = _billing_contact_id(company)
            if rid is not None and emails.get(rid):
                company = {**company, "_syncd": {"billingContactEmail": emails[rid]}}
            enriched.append(company)
        return enriched

    def _without_credit_memos(self, invoices: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept = []
        for invoice in invoices:
            if invoice.get("type") == "CreditMemo":
                self.credit_memos_skipped += 1
                self.log.debug("connectwise_credit_memo_skipped", invoice_id=invoice.get("id"))
            else:
                kept.append(invoice)
        return kept

    def _missing_invoice(self, invoice_id: int, exc: ConnectorError) -> ConnectorError:
        """A persistent 404 on an invoice: bad keys (the cloud's way) or a deleted invoice."""
        try:
            self.client.system_info()
        except ConnectorError:
            return AuthError(
                f"connectwise: 404 on invoice {invoice_id} and on /system/info: the API keys "
                f"are probably wrong or revoked ({exc})",
                status=404,
            )
        return SkippableError(
            f"connectwise: invoice {invoice_id} does not exist (deleted?)", status=404
        )


def _invoice_id(push: PaymentPush) -> int:
    if not (push.invoice_external_id.isascii() and push.invoice_external_id.isdigit()):
        raise SkippableError(
            f"connectwise: invoice id {push.invoice_external_id!r} is not a number"
        )
    return int(push.invoice_external_id)


def _billing_contact_id(company: dict[str, Any]) -> int | None:
    ref = company.get("billingContact")
    rid = ref.get("id") if isinstance(ref, dict) else None
    return rid if isinstance(rid, int) and not isinstance(rid, bool) else None


__all__ = ["ConnectWiseConnector", "ConnectWiseSettings"]
