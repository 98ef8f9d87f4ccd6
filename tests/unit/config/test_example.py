"""config.example.toml is the documentation of every key: it must name each one the code reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from syncd.config.models import (
    ConnectionSettings,
    DaemonSettings,
    LoggingSettings,
    PaymentsSettings,
    StoreSettings,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "config.example.toml"


@pytest.mark.parametrize(
    "model",
    [StoreSettings, DaemonSettings, LoggingSettings, PaymentsSettings, ConnectionSettings],
)
def test_every_setting_is_documented(model: type[BaseModel]) -> None:
    text = EXAMPLE.read_text()
    documented = set(re.findall(r"^#?\s*([a-z_]+)\s*=", text, flags=re.MULTILINE))
    documented |= set(re.findall(r"\.([a-z_]+)\.[a-z_]+\]", text))  # sub-tables
    missing = set(model.model_fields) - {"name", "settings"} - documented
    assert not missing, f"config.example.toml does not document {sorted(missing)}"
