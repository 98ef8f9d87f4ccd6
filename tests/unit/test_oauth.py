"""The token vault and the consent flow against a real token endpoint on loopback.

``TokenServer`` behaves like Xero's identity server: every refresh rotates the refresh token, the
previous one stays valid for a 30-minute grace period (so a lost answer can be retried), and
anything older is ``invalid_grant``. It can also fail on request: 500, a dropped connection after it
rotated (the answer never reached us), a slow answer, an unreadable body.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
import requests
from click.testing import CliRunner
from cryptography.fernet import Fernet
from pydantic import BaseModel, SecretStr
from sqlalchemy import text
from sqlalchemy.engine import Engine
from structlog.testing import capture_logs

from syncd.cli._context import AppContext
from syncd.cli.auth_cmds import auth, oauth_client
from syncd.config.models import ConnectionSettings, Settings, StoreSettings
from syncd.errors import AuthError, ConfigError, RetriableError
from syncd.oauth import (
    Consent,
    RefreshLocks,
    TokenEndpoint,
    TokenVault,
    consent_url,
    run_authorization_code_flow,
)
from syncd.secretbox import SecretBox, WrongKeyError
from syncd.store import open_store
from syncd.testing import FakeClock

CLIENT_ID = "client-id-4711"
CLIENT_SECRET = "client-secret-ZYX987"
GRACE = dt.timedelta(minutes=30)
EXPIRES_IN = 1800
RECONNECT = (
    "connection qbo: the refresh token was rejected (invalid_grant); "
    "run `syncd auth qbo` to reconnect"
)


class PausingClock(FakeClock):
    """A FakeClock whose ``sleep`` runs queued actions: other workers act while this one waits."""

    def __init__(self) -> None:
        super().__init__()
        self.during_sleep: list[Callable[[], None]] = []

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        while self.during_sleep:
            self.during_sleep.pop(0)()


class TokenServer:
    """An OAuth2 token endpoint with Xero's rotation and grace rules, and injectable faults."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.current: str | None = None
        self.grace_until: dict[str, dt.datetime] = {}
        self.codes: dict[str, str] = {}  # authorization code -> redirect_uri it was issued for
        self.used: list[str] = []  # refresh tokens presented, in order
        self.code_calls = 0
        self.issued: list[str] = []  # every token value handed out
        self.access_tokens: list[str] = []
        self.faults: list[str] = []  # consumed one per request: 500, drop, slow, garbage
        self.delay = 0.0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_port}/token"

    @property
    def refresh_calls(self) -> int:
        return len(self.used)

    def endpoint(self, **overrides: Any) -> TokenEndpoint:
        options: dict[str, Any] = {
            "url": self.url,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "timeout": (2.0, 2.0),
        }
        return TokenEndpoint(**(options | overrides))

    def seed(self) -> str:
        """A refresh token as a person would paste into the config after a first consent."""
        self.current = self._new("seed")
        return self.current

    def revoke(self) -> None:
        self.current = None
        self.grace_until.clear()

    def _new(self, kind: str) -> str:
        value = f"{kind}-{secrets.token_hex(12)}"
        self.issued.append(value)
        return value

    def _tokens(self) -> dict[str, Any]:
        if self.current is not None:
            self.grace_until[self.current] = self.clock.now() + GRACE
        self.current = self._new("rt")
        self.access_tokens.append(self._new("at"))
        return {
            "access_token": self.access_tokens[-1],
            "refresh_token": self.current,
            "token_type": "bearer",
            "expires_in": EXPIRES_IN,
            "x_refresh_token_expires_in": 8726400,
        }

    def answer(self, form: dict[str, str], authorization: str) -> tuple[int, Any]:
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if authorization != f"Basic {expected}":
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") == "authorization_code":
            self.code_calls += 1
            if self.codes.pop(form.get("code", ""), None) != form.get("redirect_uri"):
                return 400, {"error": "invalid_grant", "error_description": "bad code"}
            self.grace_until.clear()
            return 200, self._tokens()
        presented = form.get("refresh_token", "")
        self.used.append(presented)
        in_grace = self.grace_until.get(presented, dt.datetime.min.replace(tzinfo=dt.UTC))
        if presented != self.current and self.clock.now() > in_grace:
            return 400, {"error": "invalid_grant"}
        return 200, self._tokens()

    @contextmanager
    def running(self) -> Iterator[TokenServer]:
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                time.sleep(app.delay)
                with app._lock:
                    fault = app.faults.pop(0) if app.faults else None
                    if fault == "500":
                        status, payload = 500, {"error": "server_error"}
                    else:
                        status, payload = app.answer(form, self.headers.get("Authorization", ""))
                if fault == "drop":  # rotated, but the answer never reaches the client
                    self.close_connection = True
                    return
                if fault == "slow":
                    time.sleep(0.6)
                body = json.dumps(payload).encode()
                if fault == "garbage":
                    body = b'{"access_token": "' + str(payload.get("access_token")).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out is expected in the "slow" test

        with Server(("127.0.0.1", 0), Handler) as httpd:
            self._httpd = httpd
            thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
            thread.start()
            try:
                yield self
            finally:
                httpd.shutdown()
                thread.join()


@pytest.fixture
def clock() -> PausingClock:
    return PausingClock()


@pytest.fixture
def server(clock: PausingClock) -> Iterator[TokenServer]:
    with TokenServer(clock).running() as running:
        yield running


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(Fernet.generate_key(), source="the test key")


def make_vault(
    engine: Engine,
    server: TokenServer,
    box: SecretBox,
    clock: FakeClock,
    seed: str | None = None,
    **options: Any,
) -> TokenVault:
    endpoint = options.pop("endpoint", None) or server.endpoint()
    options.setdefault("locks", RefreshLocks())
    return TokenVault(engine, "qbo", endpoint, box, clock, seed, **options)


def raw_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM oauth_tokens")).mappings().all()
    return [dict(row) for row in rows]


@contextmanager
def second_process(engine: Engine) -> Iterator[Engine]:
    """Another engine on the same database: what a second worker process would hold."""
    other = open_store(engine.url.render_as_string(hide_password=False))
    try:
        yield other
    finally:
        other.dispose()


# -- seeding and expiry --------------------------------------------------------------------------


def test_seed_is_used_once_then_ignored(
    engine: Engine, server: TokenServer, box: SecretBox, clock: FakeClock
) -> None:
    seed = server.seed()
    first = make_vault(engine, server, box, clock, seed).access_token()
    assert server.used == [seed]
    assert first == server.access_tokens[-1]

    clock.advance(EXPIRES_IN)  # a restart, later, with the same seed still in the config
    with capture_logs() as logs:
        second = make_vault(engine, server, box, clock, seed).access_token()
    assert server.used[1] != seed  # the stored, rotated refresh token was used
    assert second not in (first, seed)
    assert [e["event"] for e in logs] == ["oauth_seed_ignored", "oauth_token_refreshed"]
    assert all(seed not in str(e) for e in logs)


def test_refreshes_ahead_of_expiry(
    engine: Engine, server: TokenServer, box: SecretBox, clock: FakeClock
) -> None:
    vault = make_vault(engine, server, box, clock, server.seed(), refresh_margin=300)
    first = vault.access_token()
    clock.advance(EXPIRES_IN - 301)
    assert vault.access_token() == first
    assert server.refresh_calls == 1
    clock.advance(2)  # now inside the 5-minute margin
    second = vault.access_token()
    assert second != first
    assert server.refresh_calls == 2


def test_no_tokens_and_no_seed_asks_to_connect(
    engine: Engine, server: TokenServer, box: SecretBox, clock: FakeClock
) -> None:
    with pytest.raises(AuthError, match=r"no OAuth tokens stored .* run `syncd auth qbo`"):
        make_vault(engine, server, box, clock).access_token()
    assert raw_rows(engine) == []


def test_a_rejected_access_token_forces_one_refresh(
    engine: Engine, server: TokenServer, box: SecretBox, clock: FakeClock
) -> None:
    vault = make_vault(engine, server, box, clock, server.seed())
    first = vault.access_token()
    second = vault.access_token(rejected=first)
    assert second != first
    other = make_vault(engine, server, box, clock)  # another worker that also got the 401
    assert other.access_token(rejected=first) == second
    assert server.refresh_calls == 2


# -- single flight -------------------------------------------------------------------------------


def test_eight_threads_refresh_once(
    engine: Engine, server: TokenServer, box: SecretBox, clock: FakeClock
) -> None:
    vault = make_vault(engine, server, box, clock, server.seed())
    server.delay = 0.2
    start = threading.Barrier(8)
    results: list[str] = []

    def worker() -> None:
        start.wait()
        results.append(vault.access_token())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert server.refresh_calls == 1
    assert len(results) == 8 and len(set(results)) == 1


@pytest.mark.parametrize("start", ["from the seed", "from expired stored tokens"])
def test_two_processes_refresh_once(
    engine: Engine, server: TokenServer, box: SecretBox, clock: FakeClock, start: str
) -> None:
    seed = server.seed()
    if start == "from expired stored tokens":
        make_vault(engine, server, box, clock, seed).access_token()
        clock.advance(EXPIRES_IN)
    calls_before = server.refresh_calls
    server.delay = 0.2
    results: list[str] = []
    with second_process(engine) as other_engine:
        # Separate lock registries: the in-process lock cannot help, only the store's can.
        vaults = [
            make_vault(engine, server, box, clock, seed),
            make_vault(other_engine, server, box, clock, seed),
        ]
        barrier = threading.Barrier(6)

        def worker(vault: TokenVault) -> None:
            barrier.wait()
            results.append(vault.access_token())

        threads = [threading.Thread(target=worker, args=(vaults[i % 2],)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert server.refresh_calls == calls_before + 1
    assert len(results) == 6 and len(set(results)) == 1
    assert results[0] == server.access_tokens[-1]


# -- invalid_grant -------------------------------------------------------------------------------


def test_invalid_grant_after_another_worker_rotated_is_recovered(
    engine: Engine, server: TokenServer, box: SecretBox, clock: PausingClock
) -> None:
    vault = make_vault(engine, server, box, clock, server.seed())
    vault.access_token()
    stored_refresh = server.current
    assert stored_refresh is not None
    # Another worker, which did not wait for our lock, rotates the token at the vendor...
    rotated = server.endpoint().refresh(stored_refresh, clock=clock)
    clock.advance(GRACE.total_seconds() + 60)  # ...long enough ago that ours is past its grace
    with second_process(engine) as other_engine:
        other = make_vault(other_engine, server, box, clock)
        # ...and commits while we pause after the vendor's invalid_grant.
        clock.during_sleep.append(lambda: other.store(rotated))
        token = vault.access_token()
    assert server.used[-2:] == [stored_refresh, rotated.refresh_token]
    assert token == server.access_tokens[-1]
    assert clock.slept == [1.0]
    assert raw_rows(engine)[0]["version"] == 3


def test_true_invalid_grant_asks_to_reconnect_and_keeps_the_row(
    engine: Engine, server: TokenServer, box: SecretBox, clock: FakeClock
) -> None:
    vault = make_vault(engine, server, box, clock, server.seed())
    vault.access_token()
    before = raw_rows(engine)
    server.revoke()
    clock.advance(EXPIRES_IN)
    with capture_logs() as logs, pytest.raises(AuthError) as info:
        vault.access_token()
    assert str(info.value) == RECONNECT
    assert info.value.code == "invalid_grant"
    assert server.refresh_calls == 2  # the same refresh token is not tried twice
    assert raw_rows(engine) == before
    assert logs[-1]["event"] == "oauth_disconnected"


def test_rejected_seed_asks_to_reconnect(
    engine: Engine, server: TokenServer, box: SecretBox, clock: FakeClock
) -> None:
    server.seed()
    with pytest.raises(AuthError, match="invalid_grant"):
        make_vault(engine, server, box, clock, "seed-that-was-never-issued").access_token()
    assert raw_rows(engine) == []


# -- transient failures leave the store alone ----------------------------------------------------


@pytest.mark.parametrize("fault", ["500", "drop", "garbage"])
def test_transient_failure_is_retriable_and_changes_nothing(
    engine: Engine, server: TokenServer, box: SecretBox, clock: FakeClock, fault: str
) -> None:
    vault = make_vault(engine, server, box, clock, server.seed())
    vault.access_token()
    before = raw_rows(engine)
    clock.advance(EXPIRES_IN)
    server.faults.append(fault)
    with pytest.raises(RetriableError) as info:
        vault.access_token()
    assert not isinstance(info.value, AuthError)
    assert str(info.value).startswith("connection qbo: token endpoint 127.0.0.1:")
    assert all(token not in str(info.value) for token in server.issued)
    assert raw_rows(engine) == before
    vault.access_token()  # the next attempt recovers, even after a rotation we never saw
    assert raw_rows(engine)[0]["version"] == 2


def test_timeout_is_retriable(
    engine: Engine, server: TokenServer, box: SecretBox, clock: FakeClock
) -> None:
    seed = server.seed()
    vault = make_vault(engine, server, box, clock, seed, endpoint=server.endpoint(timeout=(1, 0.2)))
    server.faults.append("slow")
    with pytest.raises(RetriableError, match="ReadTimeout"):
        vault.access_token()
    assert raw_rows(engine) == []


def test_answer_lost_after_rotation_recovers_within_the_grace_period(
    engine: Engine, server: TokenServer, box: SecretBox, clock: FakeClock
) -> None:
    vault = make_vault(engine, server, box, clock, server.seed())
    vault.access_token()
    clock.advance(EXPIRES_IN)
    server.faults.append("drop")  # the vendor rotated; we died before committing its answer
    with pytest.raises(RetriableError):
        vault.access_token()
    clock.advance(20 * 60)
    restarted = make_vault(engine, server, box, clock)
    assert restarted.access_token() == server.access_tokens[-1]
    assert server.used[-1] == server.used[-2]  # the stored, previous refresh token worked


def test_answer_lost_past_the_grace_period_asks_to_reconnect(
    engine: Engine, server: TokenServer, box: SecretBox, clock: FakeClock
) -> None:
    vault = make_vault(engine, server, box, clock, server.seed())
    vault.access_token()
    clock.advance(EXPIRES_IN)
    server.faults.append("drop")
    with pytest.raises(RetriableError):
        vault.access_token()
    clock.advance(GRACE.total_seconds() + 1)
    with pytest.raises(AuthError, match="reconnect"):
        vault.access_token()


def test_wrong_client_secret_is_an_auth_error(
    engine: Engine, server: TokenServer, box: SecretBox, clock: FakeClock
) -> None:
    endpoint = server.endpoint(client_secret="not-the-secret")
    vault = make_vault(engine, server, box, clock, server.seed(), endpoint=endpoint)
    with pytest.raises(AuthError, match="client id or secret was refused"):
        vault.access_token()


# -- secrets -------------------------------------------------------------------------------------


def test_tokens_are_encrypted_at_rest_and_committed_before_use(
    engine: Engine, server: TokenServer, box: SecretBox, clock: FakeClock
) -> None:
    token = make_vault(engine, server, box, clock, server.seed()).access_token()
    with second_process(engine) as other_engine:
        (row,) = raw_rows(other_engine)  # visible to another connection: it was committed
    stored = " ".join(str(value) for value in row.values())
    assert all(issued not in stored for issued in server.issued)
    assert box.decrypt(row["access_token"], what="it") == token
    assert box.decrypt(row["refresh_token"], what="it") == server.current


def test_wrong_key_is_a_clear_error_and_reconnecting_replaces_the_tokens(
    engine: Engine, server: TokenServer, box: SecretBox, clock: FakeClock
) -> None:
    make_vault(engine, server, box, clock, server.seed()).access_token()
    other_box = SecretBox(Fernet.generate_key(), source="key file './syncd.key'")
    vault = make_vault(engine, server, other_box, clock)
    with pytest.raises(WrongKeyError) as info:
        vault.access_token()
    assert str(info.value) == (
        "tokens in the store were encrypted with another key: cannot decrypt the tokens of "
        "connection 'qbo' with the key from key file './syncd.key'; restore the key used "
        "before, or run `syncd auth qbo` to reconnect"
    )
    assert info.value.__suppress_context__
    fresh = server.endpoint().refresh(str(server.current), clock=clock)
    vault.store(fresh)  # what `syncd auth qbo` does
    assert vault.access_token() == fresh.access_token


def test_no_token_reaches_a_log_line_or_an_error(
    engine: Engine, server: TokenServer, box: SecretBox, clock: FakeClock
) -> None:
    seed = server.seed()
    errors: list[str] = []
    with capture_logs() as logs:
        vault = make_vault(engine, server, box, clock, seed)
        vault.access_token()
        for fault in ("500", "garbage"):
            clock.advance(EXPIRES_IN)
            server.faults.append(fault)
            with pytest.raises(RetriableError) as info:
                vault.access_token()
            errors.append(str(info.value))
        server.revoke()
        with pytest.raises(AuthError) as auth_info:
            vault.access_token()
        errors.append(str(auth_info.value))
    assert logs
    shown = repr(logs) + repr(errors) + repr(server.endpoint()) + repr(vault)
    for value in [*server.issued, CLIENT_SECRET]:
        assert value not in shown


# -- the consent flow ----------------------------------------------------------------------------


class Browser:
    """What a person's browser does with the consent URL: approve, then follow the redirect."""

    def __init__(self, server: TokenServer, *, state: str | None = None, extra: str = "") -> None:
        self.server, self.state, self.extra = server, state, extra
        self.statuses: list[int] = []
        self._thread: threading.Thread | None = None

    def __call__(self, url: str) -> None:
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        code = f"code-{secrets.token_hex(8)}"
        self.server.codes[code] = query["redirect_uri"]
        state = self.state or query["state"]
        self._thread = threading.Thread(
            target=self._follow,
            args=(query["redirect_uri"], f"?code={code}&state={state}{self.extra}"),
        )
        self._thread.start()

    def _follow(self, redirect_uri: str, query: str) -> None:
        origin = redirect_uri.removesuffix("/callback")
        for url in (f"{origin}/favicon.ico", redirect_uri + query):
            with requests.get(url, timeout=5) as response:
                self.statuses.append(response.status_code)

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()


def run_flow(
    engine: Engine, server: TokenServer, box: SecretBox, clock: FakeClock, **options: Any
) -> Consent:
    defaults: dict[str, Any] = {
        "connection": "qbo",
        "authorize_url": "https://appcenter.example/connect/oauth2",
        "endpoint": server.endpoint(),
        "vault": make_vault(engine, server, box, clock),
        "clock": clock,
        "scopes": ("com.intuit.quickbooks.accounting",),
        "port": 0,
        "timeout": 5.0,
    }
    return run_authorization_code_flow(**(defaults | options))


def test_consent_flow_stores_tokens_end_to_end(
    engine: Engine, server: TokenServer, box: SecretBox, clock: FakeClock
) -> None:
    person = Browser(server, extra="&realmId=9130")
    consent = run_flow(engine, server, box, clock, show=person)
    person.join()
    assert person.statuses == [404, 200]
    assert consent.params == {"realmId": "9130"}
    vault = make_vault(engine, server, box, clock)
    assert vault.access_token() == consent.tokens.access_token
    assert server.refresh_calls == 0
    stored = repr(raw_rows(engine))
    assert consent.tokens.refresh_token not in stored


def test_consent_flow_refuses_a_wrong_state(
    engine: Engine, server: TokenServer, box: SecretBox, clock: FakeClock
) -> None:
    person = Browser(server, state="forged")
    with pytest.raises(AuthError, match="state did not match"):
        run_flow(engine, server, box, clock, show=person)
    person.join()
    assert person.statuses == [404, 400]
    assert server.code_calls == 0
    assert raw_rows(engine) == []


def test_consent_flow_gives_up_after_its_timeout(
    engine: Engine, server: TokenServer, box: SecretBox, clock: FakeClock
) -> None:
    with pytest.raises(AuthError, match=r"no redirect arrived within 0.3 s"):
        run_flow(engine, server, box, clock, show=lambda url: None, timeout=0.3)


def test_consent_url_carries_the_request() -> None:
    url = consent_url(
        "https://login.example/authorize?prompt=consent",
        client_id="abc",
        redirect_uri="http://127.0.0.1:8765/callback",
        scopes=["openid", "offline_access"],
        state="s1",
    )
    query = parse_qs(urlsplit(url).query)
    assert query == {
        "prompt": ["consent"],
        "client_id": ["abc"],
        "redirect_uri": ["http://127.0.0.1:8765/callback"],
        "response_type": ["code"],
        "scope": ["openid offline_access"],
        "state": ["s1"],
    }


# -- the CLI wrapper -----------------------------------------------------------------------------


class OAuthSettings(BaseModel):
    client_id: str
    client_secret: SecretStr
    authorize_url: str | None = None
    token_url: str | None = None
    scopes: list[str] = []


def test_oauth_client_reads_the_connector_settings() -> None:
    client = oauth_client(
        "xero",
        OAuthSettings(
            client_id="id",
            client_secret=SecretStr("sec"),
            authorize_url="https://login.xero.com/identity/connect/authorize",
            token_url="https://identity.xero.com/connect/token",
            scopes=["offline_access", "accounting.transactions"],
        ),
    )
    assert client.client_secret == "sec"
    assert client.scopes == ("offline_access", "accounting.transactions")
    assert "sec" not in repr(client)


def test_auth_on_a_connection_without_oauth_says_so(sqlite_url: str) -> None:
    settings = Settings(
        store=StoreSettings(url=sqlite_url),
        connections={
            "psa": ConnectionSettings(
                name="psa",
                connector="fake",
                settings=OAuthSettings(client_id="x", client_secret=SecretStr("y")),
            )
        },
    )
    app = AppContext(config_path="unused.toml", _settings=settings)
    result = CliRunner().invoke(auth, ["psa"], obj=app)
    app.close()
    assert isinstance(result.exception, ConfigError)
    assert "does not use OAuth" in str(result.exception)
    assert "authorize_url, token_url" in str(result.exception)
    unknown = CliRunner().invoke(auth, ["nope"], obj=app)
    assert isinstance(unknown.exception, SystemExit)
    assert "no connection named 'nope'" in unknown.output
