"""The authorization-code flow behind ``syncd auth NAME``: browser consent, tokens in the vault.

The redirect lands on a one-shot HTTP server on 127.0.0.1 (never on a public interface). The
``state`` sent with the consent URL must come back unchanged, or the redirect is refused: it could
be another site's code planted on our listener. The server logs nothing, since a request line
carries the authorization code.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from syncd.clock import Clock
from syncd.errors import AuthError
from syncd.oauth.endpoint import TokenEndpoint, TokenSet
from syncd.oauth.vault import TokenVault
from syncd.redact import REDACTOR

CALLBACK_PATH = "/callback"
DEFAULT_PORT = 8765


@dataclass(frozen=True)
class Consent:
    """The outcome of a consent: the stored tokens and the redirect's other parameters.

    ``params`` holds what the vendor added besides ``code`` and ``state``: QuickBooks sends the
    company id as ``realmId``.
    """

    tokens: TokenSet
    params: Mapping[str, str]


def consent_url(
    authorize_url: str,
    *,
    client_id: str,
    redirect_uri: str,
    scopes: Sequence[str],
    state: str,
) -> str:
    """The vendor's consent page URL with our parameters added to any it already has."""
    query = {
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": " ".join(scopes),
        "state": state,
    }
    separator = "&" if urlsplit(authorize_url).query else "?"
    return f"{authorize_url}{separator}{urlencode(query)}"


def run_authorization_code_flow(
    *,
    connection: str,
    authorize_url: str,
    endpoint: TokenEndpoint,
    vault: TokenVault,
    clock: Clock,
    scopes: Sequence[str] = (),
    port: int = DEFAULT_PORT,
    timeout: float = 300.0,
    show: Callable[[str], None] = print,
) -> Consent:
    """Show the consent URL, wait for the redirect, trade the code, store the tokens.

    ``port`` 0 picks a free port (tests); a real vendor needs the exact redirect URI registered
    with the app, so the CLI uses a fixed one. ``timeout`` is in real seconds: it bounds a wait
    for a person in a browser, which no fake clock can shorten.
    """
    state = secrets.token_urlsafe(32)
    with _CallbackServer(port, state) as server:
        redirect_uri = f"http://127.0.0.1:{server.server_port}{CALLBACK_PATH}"
        show(
            consent_url(
                authorize_url,
                client_id=endpoint.client_id,
                redirect_uri=redirect_uri,
                scopes=scopes,
                state=state,
            )
        )
        params = server.wait(timeout)
    if params is None:
        raise AuthError(
            f"connection {connection}: no redirect arrived within {timeout:g} s; "
            f"run `syncd auth {connection}` again"
        )
    if "error" in params:
        reason = REDACTOR.redact(params.get("error_description") or params["error"])
        raise AuthError(f"connection {connection}: consent was not given ({reason})")
    if not hmac.compare_digest(params.get("state", ""), state):
        raise AuthError(
            f"connection {connection}: the redirect's state did not match the consent request "
            f"(a stale tab, or a forged redirect); run `syncd auth {connection}` again"
        )
    code = params.get("code", "")
    if not code:
        raise AuthError(f"connection {connection}: the redirect carried no authorization code")
    REDACTOR.add(code)
    tokens = endpoint.exchange_code(code, redirect_uri, clock=clock)
    vault.store(tokens)
    extra = {k: v for k, v in params.items() if k not in ("code", "state")}
    return Consent(tokens=tokens, params=extra)


class _CallbackServer(HTTPServer):
    """Answers until one request reaches ``/callback``; keeps its query for ``wait``."""

    def __init__(self, port: int, state: str) -> None:
        self.expected_state = state
        self.params: dict[str, str] | None = None
        super().__init__(("127.0.0.1", port), _CallbackHandler)

    def wait(self, timeout: float) -> dict[str, str] | None:
        deadline = time.monotonic() + timeout
        while self.params is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.timeout = remaining
            self.handle_request()
        return self.params

    def __enter__(self) -> _CallbackServer:
        return self


class _CallbackHandler(BaseHTTPRequestHandler):
    server: _CallbackServer

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path != CALLBACK_PATH:
            self._reply(404, "Not the syncd callback.")
            return
        params = dict(parse_qsl(url.query))
        REDACTOR.add(params.get("code"))
        self.server.params = params
        if "error" in params:
            self._reply(400, "Consent was not given. Return to the terminal.")
        elif not hmac.compare_digest(params.get("state", ""), self.server.expected_state):
            self._reply(400, "This redirect does not match the consent request. Nothing stored.")
        else:
            self._reply(200, "syncd received the authorization. Return to the terminal.")

    def _reply(self, status: int, text: str) -> None:
        body = f"<!doctype html><title>syncd</title><p>{text}</p>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request line holds the authorization code."""
