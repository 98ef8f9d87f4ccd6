"""Configuration: TOML in, validated ``Settings`` out, with errors that name file, key and fix."""

from syncd.config.loader import load_settings, settings_from_tree
from syncd.config.models import (
    ConnectionSettings,
    DaemonSettings,
    LoggingSettings,
    Settings,
    StoreSettings,
)
from syncd.config.schedule import Schedule, parse_duration

__all__ = [
    "ConnectionSettings",
    "DaemonSettings",
    "LoggingSettings",
    "Schedule",
    "Settings",
    "StoreSettings",
    "load_settings",
    "parse_duration",
    "settings_from_tree",
]
