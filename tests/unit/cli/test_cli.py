"""The command line as a user meets it: real processes, clear messages, never a traceback."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from syncd.store.migrate import head_revision

GOOD = """
[store]
url = "sqlite:///./syncd.db"

[connections.acme]
connector = "fake"
schedule = "5m"
token = "${ACME_TOKEN}"
"""

Run = Callable[..., Any]
Result = Any


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.err and "Traceback" not in result.out


def test_help_lists_every_command(syncd: Run) -> None:
    result = syncd("--help")
    assert result.code == 0
    for command in (
        "check-config",
        "db",
        "sync",
        "push",
        "run",
        "status",
        "export",
        "payments",
        "connectors",
        "demo",
    ):
        assert command in result.out


@pytest.mark.parametrize(
    "args",
    [
        ["check-config"],
        ["db", "upgrade"],
        ["sync"],
        ["run"],
        ["status"],
        ["export"],
        ["payments", "record"],
        ["connectors", "list"],
        ["demo"],
        ["push"],
    ],
)
def test_every_command_has_help(syncd: Run, args: list[str]) -> None:
    result = syncd(*args, "--help")
    assert result.code == 0, result.err
    assert "Usage:" in result.out and len(result.out.splitlines()) > 3


def test_check_config_ok(syncd: Run, tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(GOOD)
    result = syncd("check-config", env={"ACME_TOKEN": "tok-123456"})
    assert result.code == 0, result.err
    assert "connection acme: fake, every 5m" in result.out
    assert not (tmp_path / "syncd.db").exists()  # validation opens no store


@pytest.mark.parametrize(
    ("config", "env", "expected"),
    [
        ("[store\n", {}, "config.toml: not valid TOML"),
        (
            GOOD.replace('"fake"', '"nope"'),
            {"ACME_TOKEN": "x1234"},
            "connections.acme.connector: unknown connector 'nope' "
            "(known: broken, connectwise, fake, quickbooks_online)",
        ),
        (GOOD.replace('token = "${ACME_TOKEN}"', ""), {}, "connections.acme.token: missing"),
        (
            GOOD.replace('token = "${ACME_TOKEN}"', 'token_file = "missing.txt"'),
            {},
            "connections.acme.token_file: file",
        ),
        (GOOD, {}, "connections.acme.token: environment variable ${ACME_TOKEN} is not set"),
        (
            GOOD.replace('"5m"', '"5 minutes"'),
            {"ACME_TOKEN": "x1234"},
            "connections.acme.schedule: '5 minutes' is not a duration or cron expression",
        ),
    ],
)
def test_config_errors_are_one_clear_line(
    syncd: Run, tmp_path: Path, config: str, env: dict[str, str], expected: str
) -> None:
    (tmp_path / "config.toml").write_text(config)
    result = syncd("check-config", env=env)
    assert result.code == 2
    assert expected in result.err
    assert result.err.startswith("syncd: config error: config.toml: ")
    no_traceback(result)


def test_missing_config_file(syncd: Run) -> None:
    result = syncd("--config", "absent.toml", "check-config")
    assert result.code == 2 and "absent.toml: no such file" in result.err
    no_traceback(result)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////no/such/dir/x.db", "folder '/no/such/dir' does not exist"),
        ("postgresql://u:hunter22@127.0.0.1:1/x", "cannot open the store"),
        ("oracle://x", "only SQLite and PostgreSQL"),
    ],
)
def test_store_that_cannot_be_opened(syncd: Run, tmp_path: Path, url: str, expected: str) -> None:
    (tmp_path / "config.toml").write_text(f'[store]\nurl = "{url}"\n')
    result = syncd("status")
    assert result.code == 1 and expected in result.err
    assert "hunter22" not in result.err
    no_traceback(result)


def test_connectors_list_shows_capabilities_and_survives_a_broken_plugin(syncd: Run) -> None:
    result = syncd("connectors", "list")
    assert result.code == 0
    assert "fake: customers, invoices" in result.out
    assert "connectwise: customers, invoices, payments:write" in result.out
    assert "broken: NOT LOADED" in result.err and "ModuleNotFoundError" in result.err


def test_db_upgrade_sync_status_export(syncd: Run, tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(GOOD)
    env = {"ACME_TOKEN": "tok-123456"}
    upgraded = syncd("db", "upgrade", env=env)
    assert upgraded.code == 0 and f"store schema at {head_revision()}" in upgraded.out
    synced = syncd("sync", env=env)
    assert synced.code == 0, synced.err
    assert "acme/customers: succeeded" in synced.out
    assert "tok-123456" not in synced.out + synced.err
    status = syncd("status", "--json", env=env)
    payload = json.loads(status.out)
    assert {(s["connection"], s["stream"], s["last_status"]) for s in payload["streams"]} == {
        ("acme", "customers", "succeeded"),
        ("acme", "invoices", "succeeded"),
    }
    exported = syncd("export", "invoices", "--format", "csv", env=env)
    assert exported.out.splitlines() == [
        "connection,external_id,number,customer_external_id,currency,total,balance,status,"
        "issued_on,due_date,updated_at"
    ]
    assert json.loads(syncd("export", "customers", env=env).out) == []


def test_sync_of_unknown_connection(syncd: Run, tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(GOOD)
    result = syncd("sync", "--connection", "nope", env={"ACME_TOKEN": "tok-123456"})
    assert result.code == 2 and "no connection named 'nope' (known: acme)" in result.err
    no_traceback(result)


def test_status_shows_the_next_run(syncd: Run, tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(GOOD)
    env = {"ACME_TOKEN": "tok-123456"}
    assert syncd("sync", env=env).code == 0
    streams = json.loads(syncd("status", "--json", env=env).out)["streams"]
    for stream in streams:
        started = dt.datetime.fromisoformat(stream["last_started_at"])
        assert dt.datetime.fromisoformat(stream["next_run"]) >= started + dt.timedelta(minutes=5)
    assert "next run" in syncd("status", env=env).out
