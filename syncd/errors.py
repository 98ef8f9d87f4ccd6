"""Every error syncd raises, organised by what the caller must do.

::

    SyncdError
    ├── ConfigError ............ tell the user what to fix, stop
    ├── StoreError ............. the store cannot be opened or is held by another process; stop
    └── ConnectorError
        ├── AuthError .......... credentials rejected or revoked: reconnect, stop this connection
        ├── RetriableError ..... transient (5xx, timeout, dropped connection): back off, retry
        │   └── RateLimited .... the vendor said slow down; wait ``retry_after`` seconds
        ├── FatalError ......... this run cannot go on (404 on a base URL, 400 on our own query)
        ├── SkippableError ..... one bad record: quarantine it with its payload, go on
        └── UncertainWrite ..... a write was sent but its outcome is unknown: settle by read-back
                                 (search for our marker) before anything is re-sent

Retry predicates use ``isinstance``, never ``type(e) is``. Connectors raise these classes, never
``requests`` exceptions. Messages never carry secret values: the HTTP layer redacts them before an
error is built.
"""

from __future__ import annotations


class SyncdError(Exception):
    """Root of every error syncd raises on purpose."""


class ConfigError(SyncdError):
    """Configuration is wrong. ``problems`` lists every finding, each naming file, key and fix."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class StoreError(SyncdError):
    """The store cannot be used: bad URL, unreachable server, or locked by another daemon."""


class ConnectorError(SyncdError):
    """A connector could not do what was asked. ``status`` and ``code`` say what the vendor said."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        self.status = status
        self.code = code
        super().__init__(message)


class AuthError(ConnectorError):
    """Credentials were rejected or a refresh token revoked: a person must reconnect."""


class RetriableError(ConnectorError):
    """A transient failure: the same request may succeed later."""


class RateLimited(RetriableError):
    """The vendor asked us to wait. ``retry_after`` is in seconds, None when it gave no hint."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = 429,
        code: str | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, status=status, code=code)


class FatalError(ConnectorError):
    """This run cannot go on; retrying the same request will not help."""


class SkippableError(ConnectorError):
    """One record is bad. The caller quarantines it and carries on with the rest."""


class UncertainWrite(ConnectorError):
    """A write may or may not have reached the vendor. Never re-send before a read-back."""


__all__ = [
    "AuthError",
    "ConfigError",
    "ConnectorError",
    "FatalError",
    "RateLimited",
    "RetriableError",
    "SkippableError",
    "StoreError",
    "SyncdError",
    "UncertainWrite",
]
