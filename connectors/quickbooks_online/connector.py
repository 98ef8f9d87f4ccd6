"""The QuickBooks Online connector: customers and invoices in, invoice payments (and fees) out.

- **customers** = ``Customer``, inactive ones included (``Active IN (true, false)``: a name list
  hides them otherwise, research/accounting-apis.md 1.3).
- **invoices** = ``Invoice``. Voids are recognised by the mapping (amounts 0 and ``PrivateNote``
  "Voided", research 1.5). Deletions come from change data capture (1.4): after the query pages of
  an incremental pass, one ``/cdc`` call since the pass's ``since`` lists tombstones (``status:
  "Deleted"``, nothing but an ``Id``), which a final page hands to the engine as
  ``Page.deleted``. CDC looks back at most 30 days (by Intuit's clock, read from its answers):
  for an older ``since``, in every full pass, and when Intuit refuses the call (logged), the
  daily sweep finds those deletions instead.
- **Paging** (1.3): ``SELECT * … WHERE MetaData.LastUpdatedTime >= since ORDERBY
  MetaData.LastUpdatedTime DESC, Id DESC STARTPOSITION n MAXRESULTS 1000``. A position is the next
  ``STARTPOSITION`` plus the ``since`` it belongs to. Offsets shift when the set changes during a
  pass: newest first, an edit or a new record moves to the front, so a record already read may be
  read again (idempotent upserts absorb it) but none is skipped; a *deletion* during a pass can
  hide one record from it, which the next pass's look-back or the sweep brings back. ``Id`` breaks
  ties between equal timestamps (second resolution), so pages never overlap or miss in a quiet
  company.
- **Money and time**: amounts stay JSON numbers in ``raw`` (the store's payload is JSON) and the
  mapping makes them ``Decimal`` through ``Decimal(str(x))``; ``LastUpdatedTime`` carries the
  company's offset and the mapping normalises it to UTC.
- **payments:write**: see ``payments.py`` (requestid, marker in ``PrivateNote``, search by
  customer and creation time). ``book_fee``/``book_deposit`` book a card payout with its fee
  (``BooksDeposits``: on once ``deposit_bank_account`` is set); ``push_payments`` sends up to 30
  per batch request (``PushesInBatches``). ``verify_webhook``/``parse_webhook`` serve
  the daemon's webhook endpoint.

python-quickbooks and intuit-oauth are not used (see ``client.py`` and ``auth.py`` for why).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qsl, urlencode

import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from connectors.quickbooks_online.auth import (
    DEFAULT_AUTHORIZE_URL,
    DEFAULT_TOKEN_URL,
    DISCOVERY_URLS,
    VaultTokens,
)
from connectors.quickbooks_online.client import (
    BATCH_LIMITS,
    CDC_MAX_DAYS,
    CDC_MAX_OBJECTS,
    LIMITS,
    MAX_RESULTS,
    MINOR_VERSION,
    QuickBooksClient,
)
from connectors.quickbooks_online.payments import PaymentWriter
from connectors.quickbooks_online.webhooks import Change, parse_webhook, verify_webhook
from syncd.connector import (
    BaseConnector,
    Capability,
    CheckResult,
    ConnectorContext,
    Cursor,
    DepositLine,
    Page,
    PaymentPush,
    PushReceipt,
    Stream,
)
from syncd.errors import AuthError, ConnectorError, FatalError
from syncd.mapping_files import connection_mapping
from syncd.query import qbo_select
from syncd.ratelimit import get_limiter
from syncd.settings_types import HttpUrlText

API_ROOTS = {
    "production": "https://quickbooks.api.intuit.com",
    "sandbox": "https://sandbox-quickbooks.api.intuit.com",
}
ENTITIES: dict[Stream, str] = {Stream.CUSTOMERS: "Customer", Stream.INVOICES: "Invoice"}
ORDER = ("MetaData.LastUpdatedTime DESC", "Id DESC")
CDC_MARGIN = dt.timedelta(hours=1)  # stay clear of the 30-day edge (clock skew, slow passes)


class QuickBooksOnlineSettings(BaseModel):
    """A connection's settings. Only ``realm_id`` and the app's keys are required; the rest
    default to Intuit's production endpoints (``environment = "sandbox"`` for a sandbox company)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    realm_id: str = Field(min_length=1, pattern=r"^[0-9A-Za-z-]+$")  # the company id (realmId)
    client_id: str = Field(min_length=1)  # the app's client id: an id, not a secret
    client_secret: SecretStr
    # Only a seed: the vault keeps the live, rotating token once the first refresh has run.
    # Leave it out after `syncd auth NAME`.
    refresh_token: SecretStr | None = None
    environment: Literal["production", "sandbox"] = "production"
    base_url: HttpUrlText | None = None  # the API root under which /v3/company/… lives
    # Default: Intuit's token endpoint, unless discovery_url is set.
    token_url: HttpUrlText | None = None
    # Read for token_endpoint only when token_url is not set.
    discovery_url: HttpUrlText | None = None
    authorize_url: HttpUrlText = DEFAULT_AUTHORIZE_URL  # the consent page `syncd auth` opens
    scopes: tuple[str, ...] = ("com.intuit.quickbooks.accounting",)
    minorversion: int = Field(default=MINOR_VERSION, ge=MINOR_VERSION)
    page_size: int = Field(default=MAX_RESULTS, ge=1, le=MAX_RESULTS)
    # Where card payouts land: fee deposits move payments from Undeposited Funds to this account.
    deposit_bank_account: str | None = None
    verifier_token: SecretStr | None = None  # the app's webhook verifier token

    @model_validator(mode="before")
    @classmethod
    def _default_token_url(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("token_url") and not data.get("discovery_url"):
            return {**data, "token_url": DEFAULT_TOKEN_URL}
        return data

    @field_validator("client_secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("client_secret is empty")
        return value

    @property
    def api_root(self) -> str:
        root = (self.base_url or API_ROOTS[self.environment]).rstrip("/")
        return root.removesuffix("/v3")  # python-quickbooks' api_url_v3 form works too

    @property
    def discovery(self) -> str:
        return self.discovery_url or DISCOVERY_URLS[self.environment]


class QuickBooksOnlineConnector(BaseConnector):
    """One QuickBooks Online company (see the module docstring for what it pulls and pushes)."""

    name = "quickbooks_online"
    settings_model = QuickBooksOnlineSettings
    capabilities = frozenset(
        {
            Capability.CUSTOMERS,
            Capability.INVOICES,
            Capability.PAYMENTS_WRITE,
            Capability.WEBHOOKS,
        }
    )
    sandbox = "connectors.quickbooks_online.sandbox:start"
    # SyncToken moves with every save and MetaData holds audit stamps: neither is content.
    volatile_keys: ClassVar[frozenset[str]] = frozenset({"MetaData", "SyncToken"})
    # One query per page; an incremental invoice pass adds one CDC call at its end.
    max_page_size: ClassVar[int] = MAX_RESULTS
    default_mapping: ClassVar[Path] = Path(__file__).with_name("mapping.toml")

    def __init__(self, settings: BaseModel, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        if not isinstance(settings, QuickBooksOnlineSettings):
            raise TypeError(f"expected QuickBooksOnlineSettings, got {type(settings).__name__}")
        self.config = settings
        self.log = context.log or structlog.get_logger("connectors.quickbooks_online").bind(
            connection=context.connection
        )
        seed = settings.refresh_token.get_secret_value() if settings.refresh_token else None
        tokens = VaultTokens(
            connection=context.connection,
            extras=context.extras,
            client_id=settings.client_id,
            client_secret=settings.client_secret.get_secret_value(),
            seed_refresh_token=seed,
            token_url=settings.token_url,
            discovery_url=settings.discovery,
            clock=context.clock,
        )
        realm = ("quickbooks", settings.realm_id)
        self.client = QuickBooksClient(
            settings.api_root,
            settings.realm_id,
            tokens,
            connection=context.connection,
            clock=context.clock,
            minorversion=settings.minorversion,
            limiter=get_limiter(realm, LIMITS, context.clock),
            batch_limiter=get_limiter(
                ("quickbooks-batch", settings.realm_id), BATCH_LIMITS, context.clock
            ),
        )
        self.writer = PaymentWriter(self.client, bank_account=settings.deposit_bank_account)
        self.mapping = connection_mapping(self.default_mapping, context.extras)

    @property
    def requests_made(self) -> int:
        return self.client.requests_made

    def check(self) -> CheckResult:
        where = f"QuickBooks Online company {self.config.realm_id} at {self.config.api_root}"
        try:
            # Intuit's own liveness read: GET /companyinfo/{realmId}.
            info = self.client.read("CompanyInfo", self.config.realm_id)
        except AuthError as exc:
            if exc.code == "3100":  # a valid token, for another company (research 1.9)
                return CheckResult(
                    False,
                    f"{where}: the credentials are for another company: check realm_id ({exc})",
                )
            return CheckResult(
                False,
                f"{where} rejected the credentials: check client_id and client_secret, and "
                f"reconnect with `syncd auth {self.context.connection}` ({exc})",
            )
        except ConnectorError as exc:
            return CheckResult(False, f"{where}: {exc}")
        return CheckResult(True, f"{where}: {info.get('CompanyName', 'unnamed company')}")

    def pull(self, stream: Stream, cursor: Cursor) -> Iterator[Page]:
        if stream not in ENTITIES:
            raise FatalError(f"quickbooks_online does not offer the {stream.value} stream")
        phase, start, since = _parse_position(cursor)
        size = self.config.page_size
        while phase == "query":
            rows = self.client.query_rows(ENTITIES[stream], self._statement(stream, since, start))
            records, rejected = self.mapping.map_page(stream.value, rows, self.context.connection)
            start += len(rows)
            if len(rows) == size:
                following: str | None = _position("query", start, since)
            else:
                deletions = stream is Stream.INVOICES and self._cdc_reaches(since)
                phase = "cdc" if deletions else "done"
                following = _position("cdc", None, since) if deletions else None
            yield Page(records=records, rejected=rejected, next_position=following)
        if phase == "cdc" and since is not None:
            deleted = self.deleted_invoices(since)
            if deleted:
                yield Page(records=(), deleted=deleted, next_position=None)

    def deleted_invoices(self, since: dt.datetime) -> tuple[str, ...]:
        """Ids of invoices deleted at or after ``since``, by CDC. A full answer (1000 objects) is
        followed from its newest ``LastUpdatedTime`` until a short one (research 1.4)."""
        deleted: dict[str, None] = {}
        while True:
            try:
                rows = self.client.changed_since(["Invoice"], since)["Invoice"]
            except FatalError as exc:
                if exc.status != 400:
                    raise
                # Refused (e.g. since older than 30 days by Intuit's clock): failing here would
                # fail every pass from now on; the sweep finds these deletions instead.
                self.log.warning("quickbooks_cdc_refused", error=str(exc))
                break
            deleted.update((str(r["Id"]), None) for r in rows if r.get("status") == "Deleted")
            newest = max(filter(None, map(_updated_at, rows)), default=None)
            if len(rows) < CDC_MAX_OBJECTS or newest is None or newest <= since:
                break
            since = newest
        if deleted:
            self.log.info("quickbooks_deletions", count=len(deleted))
        return tuple(deleted)

    def push_payment(self, push: PaymentPush) -> PushReceipt:
        return self.writer.push(push)

    def find_payment(self, push: PaymentPush) -> PushReceipt | None:
        return self.writer.find(push)

    def push_payments(self, pushes: Sequence[PaymentPush]) -> list[PushReceipt | ConnectorError]:
        """Batch pushes (30 per request): one receipt or error per push, in order."""
        return self.writer.push_many(pushes)

    def deposits_enabled(self) -> bool:
        """Deposits (and with them card fees) are booked once ``deposit_bank_account`` names the
        bank account payouts reach: off by default, as in the payment platforms users know
        (research/seed-product.md: "Create Deposits" plus a deposit bank account)."""
        return self.config.deposit_bank_account is not None

    def book_fee(self, push: PaymentPush, payment: PushReceipt) -> PushReceipt:
        """The payout of one card payment: a Deposit of its gross less ``push.fee``."""
        return self.book_deposit(
            push.key,
            push.marker,
            [DepositLine(payment.external_id, push.amount)],
            push.fee,
            fee_account=push.accounts.fee_account,
            deposited_at=push.received_at,
        )

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
    ) -> PushReceipt:
        """A payout of several payments with one fee line (see ``payments.py``)."""
        return self.writer.deposit(
            key, marker, lines, fee, fee_account=fee_account, deposited_at=deposited_at, memo=memo
        )

    def find_deposit(self, marker: str, deposited_at: dt.datetime) -> PushReceipt | None:
        return self.writer.find_deposit(marker, deposited_at)

    def verify_webhook(self, body: bytes, signature: str | None) -> bool:
        """Is this delivery Intuit's? False when no ``verifier_token`` is configured."""
        token = self.config.verifier_token
        return token is not None and verify_webhook(body, signature, token.get_secret_value())

    def parse_webhook(self, body: bytes) -> list[Change]:
        """The changes of this company (``realm_id``) a delivery announces."""
        return [c for c in parse_webhook(body) if c.realm_id == self.config.realm_id]

    def close(self) -> None:
        self.client.close()

    # -- helpers ---------------------------------------------------------------------------------

    def _statement(self, stream: Stream, since: dt.datetime | None, start: int) -> str:
        where: list[tuple[str, str, object]] = []
        if stream is Stream.CUSTOMERS:
            where.append(("Active", "IN", (True, False)))
        if since is not None:
            where.append(("MetaData.LastUpdatedTime", ">=", since))
        return qbo_select(
            ENTITIES[stream], where, ORDER, start_position=start, max_results=self.config.page_size
        )

    def _cdc_reaches(self, since: dt.datetime | None) -> bool:
        """Whether CDC looks back as far as ``since``, by Intuit's clock when an answer told it
        (its ``time`` field), else by ours."""
        if since is None:
            return False  # a full pass lists every live invoice; the sweep marks the rest
        now = self.client.server_time or self.context.clock.now()
        if now - since <= dt.timedelta(days=CDC_MAX_DAYS) - CDC_MARGIN:
            return True
        self.log.info(
            "quickbooks_cdc_skipped", since=since.isoformat(), reason="older than 30 days"
        )
        return False


def _position(phase: str, start: int | None, since: dt.datetime | None) -> str:
    values = {"phase": phase, "start": start, "since": since.isoformat() if since else None}
    return urlencode({k: v for k, v in values.items() if v is not None})


def _parse_position(cursor: Cursor) -> tuple[str, int, dt.datetime | None]:
    """(phase, next STARTPOSITION, since) of a pass, new or resumed."""
    if cursor.position is None:
        return "query", 1, cursor.since
    values = dict(parse_qsl(cursor.position))
    try:
        since = dt.datetime.fromisoformat(values["since"]) if "since" in values else None
        phase, start = values["phase"], int(values.get("start", "1"))
    except (KeyError, ValueError):
        raise FatalError(f"quickbooks_online: unreadable position {cursor.position!r}") from None
    if phase not in ("query", "cdc") or start < 1:
        raise FatalError(f"quickbooks_online: unreadable position {cursor.position!r}")
    return phase, start, since


def _updated_at(row: dict[str, Any]) -> dt.datetime | None:
    meta = row.get("MetaData")
    stamp = meta.get("LastUpdatedTime") if isinstance(meta, dict) else None
    try:
        parsed = dt.datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
    except ValueError:
        return None
    return parsed if parsed is not None and parsed.tzinfo is not None else None


__all__ = ["QuickBooksOnlineConnector", "QuickBooksOnlineSettings"]
