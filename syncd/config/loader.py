"""Read ``config.toml`` into ``Settings``, reporting every problem at once with file and key path.

Messages look like ``config.toml: connections.cw.schedule: "5 minutes" is not a duration or cron
expression``. Secret values never appear in a message: pydantic's input echo is dropped and errors
are raised ``from None`` so no traceback carries them either.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, SecretStr, ValidationError

from syncd.config.interpolate import is_secret_key, resolve
from syncd.config.models import (
    GENERIC_CONNECTION_KEYS,
    ConnectionSettings,
    DaemonSettings,
    LoggingSettings,
    PaymentsSettings,
    Settings,
    StoreSettings,
)
from syncd.errors import ConfigError
from syncd.registry import BrokenConnector, Registry, UnknownConnector, default_registry

_M = TypeVar("_M", bound=BaseModel)
_TOP_LEVEL: dict[str, type[BaseModel]] = {
    "store": StoreSettings,
    "daemon": DaemonSettings,
    "logging": LoggingSettings,
    "payments": PaymentsSettings,
}


def load_settings(
    path: Path | str,
    *,
    env: Mapping[str, str] | None = None,
    registry: Registry | None = None,
) -> Settings:
    """Parse, resolve and validate ``path``; raise one ConfigError listing every problem."""
    path = Path(path)
    label = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{label}: no such file (pass --config PATH or create it)") from None
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read: {exc.strerror or type(exc).__name__}") from None
    try:
        tree = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{label}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{label}: not valid TOML: {exc}") from None
    return settings_from_tree(
        tree,
        label=label,
        base_dir=path.parent,
        env=os.environ if env is None else env,
        registry=registry or default_registry(),
        source=path,
    )


def settings_from_tree(
    tree: Mapping[str, Any],
    *,
    label: str,
    base_dir: Path,
    env: Mapping[str, str],
    registry: Registry,
    source: Path | None = None,
) -> Settings:
    """Validate an already parsed TOML tree (the demo builds one in memory)."""
    resolution = resolve(tree, base_dir=base_dir, env=env)
    problems = list(resolution.problems)
    secrets = set(resolution.secrets)
    data = resolution.value
    sections: dict[str, Any] = {}

    for key in sorted(set(data) - {*_TOP_LEVEL, "connections"}):
        problems.append(
            f"{key}: unknown top-level key "
            "(expected store, daemon, logging, payments or connections)"
        )
    for key, model in _TOP_LEVEL.items():
        table = data.get(key, {})
        if not isinstance(table, dict):
            problems.append(f"{key}: expected a table, got {type(table).__name__}")
            continue
        section = _validate(model, table, key, problems)
        if section is not None:
            sections[key] = section
            secrets.update(_secret_values(section))  # daemon.api_token, even when literal

    connections = data.get("connections", {})
    built: dict[str, ConnectionSettings] = {}
    if not isinstance(connections, dict):
        problems.append("connections: expected a table of [connections.NAME] tables")
        connections = {}
    for name, table in connections.items():
        where = f"connections.{name}"
        if not isinstance(table, dict):
            problems.append(f"{where}: expected a table, got {type(table).__name__}")
            continue
        connection = _connection(name, table, where, registry, problems, secrets)
        if connection is not None:
            built[name] = connection

    problems = [p for p in problems if not _repeats_unresolved(p, resolution.unresolved)]
    if problems:
        raise ConfigError([f"{label}: {p}" for p in problems])
    return Settings(
        source=source,
        connections=built,
        secrets=frozenset(secrets),
        **sections,
    )


def _connection(
    name: str,
    table: dict[str, Any],
    where: str,
    registry: Registry,
    problems: list[str],
    secrets: set[str],
) -> ConnectionSettings | None:
    generic = {k: v for k, v in table.items() if k in GENERIC_CONNECTION_KEYS}
    own = {k: v for k, v in table.items() if k not in GENERIC_CONNECTION_KEYS}
    for key, value in own.items():
        if isinstance(value, str) and is_secret_key(key):
            secrets.add(value)
    validated = _validate(ConnectionSettings, {"name": name, **generic}, where, problems)
    connector_name = generic.get("connector")
    if not isinstance(connector_name, str):
        return None  # reported by the generic validation above
    try:
        connector = registry.load(connector_name)
    except (UnknownConnector, BrokenConnector) as exc:
        problems.append(f"{where}.connector: {exc}")
        return None
    connector_settings = _validate(connector.settings_model, own, where, problems)
    if connector_settings is not None:
        secrets.update(_secret_values(connector_settings))
    if validated is None or connector_settings is None:
        return None
    return validated.model_copy(update={"settings": connector_settings})


def _repeats_unresolved(problem: str, unresolved: set[str]) -> bool:
    return any(problem == f"{key}: missing (required)" for key in unresolved)


def _secret_values(model: BaseModel) -> set[str]:
    found: set[str] = set()
    for field_name in type(model).model_fields:
        value = getattr(model, field_name)
        if isinstance(value, SecretStr):
            found.add(value.get_secret_value())
        elif isinstance(value, BaseModel):
            found |= _secret_values(value)
    return found


def _validate(model: type[_M], data: dict[str, Any], where: str, problems: list[str]) -> _M | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_input=False, include_url=False):
            loc = ".".join(str(part) for part in error["loc"])
            path = f"{where}.{loc}" if loc else where
            problems.append(f"{path}: {_message(error['type'], error['msg'])}")
        return None


def _message(kind: str, msg: str) -> str:
    if kind == "extra_forbidden":
        return "unknown key (not a setting of this section; check the spelling)"
    if kind == "missing":
        return "missing (required)"
    return msg.removeprefix("Value error, ")
