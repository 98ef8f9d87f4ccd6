"""The systemd unit in deploy/ matches the code: the command it runs and the exit status that
means "fix the config, do not restart"."""

from __future__ import annotations

import configparser
from pathlib import Path

from syncd.cli import EXIT_CONFIG

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "syncd.service"


def test_unit_runs_the_daemon_and_does_not_restart_on_config_errors() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(UNIT)
    service = unit["Service"]
    assert service["ExecStart"].endswith("/.venv/bin/syncd run")
    assert service["ExecStartPre"].endswith("syncd check-config")
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["RestartPreventExitStatus"]) == EXIT_CONFIG
    assert service["Environment"] == "SYNCD_CONFIG=/etc/syncd/config.toml"
