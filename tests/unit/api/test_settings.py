"""The [daemon] keys of the HTTP app: loopback by default, a token before anything wider."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from syncd.config import settings_from_tree
from syncd.errors import ConfigError
from syncd.registry import Registry

TOKEN = "api-token-0123456789abcdef"


def load(daemon: dict[str, Any], tmp_path: Path, env: dict[str, str] | None = None) -> Any:
    return settings_from_tree(
        {"daemon": daemon},
        label="config.toml",
        base_dir=tmp_path,
        env=env or {},
        registry=Registry(eps=[]),
    )


def problems(daemon: dict[str, Any], tmp_path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load(daemon, tmp_path)
    return str(caught.value)


def test_defaults(tmp_path: Path) -> None:
    daemon = load({}, tmp_path).daemon
    assert (daemon.http, daemon.listen, daemon.api_token, daemon.stuck_after) == (
        True,
        "127.0.0.1:8086",
        None,
        3 * 3600,
    )
    assert daemon.listen_address == ("127.0.0.1", 8086)
    assert load({"listen": "[::1]:9000", "stuck_after": "90m"}, tmp_path).daemon.listen_address == (
        "::1",
        9000,
    )


@pytest.mark.parametrize("listen", ["0.0.0.0:8086", "[::]:8086", "syncd.example.com:8086"])
def test_beyond_loopback_needs_a_token(tmp_path: Path, listen: str) -> None:
    message = problems({"listen": listen}, tmp_path)
    assert f"config.toml: daemon: listen = '{listen}' accepts connections from other machines" in (
        message
    )
    assert "set api_token (or api_token_file)" in message
    assert load({"listen": listen, "api_token": TOKEN}, tmp_path).daemon.listen == listen
    assert load({"listen": listen, "http": False}, tmp_path).daemon.http is False


@pytest.mark.parametrize(
    ("daemon", "expected"),
    [
        ({"listen": "8086"}, "daemon.listen: '8086' is not an address to listen on"),
        ({"listen": "localhost:http"}, "is not an address to listen on"),
        ({"listen": "::1:8086"}, "write an IPv6 address in brackets"),
        ({"listen": "127.0.0.1:70000"}, "is not an address to listen on"),
        ({"api_token": "tiny-tok"}, "daemon.api_token: use at least 16 characters"),
        ({"stuck_after": "0s"}, "daemon.stuck_after: must be a positive duration"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, daemon: dict[str, Any], expected: str) -> None:
    message = problems(daemon, tmp_path)
    assert expected in message
    assert "tiny-tok" not in message  # a secret is never echoed, even a bad one


def test_the_token_from_a_file_or_literal_is_a_secret(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n")
    from_file = load({"api_token_file": "token"}, tmp_path)
    assert from_file.daemon.api_token is not None
    assert from_file.daemon.api_token.get_secret_value() == TOKEN
    assert TOKEN in from_file.secrets
    literal = load({"api_token": TOKEN + "x"}, tmp_path)
    assert TOKEN + "x" in literal.secrets
    assert TOKEN not in repr(literal.daemon)
