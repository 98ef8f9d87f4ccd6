"""Build a connector for a configured connection: the registry's class, its settings, a context."""

from __future__ import annotations

import structlog

from syncd.clock import Clock, SystemClock
from syncd.config.models import ConnectionSettings, Settings
from syncd.connector import Connector, ConnectorContext
from syncd.registry import Registry, default_registry


def build_connector(
    settings: Settings,
    connection: ConnectionSettings,
    *,
    clock: Clock | None = None,
    registry: Registry | None = None,
) -> Connector:
    cls = (registry or default_registry()).load(connection.connector)
    context = ConnectorContext(
        connection=connection.name,
        clock=clock or SystemClock(),
        log=structlog.get_logger("syncd.connector").bind(connection=connection.name),
        secrets=tuple(sorted(settings.secrets)),
        extras={
            "mapping_path": connection.mapping,
            "mapping_overrides": connection.mapping_overrides,
            "config_dir": settings.source.parent if settings.source else None,
        },
    )
    connector: Connector = cls(connection.settings, context)  # type: ignore[call-arg]
    return connector
