"""``syncd auth NAME``: connect (or reconnect) an OAuth connection through its consent page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import click
from pydantic import SecretStr

from syncd.cli._context import AppContext
from syncd.clock import SystemClock
from syncd.errors import ConfigError
from syncd.oauth import TokenEndpoint, TokenVault, run_authorization_code_flow
from syncd.oauth.consent import DEFAULT_PORT
from syncd.secretbox import load_secret_box


@dataclass(frozen=True)
class OAuthClient:
    """What ``syncd auth`` reads from a connector's settings."""

    client_id: str
    client_secret: str = field(repr=False)
    authorize_url: str
    token_url: str
    scopes: tuple[str, ...] = ()
    credentials_in: Literal["basic", "body"] = "basic"


_REQUIRED: Sequence[str] = ("client_id", "client_secret", "authorize_url", "token_url")


def oauth_client(name: str, settings: object) -> OAuthClient:
    """The OAuth client of a connection's settings, or a ConfigError saying it does not use OAuth.

    Reads ``client_id``, ``client_secret``, ``authorize_url``, ``token_url`` and, if present,
    ``scopes`` (a list or a space-separated string) and ``token_auth`` (``basic`` or ``body``).
    """
    values = {key: _text(getattr(settings, key, None)) for key in _REQUIRED}
    missing = [key for key, value in values.items() if not value]
    if missing:
        raise ConfigError(
            f"connection {name!r}: this connection does not use OAuth, so there is nothing to "
            f"authorize (its settings lack {', '.join(missing)})"
        )
    raw_scopes = getattr(settings, "scopes", None) or ()
    scopes = tuple(raw_scopes.split() if isinstance(raw_scopes, str) else map(str, raw_scopes))
    credentials_in: Literal["basic", "body"] = "basic"
    match getattr(settings, "token_auth", None):
        case None | "basic":
            pass
        case "body":
            credentials_in = "body"
        case _:
            raise ConfigError(f"connection {name!r}: token_auth must be 'basic' or 'body'")
    return OAuthClient(
        client_id=values["client_id"],
        client_secret=values["client_secret"],
        authorize_url=values["authorize_url"],
        token_url=values["token_url"],
        scopes=scopes,
        credentials_in=credentials_in,
    )


def _text(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return "" if value is None else str(value)


@click.command("auth")
@click.argument("name")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Loopback port of the redirect (register http://127.0.0.1:PORT/callback with the app).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    help="Seconds to wait for the browser's redirect.",
)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Encryption key file (default: next to the SQLite database; $SYNCD_SECRET_KEY wins).",
)
@click.pass_obj
def auth(app: AppContext, name: str, port: int, timeout: float, key_file: Path | None) -> None:
    """Connect the OAuth connection NAME: open the printed URL, approve, and syncd stores the
    tokens (encrypted) in its store. Run it again whenever syncd says to reconnect."""
    settings = app.settings
    try:
        connection = settings.connection(name)
    except KeyError as exc:
        raise click.UsageError(str(exc.args[0])) from None
    client = oauth_client(name, connection.settings)
    endpoint = TokenEndpoint(
        client.token_url, client.client_id, client.client_secret, client.credentials_in
    )
    box = load_secret_box(key_file=key_file, store_url=settings.store.url)
    clock = SystemClock()
    vault = TokenVault(app.engine, name, endpoint, box, clock)
    consent = run_authorization_code_flow(
        connection=name,
        authorize_url=client.authorize_url,
        endpoint=endpoint,
        vault=vault,
        clock=clock,
        scopes=client.scopes,
        port=port,
        timeout=timeout,
        show=lambda url: click.echo(f"Open this URL in a browser and approve access:\n\n  {url}\n"),
    )
    click.echo(
        f"connected: {name} (access token valid until {consent.tokens.expires_at:%H:%M} UTC)"
    )
    for key, value in sorted(consent.params.items()):
        click.echo(f"  the vendor also sent {key}={value}")
