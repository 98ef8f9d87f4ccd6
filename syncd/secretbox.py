"""Encryption at rest for OAuth tokens: Fernet (AES-128-CBC + HMAC-SHA256) with one key per store.

The key comes from ``SYNCD_SECRET_KEY`` (a Fernet key; set it when several machines share one
PostgreSQL store) or from a key file. The default key file sits next to the SQLite database
(``./syncd.db`` -> ``./syncd.key``), or is ``./syncd.key`` for a server database. It is created on
first use with mode 0600, and a key file that group or others can read is refused: whoever reads
the key reads every token. Losing the key costs one ``syncd auth NAME`` per connection.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from syncd.errors import ConfigError

KEY_ENV = "SYNCD_SECRET_KEY"
DEFAULT_KEY_FILE = Path("syncd.key")
_GENERATE_HINT = (
    'generate one with: python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"'
)


class WrongKeyError(ConfigError):
    """Stored ciphertext does not open with this key: another key encrypted it."""


class SecretBox:
    """Encrypts and decrypts short secrets (tokens) with one Fernet key.

    ``source`` says where the key came from, so a wrong-key error can name it without showing it.
    """

    def __init__(self, key: bytes | str, *, source: str) -> None:
        self.source = source
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            raise ConfigError(
                f"{source}: not a Fernet key (32 url-safe base64-encoded bytes); {_GENERATE_HINT}"
            ) from None

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(
        self, ciphertext: str, *, what: str, fix: str = "restore the key used before"
    ) -> str:
        """Plain text of ``ciphertext``; ``what`` names the secret in errors, never its value."""
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode()
        except (InvalidToken, UnicodeError):
            raise WrongKeyError(
                f"tokens in the store were encrypted with another key: cannot decrypt {what} "
                f"with the key from {self.source}; {fix}"
            ) from None


def default_key_file(store_url: str | None) -> Path:
    """``<db folder>/<db name>.key`` for a SQLite store, else ``./syncd.key``."""
    if store_url:
        try:
            url = make_url(store_url)
        except ArgumentError:
            return DEFAULT_KEY_FILE
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            return Path(str(url.database)).expanduser().with_suffix(".key")
    return DEFAULT_KEY_FILE


def load_secret_box(
    *,
    key_file: Path | None = None,
    store_url: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> SecretBox:
    """The store's box: ``$SYNCD_SECRET_KEY`` if set, else the key file (created on first run)."""
    env = os.environ if environ is None else environ
    from_env = env.get(KEY_ENV, "").strip()
    if from_env:
        return SecretBox(from_env, source=f"${KEY_ENV}")
    path = key_file if key_file is not None else default_key_file(store_url)
    return SecretBox(_read_or_create_key(path), source=f"key file {str(path)!r}")


def _read_or_create_key(path: Path) -> bytes:
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    with contextlib.suppress(FileExistsError):  # another process created it first: use theirs
        _create_key(path)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077:
            raise ConfigError(
                f"key file {str(path)!r} is readable by group or others (mode {mode:04o}); "
                f"it unlocks every stored token: run `chmod 600 {path}`"
            )
        data = b""
        while chunk := os.read(fd, 4096):
            data += chunk
    finally:
        os.close(fd)
    key = data.strip()
    if not key:
        raise ConfigError(f"key file {str(path)!r} is empty; delete it to have a new key made")
    return key


def _create_key(path: Path) -> None:
    """Publish a new key atomically: write a private temp file, then hard-link it into place.

    ``O_CREAT | O_EXCL`` with mode 0600 means the key is never readable by others, not even for
    a moment; ``link`` fails if the name exists, so two first runs cannot end with two keys, and
    a reader never sees a half-written file.
    """
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError(f"key file {str(path)!r}: folder {str(folder)!r} does not exist")
    temp = folder / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.write(fd, Fernet.generate_key() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the new name survives a power cut, or the tokens would be lost with it
    finally:
        os.close(dir_fd)


__all__ = [
    "DEFAULT_KEY_FILE",
    "KEY_ENV",
    "SecretBox",
    "WrongKeyError",
    "default_key_file",
    "load_secret_box",
]
