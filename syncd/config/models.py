"""Typed settings: what a validated ``config.toml`` becomes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, field_validator

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


class DaemonSettings(_Section):
    # Random delay before a job's first run, so hundreds of connections do not fire together.
    startup_jitter: Seconds = 30
    # How long a stopping daemon waits for running pages to commit before it exits anyway.
    stop_timeout: Seconds = 30


class LoggingSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


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
    connections: dict[str, ConnectionSettings] = Field(default_factory=dict)
    secrets: frozenset[str] = frozenset()  # every secret value resolved, for the redactor

    def connection(self, name: str) -> ConnectionSettings:
        try:
            return self.connections[name]
        except KeyError:
            known = ", ".join(sorted(self.connections)) or "none configured"
            raise KeyError(f"no connection named {name!r} (known: {known})") from None
