"""Config: every mistake gives one clear line naming the file, the key path and the fix."""

from __future__ import annotations

import os
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from syncd.config import load_settings
from syncd.errors import ConfigError
from syncd.registry import GROUP, Registry

REGISTRY = Registry(
    [
        EntryPoint(name="fake", value="syncd.testing:FakeConnector", group=GROUP),
        EntryPoint(name="broken", value="syncd.no_such_module:Nope", group=GROUP),
    ]
)

GOOD = """
[store]
url = "sqlite:///./syncd.db"

[logging]
level = "debug"

[connections.cw]
connector = "fake"
schedule = "5m"
token = "${FAKE_TOKEN}"
page_size = 50

[connections.nightly]
connector = "fake"
schedule = "0 2 * * *"
token_file = "token.txt"
receives_payments = true
deposit_account = "Undeposited Funds"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load(path: Path, env: dict[str, str] | None = None) -> object:
    return load_settings(path, env=env or {}, registry=REGISTRY)


def problems(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(path, env)
    return caught.value.problems


def test_good_config_resolves_env_files_and_schedules(tmp_path: Path) -> None:
    (tmp_path / "token.txt").write_text("file-secret-123\n")
    settings = load_settings(
        write(tmp_path, GOOD), env={"FAKE_TOKEN": "env-secret-456"}, registry=REGISTRY
    )
    cw = settings.connections["cw"]
    assert cw.schedule.seconds == 300
    assert cw.settings.token.get_secret_value() == "env-secret-456"
    assert cw.settings.page_size == 50
    nightly = settings.connections["nightly"]
    assert nightly.schedule.cron == "0 2 * * *"
    assert nightly.settings.token.get_secret_value() == "file-secret-123"
    assert nightly.receives_payments
    assert nightly.deposit_account == "Undeposited Funds"
    assert {"env-secret-456", "file-secret-123"} <= settings.secrets
    assert settings.logging.level == "debug"


def test_defaults_when_sections_are_absent(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""), env={}, registry=REGISTRY)
    assert settings.store.url == "sqlite:///./syncd.db"
    assert settings.connections == {}


def test_malformed_toml_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[store\nurl = 1\n")
    [message] = problems(path)
    assert message.startswith(f"{path}: not valid TOML")
    assert "line 1" in message


def test_bad_schedule_message_matches_the_documented_form(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('schedule = "5m"', 'schedule = "5 minutes"'))
    found = problems(path, {"FAKE_TOKEN": "x" * 8})
    (tmp_path / "token.txt").write_text("t" * 8)
    assert any(
        p.startswith(f"{path}: connections.cw.schedule: '5 minutes' is not a duration or cron")
        for p in found
    )


def test_unknown_connector_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, '[connections.x]\nconnector = "conectwise"\ntoken = "abcd"\n')
    [message] = problems(path)
    assert "connections.x.connector: unknown connector 'conectwise'" in message
    assert "known: broken, fake" in message


def test_broken_plugin_is_reported_not_raised(tmp_path: Path) -> None:
    path = write(tmp_path, '[connections.x]\nconnector = "broken"\n')
    [message] = problems(path)
    assert "connections.x.connector: connector 'broken'" in message
    assert "failed to import: ModuleNotFoundError" in message


def test_missing_required_key_and_unknown_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[connections.x]\nconnector = "fake"\ntokn = "abcd"\n')
    found = problems(path)
    assert f"{path}: connections.x.token: missing (required)" in found
    assert any("connections.x.tokn: unknown key" in p for p in found)


def test_missing_connector_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[connections.x]\ntoken = "abcd"\n')
    assert f"{path}: connections.x.connector: missing (required)" in problems(path)


def test_unset_environment_variable(tmp_path: Path) -> None:
    (tmp_path / "token.txt").write_text("t" * 8)
    path = write(tmp_path, GOOD)
    found = problems(path, {})
    assert f"{path}: connections.cw.token: environment variable ${{FAKE_TOKEN}} is not set" in found


def test_dollar_dollar_is_a_literal_dollar(tmp_path: Path) -> None:
    path = write(tmp_path, '[connections.x]\nconnector = "fake"\ntoken = "pa$${SS}word"\n')
    settings = load_settings(path, env={}, registry=REGISTRY)
    assert settings.connections["x"].settings.token.get_secret_value() == "pa${SS}word"


def test_missing_secret_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[connections.x]\nconnector = "fake"\ntoken_file = "nope.txt"\n')
    [message] = problems(path)
    assert message == (
        f"{path}: connections.x.token_file: file {str(tmp_path / 'nope.txt')!r} does not exist"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file regardless of its mode")
def test_unreadable_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("abcdefgh")
    secret.chmod(0o000)
    path = write(tmp_path, '[connections.x]\nconnector = "fake"\ntoken_file = "secret.txt"\n')
    assert "not readable" in problems(path)[0]


def test_secret_file_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    path = write(tmp_path, '[connections.x]\nconnector = "fake"\ntoken_file = "dir"\n')
    assert "is a directory" in problems(path)[0]


def test_both_value_and_file(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("abcdefgh")
    path = write(
        tmp_path, '[connections.x]\nconnector = "fake"\ntoken = "a"\ntoken_file = "t.txt"\n'
    )
    assert "both 'token' and 'token_file' are set" in problems(path)[0]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[stor]
url = "x"
[logging]
level = "loud"
[connections.a]
connector = "fake"
schedule = "soon"
[connections.b]
connector = "nope"
""",
    )
    found = problems(path)
    assert len(found) >= 5
    assert all(p.startswith(f"{path}: ") for p in found)
    joined = "\n".join(found)
    for fragment in (
        "stor: unknown top-level key",
        "logging.level",
        "connections.a.schedule",
        "connections.a.token: missing",
        "connections.b.connector: unknown",
    ):
        assert fragment in joined


def test_secret_values_never_appear_in_messages(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[connections.x]\nconnector = "fake"\ntoken = "hunter2-secret"\npage_size = "many"\n',
    )
    found = problems(path)
    assert any("connections.x.page_size" in p for p in found)
    assert not any("hunter2-secret" in p for p in found)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "absent.toml", env={}, registry=REGISTRY)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"\xff\xfe[store]")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(path, env={}, registry=REGISTRY)


def test_secret_file_that_is_not_text(tmp_path: Path) -> None:
    (tmp_path / "token.bin").write_bytes(b"\xff\xfe\x00binary")
    path = write(tmp_path, '[connections.x]\nconnector = "fake"\ntoken_file = "token.bin"\n')
    [message] = problems(path)
    assert message.endswith("is not UTF-8 text")
