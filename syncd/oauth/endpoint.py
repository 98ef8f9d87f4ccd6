"""The OAuth2 token endpoint: one POST, its answer parsed into a ``TokenSet`` or a typed error.

QuickBooks Online and Xero both take ``application/x-www-form-urlencoded`` bodies with the client
credentials in an HTTP Basic header (``credentials_in="basic"``); ``"body"`` sends them as
``client_id`` / ``client_secret`` form fields for vendors that want that. Every token value seen is
registered with the redactor before anything else happens to it, and no message built here carries
a response body: a vendor that echoes a token back cannot leak it through us.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
from requests.auth import HTTPBasicAuth

from syncd.clock import Clock
from syncd.errors import AuthError, FatalError, RateLimited, RetriableError
from syncd.redact import REDACTOR

# (connect, read) seconds. Kept well under SQLite's 30 s busy timeout: a refresh holds the store's
# write lock while it waits for this answer (see ``syncd.oauth.vault``).
DEFAULT_TIMEOUT = (5.0, 15.0)
_MAX_DESCRIPTION = 200


class InvalidGrant(AuthError):
    """The token endpoint refused the grant: refresh token rotated away, expired or revoked."""


@dataclass(frozen=True)
class TokenSet:
    """Tokens as the vault keeps them; times are absolute UTC, computed from the ``*_in`` fields."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: dt.datetime
    refresh_expires_at: dt.datetime | None = None


@dataclass(frozen=True)
class TokenEndpoint:
    """Where and how to ask for tokens. ``timeout`` is always applied; there is no None."""

    url: str
    client_id: str
    client_secret: str = field(repr=False)
    credentials_in: Literal["basic", "body"] = "basic"
    timeout: tuple[float, float] = DEFAULT_TIMEOUT

    def refresh(self, refresh_token: str, *, clock: Clock) -> TokenSet:
        """Trade a refresh token for new tokens. A response without one keeps the old one."""
        REDACTOR.add(refresh_token)
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return self._post(form, clock, previous_refresh_token=refresh_token)

    def exchange_code(self, code: str, redirect_uri: str, *, clock: Clock) -> TokenSet:
        """Trade an authorization code (from the consent redirect) for the first tokens."""
        REDACTOR.add(code)
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        return self._post(form, clock, previous_refresh_token=None)

    def _post(
        self, form: dict[str, str], clock: Clock, *, previous_refresh_token: str | None
    ) -> TokenSet:
        REDACTOR.add(self.client_secret)
        auth = None
        if self.credentials_in == "basic":
            auth = HTTPBasicAuth(self.client_id, self.client_secret)
        else:
            form = form | {"client_id": self.client_id, "client_secret": self.client_secret}
        where = f"token endpoint {urlsplit(self.url).netloc}"
        # Lifetimes count from when we asked, not from when the answer arrived: errs early.
        sent_at = clock.now()
        try:
            response = requests.post(
                self.url,
                data=form,
                auth=auth,
                headers={"Accept": "application/json"},
                timeout=self.timeout,
                allow_redirects=False,  # never re-send credentials to another URL
            )
        except requests.RequestException as exc:
            raise RetriableError(f"{where}: no answer ({type(exc).__name__})") from None
        with response:
            return parse_token_response(
                response.status_code,
                response.content,
                response.headers.get("Retry-After"),
                sent_at=sent_at,
                previous_refresh_token=previous_refresh_token,
                where=where,
            )


def parse_token_response(
    status: int,
    body: bytes,
    retry_after: str | None,
    *,
    sent_at: dt.datetime,
    previous_refresh_token: str | None,
    where: str = "token endpoint",
) -> TokenSet:
    """A ``TokenSet`` from a 2xx answer, else the ``syncd.errors`` class that says what to do."""
    payload = _json(body)
    if isinstance(payload, dict):
        REDACTOR.add(*(v for k, v in payload.items() if "token" in k and isinstance(v, str)))
    if 200 <= status < 300:
        return _token_set(payload, sent_at, previous_refresh_token, where, status)
    error = payload.get("error") if isinstance(payload, dict) else None
    code = error if isinstance(error, str) else None
    detail = _describe(payload, status)
    if status == 429:
        raise RateLimited(f"{where}: {detail}", retry_after=_seconds(retry_after), code=code)
    if status >= 500:
        raise RetriableError(f"{where}: {detail}", status=status, code=code)
    if code == "invalid_grant":
        raise InvalidGrant(f"{where}: {detail}", status=status, code=code)
    if code in ("invalid_client", "unauthorized_client") or status in (401, 403):
        raise AuthError(
            f"{where}: the client id or secret was refused ({detail}); check client_id and "
            "client_secret in the connection's settings",
            status=status,
            code=code,
        )
    if 300 <= status < 400:
        raise FatalError(f"{where}: answered with a redirect ({status}); set the final token_url")
    raise FatalError(f"{where}: refused the request ({detail})", status=status, code=code)


def _token_set(
    payload: Any, sent_at: dt.datetime, previous: str | None, where: str, status: int
) -> TokenSet:
    if not isinstance(payload, dict):
        raise RetriableError(f"{where}: answered {status} without a JSON object", status=status)
    access = payload.get("access_token")
    refresh = payload.get("refresh_token") or previous
    expires_in = _positive(payload.get("expires_in"))
    if not isinstance(access, str) or not access or expires_in is None:
        raise RetriableError(
            f"{where}: answered {status} without a usable access_token and expires_in "
            f"(keys: {', '.join(sorted(map(str, payload)))})",
            status=status,
        )
    if not isinstance(refresh, str) or not refresh:
        raise AuthError(
            f"{where}: answered without a refresh token, so the connection could not stay "
            "connected; check the scopes (Xero needs offline_access)"
        )
    refresh_in = _positive(
        payload.get("x_refresh_token_expires_in", payload.get("refresh_token_expires_in"))
    )
    refresh_expires_at = None if refresh_in is None else sent_at + dt.timedelta(seconds=refresh_in)
    return TokenSet(
        access_token=access,
        refresh_token=refresh,
        expires_at=sent_at + dt.timedelta(seconds=expires_in),
        refresh_expires_at=refresh_expires_at,
    )


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _positive(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int | float) and value > 0:
        return float(value)
    return None


def _describe(payload: Any, status: int) -> str:
    """``HTTP 400 invalid_grant: <redacted, shortened description>``; never the raw body."""
    text = f"HTTP {status}"
    if not isinstance(payload, dict):
        return text
    error, description = payload.get("error"), payload.get("error_description")
    if isinstance(error, str):
        text += f" {REDACTOR.redact(error)[:_MAX_DESCRIPTION]}"
    if isinstance(description, str) and description:
        text += f": {REDACTOR.redact(description)[:_MAX_DESCRIPTION]}"
    return text


def _seconds(retry_after: str | None) -> float | None:
    # Token endpoints send delta-seconds if anything; an HTTP-date is left to the caller's backoff.
    if retry_after and retry_after.strip().isdigit():
        return float(retry_after.strip())
    return None
