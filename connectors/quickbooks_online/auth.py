"""Bearer tokens for one QuickBooks Online connection, from the store's token vault.

Intuit rotates refresh tokens and retires the old value (research/accounting-apis.md 1.1: "if a
new Refresh Token is returned, the previous one expires"; a lost one means a new consent), and
parallel refreshes with one token end in ``invalid_grant``. ``syncd.oauth.TokenVault`` handles
exactly that: one refresh per connection across threads and processes, the rotated token
committed (encrypted) before it is used. This module only wires it up:

- the vault needs the store: ``build_connector(..., engine=...)`` puts it in
  ``context.extras["engine"]`` (and its URL in ``extras["store_url"]``, which locates the key
  file); without it the connector refuses to start (``ConfigError``);
- the token endpoint is ``token_url``; when only ``discovery_url`` is overridden (an emulator, a
  proxy), Intuit's discovery document is read once, lazily, for its ``token_endpoint`` (the same
  document ``intuitlib.AuthClient`` fetches in its constructor, research 1.1).

intuit-oauth itself is not used: its ``AuthClient`` fetches discovery on construction, keeps the
tokens on the object and has no hook to persist a rotated token atomically, which the vault does.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import requests

from syncd.clock import Clock
from syncd.errors import ConfigError, FatalError, RetriableError
from syncd.oauth import DEFAULT_TIMEOUT, TokenEndpoint, TokenVault
from syncd.secretbox import load_secret_box

DEFAULT_TOKEN_URL: Final = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"  # noqa: S105
DEFAULT_AUTHORIZE_URL: Final = "https://appcenter.intuit.com/connect/oauth2"
DISCOVERY_URLS: Final[Mapping[str, str]] = {
    "production": "https://developer.intuit.com/.well-known/openid_configuration/",
    "sandbox": "https://developer.intuit.com/.well-known/openid_sandbox_configuration/",
}


class TokenSource(Protocol):
    """What the client needs: a valid access token, a fresh one after a 401 (``rejected``)."""

    def access_token(self, *, rejected: str | None = None) -> str: ...


class VaultTokens:
    """A connection's tokens from its vault, which is built on first use."""

    def __init__(
        self,
        *,
        connection: str,
        extras: Mapping[str, Any],
        client_id: str,
        client_secret: str,
        seed_refresh_token: str | None,
        token_url: str | None,
        discovery_url: str,
        clock: Clock,
    ) -> None:
        engine = extras.get("engine")
        if engine is None:
            raise ConfigError(
                f"connection {connection!r}: QuickBooks Online keeps its rotating OAuth tokens in "
                "the store, but none was given to the connector (build it with "
                "build_connector(..., engine=engine))"
            )
        self._engine = engine
        self._box = load_secret_box(store_url=extras.get("store_url"))
        self._connection = connection
        self._client = (client_id, client_secret)
        self._seed = seed_refresh_token
        self._token_url = token_url
        self._discovery_url = discovery_url
        self._clock = clock
        self._vault: TokenVault | None = None
        self._guard = threading.Lock()

    def access_token(self, *, rejected: str | None = None) -> str:
        return self.vault().access_token(rejected=rejected)

    def vault(self) -> TokenVault:
        with self._guard:
            if self._vault is None:
                url = self._token_url or discover_token_url(self._discovery_url)
                client_id, secret = self._client
                self._vault = TokenVault(
                    self._engine,
                    self._connection,
                    TokenEndpoint(url, client_id, secret),
                    self._box,
                    self._clock,
                    seed_refresh_token=self._seed,
                )
            return self._vault


def discover_token_url(discovery_url: str) -> str:
    """``token_endpoint`` of an OpenID discovery document (one GET, no credentials sent)."""
    where = f"QuickBooks discovery document {urlsplit(discovery_url).netloc}"
    try:
        response = requests.get(discovery_url, timeout=DEFAULT_TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        raise RetriableError(f"{where}: no answer ({type(exc).__name__})") from None
    with response:
        if response.status_code >= 500:
            raise RetriableError(f"{where}: HTTP {response.status_code}")
        try:
            document = response.json() if response.status_code == 200 else None
        except ValueError:
            document = None
    url = document.get("token_endpoint") if isinstance(document, dict) else None
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise FatalError(
            f"{where}: answered {response.status_code} without a token_endpoint URL; "
            "check discovery_url or set token_url"
        )
    return url


__all__ = [
    "DEFAULT_AUTHORIZE_URL",
    "DEFAULT_TOKEN_URL",
    "DISCOVERY_URLS",
    "TokenSource",
    "VaultTokens",
    "discover_token_url",
]
