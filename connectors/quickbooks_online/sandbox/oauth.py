"""Intuit's OAuth 2.0 server, emulated: discovery document, authorize, token, revoke, bearer check.

Facts (research §1.1, tags as there):

- discovery keys ``authorization_endpoint, token_endpoint, revocation_endpoint, issuer, jwks_uri,
  userinfo_endpoint``; ``intuitlib.AuthClient`` GETs it in its constructor and uses a
  non-prod/sandbox ``environment`` *as the discovery URL* [IOA ``utils.py get_discovery_doc``];
- token endpoint: form-encoded POST with ``Authorization: Basic base64(id:secret)``, grants
  ``authorization_code`` (``code``, ``redirect_uri``) and ``refresh_token`` [IOA ``client.py``];
  the answer holds ``access_token, refresh_token, expires_in (3600), x_refresh_token_expires_in
  (≈8 726 400), token_type`` [IOA ``utils.py set_attributes``; Intuit OAuth2-Dotnet sample];
- rotation: "if a new Refresh Token is returned, the previous one expires"; an old one answers
  ``400 {"error":"invalid_grant"}`` (help.developer.intuit.com quoted in QuickBooks-V3-PHP-SDK#324;
  oauth-jsclient#77). jsclient docs also say old tokens live 24 h more: ``grace`` models that
  (default 0, the strict reading);
- revoke: POST JSON ``{"token": …}`` with Basic auth [IOA ``client.py revoke``].

Emulator conveniences (not Intuit behaviour): ``GET /connect/oauth2`` consents at once and
redirects to ``redirect_uri`` with ``code``, ``state`` and ``realmId``; ``rotate_after`` says
when a refresh returns a new refresh token (0 = on every refresh, so tests exercise rotation;
Intuit rotates roughly every 24-26 h; None = never).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from syncd.sandbox.routing import Request, Response

ACCESS_TOKEN_TTL = 3600  # expires_in (research §1.1)
REFRESH_TOKEN_TTL = 8_726_400  # x_refresh_token_expires_in (research §1.1)
CODE_TTL = 600  # authorization codes: 10 minutes (emulator choice, UNVERIFIED)
SCOPE_ACCOUNTING = "com.intuit.quickbooks.accounting"  # [IOA enums.py]


@dataclass
class Grant:
    """One consent = one refresh-token chain for one realm."""

    realm_id: str
    refresh_token: str
    refresh_issued: dt.datetime
    superseded: dict[str, dt.datetime] = field(default_factory=dict)  # old RT -> when
    revoked: bool = False
    expired: bool = False  # forced by a test (``expire_refresh_token``)


@dataclass
class AccessToken:
    grant: Grant
    expires: dt.datetime
    revoked: bool = False


def _oauth_error(error: str, status: int = 400, description: str | None = None) -> Response:
    body: dict[str, str] = {"error": error}
    if description:
        body["error_description"] = description
    return Response.json_body(body, status, {"Cache-Control": "no-store"})


class TokenAuthority:
    """Issues and checks tokens for the emulated Intuit app (one client id/secret pair)."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        realm_id: str,
        now: Callable[[], dt.datetime],
        seed: int,
        rotate_after: float | None = 0.0,
        grace: float = 0.0,
        access_token_ttl: int = ACCESS_TOKEN_TTL,
        refresh_token_ttl: int = REFRESH_TOKEN_TTL,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.realm_id = realm_id
        self.now = now
        self.rotate_after = rotate_after
        self.grace = grace
        self.access_token_ttl = access_token_ttl
        self.refresh_token_ttl = refresh_token_ttl
        self._rng = random.Random(seed * 7919 + 17)
        self._lock = threading.RLock()
        self._grants_by_rt: dict[str, Grant] = {}
        self._access: dict[str, AccessToken] = {}
        self._codes: dict[str, tuple[str, str, dt.datetime]] = {}  # code -> realm, redirect, exp
        self.seed_grant = self._new_grant(realm_id)

    # -- token values ----------------------------------------------------------------------------

    def _random(self, length: int) -> str:
        alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        return "".join(self._rng.choice(alphabet) for _ in range(length))

    def _new_refresh_token(self) -> str:
        return "AB11" + self._random(46)  # Intuit refresh tokens look like "AB11…" (50 chars)

    def _new_access_token(self) -> str:
        # Intuit access tokens are JWE strings starting "eyJlbmMiOi…" (python-quickbooks#120).
        return "eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0.." + self._random(64)

    def _new_grant(self, realm_id: str) -> Grant:
        grant = Grant(realm_id, self._new_refresh_token(), self.now())
        self._grants_by_rt[grant.refresh_token] = grant
        return grant

    # -- helpers for tests -----------------------------------------------------------------------

    def issue_access_token(self, grant: Grant | None = None) -> str:
        with self._lock:
            token = self._new_access_token()
            expires = self.now() + dt.timedelta(seconds=self.access_token_ttl)
            self._access[token] = AccessToken(grant or self.seed_grant, expires)
            return token

    def current_refresh_token(self, grant: Grant | None = None) -> str:
        with self._lock:
            return (grant or self.seed_grant).refresh_token

    def expire_access_tokens(self) -> None:
        """Every access token issued so far answers 401 from now on."""
        with self._lock:
            for token in self._access.values():
                token.revoked = True

    def rotate(self, grant: Grant | None = None) -> str:
        """Intuit hands out a new refresh token (e.g. another worker refreshed): the old one is
        superseded. Returns the new value."""
        with self._lock:
            grant = grant or self.seed_grant
            self._rotate(grant)
            return grant.refresh_token

    def expire_refresh_token(self, grant: Grant | None = None) -> None:
        with self._lock:
            (grant or self.seed_grant).expired = True

    def revoke_grant(self, grant: Grant | None = None) -> None:
        with self._lock:
            grant = grant or self.seed_grant
            grant.revoked = True
            for token in self._access.values():
                if token.grant is grant:
                    token.revoked = True

    def _rotate(self, grant: Grant) -> None:
        old = grant.refresh_token
        grant.superseded[old] = self.now()
        grant.refresh_token = self._new_refresh_token()
        grant.refresh_issued = self.now()
        self._grants_by_rt[grant.refresh_token] = grant

    # -- bearer check ----------------------------------------------------------------------------

    def check(self, header: str | None) -> tuple[str | None, str | None]:
        """``(realm_id, None)`` for a valid bearer token, else ``(None, detail)`` for the 401."""
        scheme, _, token = (header or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None, "Bearer token missing"  # detail wording UNVERIFIED
        with self._lock:
            access = self._access.get(token)
            if access is None:
                # python-quickbooks#250: "Malformed bearer token: too short or too long"
                return None, "Malformed bearer token: too short or too long"
            if access.revoked or access.grant.revoked:
                return None, "Token revoked"  # wording UNVERIFIED
            if self.now() >= access.expires:
                return None, "Token expired"  # routablehq/python-quickbooks#207 (ej2 comment)
            return access.grant.realm_id, None

    # -- HTTP handlers ---------------------------------------------------------------------------

    def discovery(self, request: Request) -> Response:
        """The OpenID discovery document, every endpoint on this server (research §1.1)."""
        base = request.base_url
        doc = {
            "issuer": f"{base}/op/v1",
            "authorization_endpoint": f"{base}/connect/oauth2",
            "token_endpoint": f"{base}/oauth2/v1/tokens/bearer",
            "userinfo_endpoint": f"{base}/v1/openid_connect/userinfo",
            "revocation_endpoint": f"{base}/oauth2/v1/tokens/revoke",
            "jwks_uri": f"{base}/op/v1/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile", "address", "phone"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
        }
        return Response.json_body(doc)

    def jwks(self, request: Request) -> Response:
        return Response.json_body({"keys": []})  # no id_token is ever issued

    def userinfo(self, request: Request) -> Response:
        realm, detail = self.check(request.header("authorization"))
        if realm is None:
            return _oauth_error("invalid_token", 401, detail)
        return Response.json_body({"sub": f"sandbox-{realm}", "email": "owner@sandbox.example"})

    def _client_ok(self, request: Request) -> bool:
        scheme, _, blob = (request.header("authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(blob.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        client_id, _, secret = decoded.partition(":")
        return hmac.compare_digest(client_id.encode(), self.client_id.encode()) and (
            hmac.compare_digest(secret.encode(), self.client_secret.encode())
        )

    def authorize(self, request: Request) -> Response:
        """``GET /connect/oauth2?client_id&response_type=code&scope&redirect_uri&state``: an
        instant consent, redirecting with ``code``, ``state`` and ``realmId`` (research §1.1)."""
        q = request.query
        if q.get("client_id") != self.client_id:
            return _oauth_error("invalid_client", 400, "unknown client_id")
        redirect = q.get("redirect_uri", "")
        if not redirect.startswith(("http://", "https://")):
            return _oauth_error("invalid_request", 400, "redirect_uri is required")
        if q.get("response_type") != "code":
            return _oauth_error("unsupported_response_type", 400)
        with self._lock:
            code = "AB11" + self._random(40)
            expires = self.now() + dt.timedelta(seconds=CODE_TTL)
            self._codes[code] = (self.realm_id, redirect, expires)
        params = {"code": code, "realmId": self.realm_id}
        if "state" in q:
            params["state"] = q["state"]
        parts = urlsplit(redirect)
        query = "&".join(p for p in (parts.query, urlencode(params)) if p)
        location = urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
        return Response(302, b"", {"Location": location})

    def token(self, request: Request) -> Response:
        if not self._client_ok(request):
            return _oauth_error("invalid_client", 401)
        ctype = (request.header("content-type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return _oauth_error("invalid_request", 400, "form-encoded body expected")
        form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        grant_type = form.get("grant_type", "")
        with self._lock:
            if grant_type == "refresh_token":
                return self._refresh(form.get("refresh_token", ""))
            if grant_type == "authorization_code":
                return self._exchange(form.get("code", ""), form.get("redirect_uri", ""))
        return _oauth_error("unsupported_grant_type")

    def _exchange(self, code: str, redirect_uri: str) -> Response:
        entry = self._codes.pop(code, None)  # single use
        if entry is None:
            return _oauth_error("invalid_grant")
        realm, redirect, expires = entry
        if redirect != redirect_uri or self.now() >= expires:
            return _oauth_error("invalid_grant")
        grant = self._new_grant(realm)
        return self._answer(grant)

    def _refresh(self, refresh_token: str) -> Response:
        grant = self._grants_by_rt.get(refresh_token)
        if grant is None or grant.revoked or grant.expired:
            return _oauth_error("invalid_grant")  # "Refresh token not found" in Intuit logs
        now = self.now()
        if refresh_token != grant.refresh_token:
            superseded_at = grant.superseded.get(refresh_token, now)
            if (now - superseded_at).total_seconds() >= self.grace:
                return _oauth_error("invalid_grant")
            # Within the grace window an old token still refreshes; the chain does not fork.
            return self._answer(grant)
        if (now - grant.refresh_issued).total_seconds() >= self.refresh_token_ttl:
            return _oauth_error("invalid_grant")
        age = (now - grant.refresh_issued).total_seconds()
        if self.rotate_after is not None and age >= self.rotate_after:
            self._rotate(grant)
        return self._answer(grant)

    def _answer(self, grant: Grant) -> Response:
        access = self._new_access_token()
        now = self.now()
        self._access[access] = AccessToken(grant, now + dt.timedelta(seconds=self.access_token_ttl))
        remaining = self.refresh_token_ttl - int((now - grant.refresh_issued).total_seconds())
        body: dict[str, Any] = {
            "token_type": "bearer",
            "access_token": access,
            "refresh_token": grant.refresh_token,
            "expires_in": self.access_token_ttl,
            "x_refresh_token_expires_in": max(remaining, 0),
        }
        return Response.json_body(body, 200, {"Cache-Control": "no-store"})

    def revoke(self, request: Request) -> Response:
        """Revoking either token ends the whole grant (its refresh chain and access tokens)."""
        if not self._client_ok(request):
            return _oauth_error("invalid_client", 401)
        try:
            payload = json.loads(request.body.decode("utf-8") or "{}")
        except (UnicodeDecodeError, ValueError):
            return _oauth_error("invalid_request")
        token = payload.get("token") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token:
            return _oauth_error("invalid_request", 400, "token is required")
        with self._lock:
            grant = self._grants_by_rt.get(token)
            if grant is None and token in self._access:
                grant = self._access[token].grant
            if grant is not None:
                self.revoke_grant(grant)
        return Response(200, b"", {})  # intuitlib only reads a body when there is one


__all__ = [
    "ACCESS_TOKEN_TTL",
    "REFRESH_TOKEN_TTL",
    "SCOPE_ACCOUNTING",
    "AccessToken",
    "Grant",
    "TokenAuthority",
]
