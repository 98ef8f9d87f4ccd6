"""Bearer-token checks for the endpoints that read or write business data.

The token is ``daemon.api_token`` (``api_token_file`` or ``${ENV}`` keep it out of the config
file). It is compared in constant time, on SHA-256 digests so that even its length does not leak.
A refusal is a 401 with ``WWW-Authenticate: Bearer`` (RFC 6750) and one ``api_auth_refused`` log
line naming method, path, client and the reason, never the credential that was presented.

Two strengths:

* ``require_token``: always needs the token; with none configured the endpoint answers 403
  (the payments API must never be open, not even on loopback).
* ``token_if_configured``: open when no token is configured (the config then only allows a
  loopback address), checked when one is (``/status``).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

import structlog
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from syncd.api.context import Context

_log = structlog.get_logger("syncd.api")
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="apiToken",
    description="daemon.api_token from the syncd configuration.",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def require_token(request: Request, context: Context, credentials: Credentials) -> None:
    """The endpoint needs the bearer token; with no token configured nobody may use it."""
    if context.settings.daemon.api_token is None:
        _refused(request, "no api_token configured")
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "this endpoint is disabled until daemon.api_token is set in the configuration",
        )
    _check(request, context, credentials)


def token_if_configured(request: Request, context: Context, credentials: Credentials) -> None:
    """The endpoint needs the bearer token when one is configured, and is open otherwise."""
    if context.settings.daemon.api_token is not None:
        _check(request, context, credentials)


def _check(
    request: Request, context: Context, credentials: HTTPAuthorizationCredentials | None
) -> None:
    token = context.settings.daemon.api_token
    assert token is not None
    if credentials is None:
        present = "authorization" in request.headers
        _refused(request, "not a Bearer credential" if present else "no Authorization header")
        raise _unauthorized("a bearer token is required", error=None)
    if not _same(credentials.credentials, token.get_secret_value()):
        _refused(request, "wrong token")
        raise _unauthorized("the bearer token is not valid", error="invalid_token")


def _same(presented: str, expected: str) -> bool:
    digest = hashlib.sha256
    return hmac.compare_digest(
        digest(presented.encode()).digest(), digest(expected.encode()).digest()
    )


def _unauthorized(detail: str, error: str | None) -> HTTPException:
    challenge = 'Bearer realm="syncd"' + (f', error="{error}"' if error else "")
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": challenge}
    )


def _refused(request: Request, reason: str) -> None:
    _log.warning(
        "api_auth_refused",
        method=request.method,
        path=request.url.path,
        client=request.client.host if request.client else None,
        reason=reason,
    )
