"""The token vault: live OAuth2 tokens in the store, encrypted, refreshed once however many ask.

Vendors rotate refresh tokens: each refresh answers with a new one and retires the old. Two workers
refreshing with the same token, or a new token lost before it was saved, leave a connection that
only a person can repair (QuickBooks: "lost rotated token => re-run the consent flow"). Hence:

- **Single flight.** In a process, a lock per (store, connection) (``RefreshLocks``) lets one thread
  refresh while the others wait and then read its result. Across processes the refresh runs in a
  transaction holding the token row: ``SELECT ... FOR UPDATE`` on PostgreSQL; ``BEGIN IMMEDIATE``
  on SQLite, which takes the database's single write lock (SQLite serialises writers; readers go on
  in WAL mode). After taking the lock the row is read again, and a token another worker just
  stored is used as is. The lock is held across the call to the token endpoint, whose timeout is
  kept below SQLite's 30 s busy timeout.
- **Commit before use.** The answer is encrypted, written and committed before the access token
  is returned. If the process dies between the vendor's answer and the commit, the store still
  holds the previous refresh token and the next start refreshes with it. That is the right
  recovery: Xero accepts the previous refresh token for a 30-minute grace period, and QuickBooks
  changes the value only every 24-26 hours, so most of its answers repeat the refresh token we
  sent. Should the vendor refuse the old token anyway, the result is invalid_grant (below), never
  a guess.
- **invalid_grant is checked twice.** The lock is released, the vault pauses (``retry_pause``) so
  a writer queued behind it (another worker, ``syncd auth``) can commit, reads the row again, and
  retries once if it now holds a different refresh token. Only then is the connection declared
  disconnected (``AuthError`` asking for ``syncd auth NAME``).
- **Transient failures change nothing.** A network error, 5xx or unreadable answer raises
  ``RetriableError``; the transaction rolls back and the stored tokens stay as they were.

The seed refresh token from the config is used only while the store has no tokens for the
connection; afterwards it is ignored (and, if it differs, a log line says so, without the value).
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import Row, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from syncd.clock import Clock
from syncd.errors import AuthError, ConnectorError, RateLimited
from syncd.oauth.endpoint import InvalidGrant, TokenEndpoint, TokenSet
from syncd.redact import REDACTOR
from syncd.secretbox import SecretBox
from syncd.store.tables import oauth_tokens

_T = oauth_tokens.c
# Unbound and module-level: a logger bound at construction would keep the processors (redaction
# included) of whatever configuration was current then.
_log = structlog.get_logger("syncd.oauth")


class RefreshLocks:
    """One ``threading.Lock`` per (store URL, connection), shared by every vault of a process."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], threading.Lock] = {}

    def lock_for(self, engine: Engine, connection: str) -> threading.Lock:
        key = (engine.url.render_as_string(hide_password=True), connection)
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


REFRESH_LOCKS = RefreshLocks()


@dataclass(frozen=True)
class _Stored:
    access_token: str | None
    refresh_token: str | None
    expires_at: dt.datetime | None
    version: int


class _Rejected(Exception):
    """Internal: invalid_grant for ``refresh_token``; look at the store again before giving up."""

    def __init__(self, refresh_token: str) -> None:
        super().__init__("refresh token rejected")
        self.refresh_token = refresh_token


class TokenVault:
    """A connection's OAuth2 tokens: ``access_token()`` always answers with one that is valid.

    ``locks`` is the process-wide registry unless a test passes its own (a stand-in for another
    process). ``retry_pause`` is the wait, in seconds, before the second look after invalid_grant.
    """

    def __init__(
        self,
        engine: Engine,
        connection: str,
        token_endpoint: TokenEndpoint,
        box: SecretBox,
        clock: Clock,
        seed_refresh_token: str | None = None,
        refresh_margin: float = 300.0,
        *,
        locks: RefreshLocks = REFRESH_LOCKS,
        retry_pause: float = 1.0,
    ) -> None:
        REDACTOR.add(seed_refresh_token)
        self.connection = connection
        self._engine = engine
        self._endpoint = token_endpoint
        self._box = box
        self._clock = clock
        self._seed = seed_refresh_token or None
        self._margin = dt.timedelta(seconds=refresh_margin)
        self._lock = locks.lock_for(engine, connection)
        self._retry_pause = retry_pause
        self._cached: _Stored | None = None
        self._seed_noted = False

    def access_token(self, *, rejected: str | None = None) -> str:
        """A valid access token, refreshed first if it expires within the margin.

        Pass ``rejected`` (the token an API just answered 401 to) to force a refresh, unless
        another worker has already replaced that token.
        """
        token = self._fresh(self._cached, rejected)
        if token is None:
            stored = self._read()
            token = self._fresh(stored, rejected)
            if token is not None:
                self._cached = stored
        if token is not None:
            return token
        with self._lock:
            try:
                return self._refresh(rejected, failed=None)
            except _Rejected as exc:
                failed = exc.refresh_token
        self._clock.sleep(self._retry_pause)
        with self._lock:
            return self._refresh(rejected, failed=failed)

    def store(self, tokens: TokenSet) -> None:
        """Replace the stored tokens with those of a new consent (``syncd auth``)."""
        REDACTOR.add(tokens.access_token, tokens.refresh_token)
        with self._lock, self._engine.connect() as conn:
            row = self._lock_row(conn)
            written = self._write(conn, tokens, row.version)
            conn.commit()
        self._cached = written
        _log.info("oauth_tokens_stored", connection=self.connection, version=row.version + 1)

    # -- the locked refresh ----------------------------------------------------------------------

    def _refresh(self, rejected: str | None, *, failed: str | None) -> str:
        with self._engine.connect() as conn:
            stored = self._decode(self._lock_row(conn))
            token = self._fresh(stored, rejected)
            if token is not None:  # another worker refreshed while we waited for the lock
                conn.commit()
                self._cached = stored
                return token
            refresh_token = stored.refresh_token or self._seed
            if refresh_token is None:
                raise AuthError(
                    f"connection {self.connection}: no OAuth tokens stored and no seed refresh "
                    f"token configured; run `syncd auth {self.connection}` to connect"
                )
            if failed is not None and refresh_token == failed:
                raise self._disconnected()
            try:
                tokens = self._endpoint.refresh(refresh_token, clock=self._clock)
            except InvalidGrant:
                if failed is None:
                    raise _Rejected(refresh_token) from None
                raise self._disconnected() from None
            except ConnectorError as exc:
                raise _in_context(exc, self.connection) from None
            # Commit before use: the rotated refresh token is durable before anyone sees the
            # access token. A crash before this line leaves the previous token, which still works.
            written = self._write(conn, tokens, stored.version)
            conn.commit()
        self._cached = written
        _log.info(
            "oauth_token_refreshed",
            connection=self.connection,
            version=stored.version + 1,
            expires_at=tokens.expires_at.isoformat(),
            from_seed=stored.refresh_token is None,
        )
        return tokens.access_token

    def _lock_row(self, conn: Connection) -> Row[Any]:
        """Begin the refresh transaction and lock this connection's row, creating it if absent.

        The placeholder row (no tokens) gives PostgreSQL something to lock on a first refresh;
        it is rolled back with the transaction if the refresh fails.
        """
        dialect = self._engine.dialect.name
        if dialect == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        conn.execute(
            insert(oauth_tokens)
            .values(connection=self.connection, version=0, updated_at=self._clock.now())
            .on_conflict_do_nothing(index_elements=[_T.connection])
        )
        query = select(oauth_tokens).where(_T.connection == self.connection).with_for_update()
        return conn.execute(query).one()

    def _write(self, conn: Connection, tokens: TokenSet, version: int) -> _Stored:
        REDACTOR.add(tokens.access_token, tokens.refresh_token)
        conn.execute(
            update(oauth_tokens)
            .where(_T.connection == self.connection)
            .values(
                access_token=self._box.encrypt(tokens.access_token),
                refresh_token=self._box.encrypt(tokens.refresh_token),
                expires_at=tokens.expires_at,
                refresh_expires_at=tokens.refresh_expires_at,
                version=version + 1,
                updated_at=self._clock.now(),
            )
        )
        return _Stored(tokens.access_token, tokens.refresh_token, tokens.expires_at, version + 1)

    # -- reading ---------------------------------------------------------------------------------

    def _read(self) -> _Stored | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(oauth_tokens).where(_T.connection == self.connection)).first()
        return None if row is None else self._decode(row)

    def _decode(self, row: Row[Any]) -> _Stored:
        fix = f"restore the key used before, or run `syncd auth {self.connection}` to reconnect"
        what = f"the tokens of connection {self.connection!r}"
        access, refresh = (
            self._box.decrypt(value, what=what, fix=fix) if value else None
            for value in (row.access_token, row.refresh_token)
        )
        REDACTOR.add(access, refresh)
        if refresh is not None and self._seed is not None and not self._seed_noted:
            self._seed_noted = True
            if refresh != self._seed:
                _log.info(
                    "oauth_seed_ignored",
                    connection=self.connection,
                    reason="the store holds live tokens; the config's refresh token is only a seed",
                )
        return _Stored(access, refresh, row.expires_at, row.version)

    def _fresh(self, stored: _Stored | None, rejected: str | None) -> str | None:
        if stored is None or stored.access_token is None or stored.expires_at is None:
            return None
        if stored.access_token == rejected:
            return None
        if stored.expires_at - self._clock.now() <= self._margin:
            return None
        return stored.access_token

    def _disconnected(self) -> AuthError:
        _log.warning("oauth_disconnected", connection=self.connection, reason="invalid_grant")
        return AuthError(
            f"connection {self.connection}: the refresh token was rejected (invalid_grant); "
            f"run `syncd auth {self.connection}` to reconnect",
            code="invalid_grant",
        )


def _in_context(exc: ConnectorError, connection: str) -> ConnectorError:
    """The same error class, its message prefixed with the connection's name."""
    message = f"connection {connection}: {exc}"
    if isinstance(exc, RateLimited):
        return RateLimited(message, retry_after=exc.retry_after, status=exc.status, code=exc.code)
    return type(exc)(message, status=exc.status, code=exc.code)
