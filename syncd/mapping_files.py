"""Which mapping a connection uses: its own file if the config names one, else the connector's
default (``mappings/<connector>.toml``, shipped inside the connector's package), with the
connection's single-field overrides applied either way."""

from __future__ import annotations

from collections.abc import Mapping as AbcMapping
from pathlib import Path
from typing import Any

from syncd.mapping import Mapping, load_mapping


def connection_mapping(default: Path, extras: AbcMapping[str, Any]) -> Mapping:
    """The compiled mapping for a connection, from a ``ConnectorContext.extras``-shaped dict
    (``mapping_path``, ``mapping_overrides``, ``config_dir``)."""
    overrides = extras.get("mapping_overrides") or None
    chosen = extras.get("mapping_path")
    if chosen is None:
        return load_mapping(default, overrides)
    path = Path(chosen).expanduser()
    config_dir = extras.get("config_dir")
    if not path.is_absolute() and config_dir is not None:
        path = Path(config_dir) / path
    return load_mapping(path, overrides)
