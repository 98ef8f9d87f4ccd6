"""Build a connector for a configured connection: the registry's class, its settings, a context.

``engine`` is the store: OAuth connectors keep their live tokens in it (``syncd.oauth.TokenVault``)
and find it in ``context.extras["engine"]``, with its URL in ``extras["store_url"]`` (which locates
the key file of ``syncd.secretbox``). Connectors that need no store ignore both.
"""

from __future__ import annotations

import structlog
from sqlalchemy.engine import Engine

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
    engine: Engine | None = None,
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
            "engine": engine,
            "store_url": (
                engine.url.render_as_string(hide_password=True) if engine is not None else None
            ),
        },
    )
    connector: Connector = cls(connection.settings, context)  # type: ignore[call-arg]
    return connector
