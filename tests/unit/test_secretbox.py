"""SecretBox: the key's sources, the key file's creation and permissions, and a wrong key."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from syncd.errors import ConfigError
from syncd.secretbox import (
    KEY_ENV,
    SecretBox,
    WrongKeyError,
    default_key_file,
    load_secret_box,
)


def test_key_file_is_created_0600_and_reused(tmp_path: Path) -> None:
    key_file = tmp_path / "syncd.key"
    box = load_secret_box(key_file=key_file, environ={})
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    sealed = box.encrypt("refresh-token-value")
    again = load_secret_box(key_file=key_file, environ={})
    assert again.decrypt(sealed, what="a token") == "refresh-token-value"
    assert [p.name for p in tmp_path.iterdir()] == ["syncd.key"]  # no temp file left behind


def test_concurrent_first_runs_agree_on_one_key(tmp_path: Path) -> None:
    key_file = tmp_path / "syncd.key"
    boxes: list[SecretBox] = []
    start = threading.Barrier(6)

    def first_run() -> None:
        start.wait()
        boxes.append(load_secret_box(key_file=key_file, environ={}))

    threads = [threading.Thread(target=first_run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sealed = boxes[0].encrypt("x-token")
    assert {box.decrypt(sealed, what="a token") for box in boxes} == {"x-token"}


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "syncd.key"
    key_file.write_bytes(Fernet.generate_key())
    os.chmod(key_file, 0o644)
    with pytest.raises(ConfigError, match=r"readable by group or others \(mode 0644\).*chmod 600"):
        load_secret_box(key_file=key_file, environ={})


def test_env_key_wins_over_the_file(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    box = load_secret_box(key_file=tmp_path / "syncd.key", environ={KEY_ENV: key})
    assert not (tmp_path / "syncd.key").exists()
    assert Fernet(key).decrypt(box.encrypt("abc-token").encode()) == b"abc-token"


def test_bad_env_key_is_a_config_error_without_the_value() -> None:
    with pytest.raises(ConfigError) as info:
        load_secret_box(environ={KEY_ENV: "not-a-key-but-secret"})
    assert "SYNCD_SECRET_KEY" in str(info.value)
    assert "not-a-key-but-secret" not in str(info.value)


def test_wrong_key_is_one_clear_line() -> None:
    sealed = SecretBox(Fernet.generate_key(), source="key A").encrypt("tok-0123456789")
    other = SecretBox(Fernet.generate_key(), source="key file '/srv/syncd.key'")
    with pytest.raises(WrongKeyError) as info:
        other.decrypt(sealed, what="the tokens of connection 'qbo'")
    message = str(info.value)
    assert message.startswith("tokens in the store were encrypted with another key: ")
    assert "'/srv/syncd.key'" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_missing_key_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_secret_box(key_file=tmp_path / "nowhere" / "syncd.key", environ={})


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////var/lib/syncd/syncd.db", Path("/var/lib/syncd/syncd.key")),
        ("sqlite:///./syncd.db", Path("./syncd.key")),
        ("postgresql://syncd@db/syncd", Path("syncd.key")),
        (None, Path("syncd.key")),
    ],
)
def test_default_key_file_sits_next_to_the_sqlite_database(url: str | None, expected: Path) -> None:
    assert default_key_file(url) == expected
