"""Typed settings: what a validated ``config.toml`` becomes."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    field_validator,
    model_validator,
)

from syncd.config.schedule import Schedule, parse_duration


def _schedule(value: Any) -> Schedule:
    if isinstance(value, Schedule):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a duration or cron expression string")
    return Schedule.parse(value)


def _duration(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a duration (use e.g. 30s, 5m, 1h)")
    return parse_duration(value)


ScheduleField = Annotated[Schedule, BeforeValidator(_schedule), PlainSerializer(str)]
Seconds = Annotated[int, BeforeValidator(_duration)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreSettings(_Section):
    url: str = "sqlite:///./syncd.db"


MIN_API_TOKEN_LENGTH = 16


def parse_listen(value: str) -> tuple[str, int]:
    """``host:port`` (IPv6 in brackets: ``[::1]:8086``) as (host, port); port 0 picks a free one."""
    host, sep, port = value.strip().rpartition(":")
    example = "use host:port, e.g. 127.0.0.1:8086 or [::1]:8086"
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{value!r} is not an address to listen on ({example})")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{value!r}: write an IPv6 address in brackets ({example})")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """True when only this machine can reach ``host`` (a name other than localhost is not)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class DaemonSettings(_Section):
    # Random delay before a job's first run, so hundreds of connections do not fire together.
    startup_jitter: Seconds = 30
    # How long a stopping daemon waits for running pages to commit before it exits anyway.
    stop_timeout: Seconds = 30
    # Serve the HTTP app (health, readiness, metrics, status, payments API) beside the scheduler.
    http: bool = True
    # Where the HTTP app listens. Loopback by default: anything wider needs api_token.
    listen: str = "127.0.0.1:8086"
    # Bearer token of /status and the payments API (required when listen is not loopback).
    api_token: SecretStr | None = None
    # A connection with a run due this long ago and no success since makes /readyz fail.
    stuck_after: Seconds = 3 * 3600

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_listen(value)
        return value.strip()

    @field_validator("api_token")
    @classmethod
    def _api_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_API_TOKEN_LENGTH:
            raise ValueError(
                f"use at least {MIN_API_TOKEN_LENGTH} characters (e.g. `openssl rand -hex 32`)"
            )
        return value

    @field_validator("stuck_after")
    @classmethod
    def _stuck_after(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be a positive duration, e.g. 3h")
        return value

    @model_validator(mode="after")
    def _token_beyond_loopback(self) -> DaemonSettings:
        host, _port = self.listen_address
        if self.http and self.api_token is None and not is_loopback(host):
            raise ValueError(
                f"listen = {self.listen!r} accepts connections from other machines: set "
                "api_token (or api_token_file) so /status and the payments API require a bearer "
                "token, or listen on 127.0.0.1"
            )
        return self

    @property
    def listen_address(self) -> tuple[str, int]:
        return parse_listen(self.listen)


class LoggingSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class PaymentsSettings(_Section):
    """How the pusher retries and settles (docs/payments.md)."""

    # After this many attempts that failed before anything reached the vendor, a push is dead
    # (shown by `syncd push list`, retried with `syncd push retry`). Uncertain pushes never die.
    max_attempts: int = Field(default=8, ge=1)
    # How long a worker holds a push it is sending. Must exceed the longest vendor call (HTTP
    # timeouts, rate-limit waits): another worker takes a push over only after it expires.
    lease: Seconds = Field(default=300, ge=1)
    # Retry delay after the first failure, doubled each time up to retry_cap, with jitter.
    retry_base: Seconds = 30
    retry_cap: Seconds = 21600
    # How long after an uncertain outcome (timeout, dropped connection) the vendor is searched
    # for the push's marker: long enough for a slow vendor to finish writing.
    settle_after: Seconds = 60
    # How often `syncd run` looks for queued payments to push.
    push_every: Seconds = Field(default=60, ge=1)
    # How card payouts become deposits where a target books them (QuickBooks Online with a
    # deposit_bank_account): per_payment, a card payment with a fee in no recorded payout is
    # deposited on its own once pushed (net = gross - fee); per_payout, only payouts recorded
    # with `syncd payouts record` (or imported) are deposited.
    deposits: Literal["per_payment", "per_payout"] = "per_payment"


class ConnectionSettings(_Section):
    """The keys every connection has; all other keys belong to the connector's own settings."""

    name: str
    connector: str = Field(min_length=1)
    schedule: ScheduleField = Field(default_factory=lambda: Schedule.parse("15m"))
    enabled: bool = True
    # Look-back subtracted from the stored watermark on each incremental pull (clock skew,
    # records updated while we paginate); idempotent upserts absorb the overlap.
    lookback: Seconds = 300
    # How often a full enumeration looks for deletions and money drift (see syncd/sync/sweep.py).
    sweep: ScheduleField = Field(default_factory=lambda: Schedule.parse("1d"))
    # A sweep that would delete more than this share of the connection's rows deletes nothing
    # and opens a review item instead.
    max_delete_share: float = Field(default=0.2, ge=0, le=1)
    receives_payments: bool = False
    deposit_account: str | None = None
    payment_method: str | None = None
    fee_account: str | None = None
    mapping: Path | None = None
    mapping_overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # The connector's own settings, validated by its settings model (a pydantic model instance).
    settings: Any = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"{value!r}: use letters, digits, '-' and '_' in connection names")
        return value


GENERIC_CONNECTION_KEYS = frozenset(ConnectionSettings.model_fields) - {"name", "settings"}


class Settings(_Section):
    source: Path | None = None  # the file these settings came from, for messages
    store: StoreSettings = Field(default_factory=StoreSettings)
    daemon: DaemonSettings = Field(default_factory=DaemonSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    payments: PaymentsSettings = Field(default_factory=PaymentsSettings)
    connections: dict[str, ConnectionSettings] = Field(default_factory=dict)
    secrets: frozenset[str] = frozenset()  # every secret value resolved, for the redactor

    def connection(self, name: str) -> ConnectionSettings:
        try:
            return self.connections[name]
        except KeyError:
            known = ", ".join(sorted(self.connections)) or "none configured"
            raise KeyError(f"no connection named {name!r} (known: {known})") from None
