"""HttpClient: retries, write safety, origins, redaction, logging; and real loopback HTTP."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
import responses
from requests.auth import HTTPBasicAuth
from structlog.testing import capture_logs

from syncd.errors import FatalError, RateLimited, RetriableError, UncertainWrite
from syncd.http import DEFAULT_TIMEOUT, HttpClient
from syncd.redact import Redactor
from syncd.testing import FakeClock

BASE = "https://api.vendor.test/v1"
TOKEN = "tok-SECRET-0123456789"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def client(clock: FakeClock, base: str = BASE, **overrides: Any) -> HttpClient:
    options: dict[str, Any] = {
        "connection": "acme-books",
        "vendor": "vendorx",
        "clock": clock,
        "redactor": Redactor(),
        "max_attempts": 3,
        "idempotency_header": "Idempotency-Key",
    }
    options.update(overrides)
    return HttpClient(base, **options)


# -- reads are retried -------------------------------------------------------------------------


def test_get_503_then_200_is_retried_with_backoff(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.add("GET", f"{BASE}/customers", status=503)
    rsps.add("GET", f"{BASE}/customers", json={"items": [1, 2]})
    c = client(clock)

    assert c.get_json("/customers") == {"items": [1, 2]}
    assert c.requests_made == 2
    assert len(clock.slept) == 1
    assert 1.0 <= clock.slept[0] <= 2.0  # backoff 1s + up to 1s jitter


def test_get_gives_up_after_max_attempts_with_growing_capped_waits(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.add("GET", f"{BASE}/customers", status=500)  # repeats for every call
    c = client(clock, max_attempts=5, max_backoff=3.0)

    with pytest.raises(RetriableError) as raised:
        c.get_json("/customers")

    assert raised.value.status == 500
    assert c.requests_made == 5
    assert len(clock.slept) == 4
    assert 1.0 <= clock.slept[0] <= 2.0
    assert 2.0 <= clock.slept[1] <= 3.0
    assert all(wait <= 3.0 for wait in clock.slept)


def test_retry_after_seconds_is_honoured(rsps: responses.RequestsMock, clock: FakeClock) -> None:
    rsps.add("GET", f"{BASE}/invoices", status=429, headers={"Retry-After": "7"})
    rsps.add("GET", f"{BASE}/invoices", json=[])
    assert client(clock).get_json("/invoices") == []
    assert clock.slept == [7.0]


def test_retry_after_http_date_is_honoured(rsps: responses.RequestsMock, clock: FakeClock) -> None:
    rsps.add(
        "GET",
        f"{BASE}/invoices",
        status=429,
        headers={"Retry-After": "Thu, 01 Jan 2026 00:00:42 GMT"},
    )
    rsps.add("GET", f"{BASE}/invoices", json=[])
    assert client(clock).get_json("/invoices") == []
    assert clock.slept == [42.0]


def test_retry_after_longer_than_the_cap_is_raised_not_slept(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.add("GET", f"{BASE}/invoices", status=429, headers={"Retry-After": "3600"})
    c = client(clock, max_retry_after=120)
    with pytest.raises(RateLimited) as raised:
        c.get_json("/invoices")
    assert raised.value.retry_after == 3600.0
    assert clock.slept == []
    assert c.requests_made == 1


def test_read_timeout_then_success(rsps: responses.RequestsMock, clock: FakeClock) -> None:
    rsps.add("GET", f"{BASE}/x", body=requests.exceptions.ReadTimeout("read timed out"))
    rsps.add("GET", f"{BASE}/x", json={"ok": True})
    assert client(clock).get_json("/x") == {"ok": True}


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ConnectionError("Connection aborted."),
        requests.exceptions.ChunkedEncodingError("IncompleteRead"),
        requests.exceptions.ContentDecodingError("bad gzip"),
        requests.exceptions.ReadTimeout("read timed out"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transport_failures_on_reads_become_retriable(
    rsps: responses.RequestsMock, clock: FakeClock, failure: Exception
) -> None:
    rsps.add("GET", f"{BASE}/x", body=failure)
    c = client(clock)
    with pytest.raises(RetriableError) as raised:
        c.get_json("/x")
    assert type(raised.value) is RetriableError
    assert c.requests_made == 3
    assert raised.value.__cause__ is None  # no raw requests exception (and its URL) attached


def test_truncated_json_on_a_read_is_retried(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.add("GET", f"{BASE}/page", body='{"items": [1, 2', content_type="application/json")
    rsps.add("GET", f"{BASE}/page", json={"items": [1, 2, 3]})
    assert client(clock).get_json("/page") == {"items": [1, 2, 3]}


def test_truncated_json_every_time_is_retriable(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.add("GET", f"{BASE}/page", body='{"items": [1', content_type="application/json")
    with pytest.raises(RetriableError, match="not valid JSON"):
        client(clock).get_json("/page")


# -- writes are retried only when safe ---------------------------------------------------------


def test_post_500_without_key_is_uncertain_and_not_retried(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.add("POST", f"{BASE}/payments", status=500)
    c = client(clock)
    with pytest.raises(UncertainWrite) as raised:
        c.request("POST", "/payments", json={"amount": "10.00"})
    assert raised.value.status == 500
    assert c.requests_made == 1
    assert clock.slept == []


def test_post_429_without_key_is_retried_because_nothing_was_written(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.add("POST", f"{BASE}/payments", status=429, headers={"Retry-After": "2"})
    rsps.add("POST", f"{BASE}/payments", status=201, json={"id": "p1"})
    c = client(clock)
    assert c.request_json("POST", "/payments", json={"amount": "10.00"}) == {"id": "p1"}
    assert clock.slept == [2.0]


def test_post_with_idempotency_key_is_retried_with_the_same_key(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.add("POST", f"{BASE}/payments", status=502)
    rsps.add("POST", f"{BASE}/payments", body=requests.exceptions.ReadTimeout())
    rsps.add("POST", f"{BASE}/payments", status=201, json={"id": "p1"})
    c = client(clock)

    body = c.request_json("POST", "/payments", json={"amount": "1"}, idempotency_key="pay-7:qbo")

    assert body == {"id": "p1"}
    assert [call.request.headers["Idempotency-Key"] for call in rsps.calls] == ["pay-7:qbo"] * 3


def test_idempotency_key_as_query_parameter(rsps: responses.RequestsMock, clock: FakeClock) -> None:
    rsps.add("POST", f"{BASE}/payments", status=503)
    rsps.add(
        "POST",
        f"{BASE}/payments",
        status=201,
        json={"id": "p1"},
        match=[responses.matchers.query_param_matcher({"requestid": "k1", "minorversion": "75"})],
    )
    c = client(clock, idempotency_header=None, idempotency_param="requestid")
    c.request("POST", "/payments", params={"minorversion": "75"}, idempotency_key="k1")
    assert "requestid=k1" in str(rsps.calls[0].request.url)


def test_post_vouched_idempotent_is_retried(rsps: responses.RequestsMock, clock: FakeClock) -> None:
    rsps.add("POST", f"{BASE}/payments", status=500)
    rsps.add("POST", f"{BASE}/payments", status=200, json={"id": "p1"})
    c = client(clock)
    assert c.request_json("POST", "/payments", idempotent=True) == {"id": "p1"}


def test_keyed_write_that_never_gets_an_answer_stays_uncertain(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.add("PUT", f"{BASE}/payments/1", body=requests.exceptions.ReadTimeout())
    c = client(clock)
    with pytest.raises(UncertainWrite):
        c.request("PUT", "/payments/1", json={}, idempotency_key="k")
    assert c.requests_made == 3


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ConnectionError("Connection aborted."),
        requests.exceptions.ChunkedEncodingError("IncompleteRead"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_post_timeout_or_drop_is_uncertain_and_not_retried(
    rsps: responses.RequestsMock, clock: FakeClock, failure: Exception
) -> None:
    rsps.add("POST", f"{BASE}/payments", body=failure)
    c = client(clock)
    with pytest.raises(UncertainWrite, match="may have landed"):
        c.request("POST", "/payments", json={"amount": "10.00"})
    assert c.requests_made == 1


def test_post_connect_timeout_is_retried_because_nothing_was_sent(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.add("POST", f"{BASE}/payments", body=requests.exceptions.ConnectTimeout())
    rsps.add("POST", f"{BASE}/payments", status=201, json={"id": "p1"})
    assert client(clock).request_json("POST", "/payments", json={}) == {"id": "p1"}


def test_post_with_unparseable_answer_is_uncertain(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.add("POST", f"{BASE}/payments", status=201, body='{"id": "p', content_type="text/json")
    with pytest.raises(UncertainWrite):
        client(clock).request_json("POST", "/payments", json={})


def test_post_clear_4xx_raises_the_mapped_class_once(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.add("POST", f"{BASE}/payments", status=400, json={"message": "bad amount"})
    c = client(clock)
    with pytest.raises(FatalError, match="bad amount"):
        c.request("POST", "/payments", json={}, idempotency_key="k")
    assert c.requests_made == 1


def test_idempotency_key_without_a_way_to_send_it_is_refused(clock: FakeClock) -> None:
    c = client(clock, idempotency_header=None)
    with pytest.raises(ValueError, match="idempotency"):
        c.request("POST", "/payments", idempotency_key="k")


def test_204_gives_none(rsps: responses.RequestsMock, clock: FakeClock) -> None:
    rsps.add("DELETE", f"{BASE}/hooks/1", status=204)
    assert client(clock).request_json("DELETE", "/hooks/1") is None


# -- origins and redirects ---------------------------------------------------------------------


def test_next_link_on_another_host_is_refused_before_sending(clock: FakeClock) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=True):
        c = client(clock, headers={"Authorization": f"Bearer {TOKEN}"})
        with pytest.raises(FatalError, match=r"refusing to send credentials to host 'evil\.test'"):
            c.get_json("https://evil.test/v1/customers?page=2")
        assert c.requests_made == 0


@pytest.mark.parametrize(
    "url",
    ["http://api.vendor.test/v1/c", "https://api.vendor.test:8443/v1/c"],
    ids=["scheme", "port"],
)
def test_next_link_with_another_scheme_or_port_is_refused(clock: FakeClock, url: str) -> None:
    with pytest.raises(FatalError, match="refusing"):
        client(clock).get_json(url)


def test_next_link_on_the_same_origin_or_an_allowed_one_is_followed(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.add("GET", f"{BASE}/customers?page=2", json={"page": 2})
    rsps.add("GET", "https://files.vendor.test/export/1", json={"file": 1})
    c = client(clock, allowed_origins=["https://files.vendor.test"])
    assert c.get_json(f"{BASE}/customers?page=2") == {"page": 2}
    assert c.get_json("https://files.vendor.test/export/1") == {"file": 1}


def test_redirect_to_another_host_is_refused(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.add("GET", f"{BASE}/me", status=302, headers={"Location": "https://evil.test/steal"})
    c = client(clock)
    with pytest.raises(FatalError, match=r"evil\.test"):
        c.get_json("/me")
    assert c.requests_made == 1


def test_redirect_on_the_same_host_is_followed(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.add("GET", f"{BASE}/old", status=301, headers={"Location": "/v2/new"})
    rsps.add("GET", "https://api.vendor.test/v2/new", json={"moved": True})
    c = client(clock)
    assert c.get_json("/old") == {"moved": True}
    assert c.requests_made == 2


def test_redirect_loop_is_fatal(rsps: responses.RequestsMock, clock: FakeClock) -> None:
    rsps.add("GET", f"{BASE}/loop", status=302, headers={"Location": f"{BASE}/loop"})
    with pytest.raises(FatalError, match="too many redirects"):
        client(clock).get_json("/loop")


def test_write_is_never_redirected(rsps: responses.RequestsMock, clock: FakeClock) -> None:
    rsps.add("POST", f"{BASE}/payments", status=307, headers={"Location": f"{BASE}/p2"})
    c = client(clock)
    with pytest.raises(FatalError, match="never re-sent"):
        c.request("POST", "/payments", json={}, idempotency_key="k")
    assert c.requests_made == 1


# -- secrets, logging, plumbing ----------------------------------------------------------------


def test_secrets_never_reach_errors_or_logs(rsps: responses.RequestsMock, clock: FakeClock) -> None:
    redactor = Redactor([TOKEN])
    api_key = "key-ABCDEF-987654"
    rsps.add(
        "GET",
        f"{BASE}/customers/{TOKEN}",
        status=401,
        json={"message": f"token {TOKEN} expired; key {api_key}"},
    )
    rsps.add(
        "GET",
        f"{BASE}/other",
        body=requests.exceptions.ConnectionError(f"Max retries exceeded with url: /?k={TOKEN}"),
    )
    c = client(
        clock,
        redactor=redactor,
        max_attempts=1,
        headers={"Authorization": f"Bearer {TOKEN}", "X-Api-Key": api_key},
    )

    with capture_logs() as logs:
        errors = []
        for path in (f"/customers/{TOKEN}", "/other"):
            with pytest.raises(Exception) as raised:  # noqa: PT011 - any class; the text matters
                c.get_json(path, params={"api_key": api_key})
            errors.append(raised.value)

    texts = [str(e) for e in errors] + [repr(e) for e in errors] + [repr(entry) for entry in logs]
    for text in texts:
        assert TOKEN not in text
        assert api_key not in text  # registered by the client from its X-Api-Key header
        assert "api_key=" not in text  # query strings are never logged or raised
        assert "Authorization" not in text
    assert "***" in str(errors[0])


def test_basic_auth_credentials_are_registered_as_secrets(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    redactor = Redactor()
    rsps.add("GET", f"{BASE}/x", status=403, body="denied for integration-pass-42")
    c = client(clock, redactor=redactor, auth=HTTPBasicAuth("api-user", "integration-pass-42"))
    with pytest.raises(Exception, match=r"denied for \*\*\*"):
        c.get_json("/x")
    assert rsps.calls[0].request.headers["Authorization"].startswith("Basic ")


def test_every_attempt_is_one_http_request_event(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.add("GET", f"{BASE}/customers", status=503)
    rsps.add("GET", f"{BASE}/customers", json=[])
    with capture_logs() as logs:
        client(clock).get_json("/customers", params={"q": "x"})

    events = [e for e in logs if e["event"] == "http_request"]
    assert [(e["status"], e["attempt"], e["log_level"]) for e in events] == [
        (503, 1, "warning"),
        (200, 2, "info"),
    ]
    for event in events:
        assert event["method"] == "GET"
        assert event["path"] == "/v1/customers"
        assert event["connection"] == "acme-books"
        assert event["vendor"] == "vendorx"
        assert isinstance(event["duration_ms"], float)


def test_transport_failure_is_logged_with_its_kind(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.add("POST", f"{BASE}/p", body=requests.exceptions.ReadTimeout())
    with capture_logs() as logs, pytest.raises(UncertainWrite):
        client(clock).request("POST", "/p")
    assert logs[0]["status"] is None
    assert logs[0]["error"] == "ReadTimeout"


def test_timeouts_and_default_headers_are_always_sent(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    rsps.add("GET", f"{BASE}/a", json={})
    rsps.add("GET", f"{BASE}/b", json={})
    c = client(clock, headers={"Accept": "application/json"})
    c.get_json("/a")
    c.get_json("/b", timeout=(1.0, 2.0))
    kwargs = [call.request.req_kwargs for call in rsps.calls]  # type: ignore[attr-defined]
    assert kwargs[0]["timeout"] == DEFAULT_TIMEOUT
    assert kwargs[1]["timeout"] == (1.0, 2.0)
    assert rsps.calls[0].request.headers["Accept"] == "application/json"
    assert rsps.calls[0].request.headers["User-Agent"].startswith("syncd/")


@pytest.mark.parametrize("timeout", [(0, 5), (5, 0), (-1, 5)])
def test_timeouts_must_be_positive(clock: FakeClock, timeout: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match="timeouts"):
        client(clock, timeout=timeout)


def test_base_url_must_be_absolute(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="base_url"):
        client(clock, base="api.vendor.test/v1")


def test_relative_paths_join_the_base_path(rsps: responses.RequestsMock, clock: FakeClock) -> None:
    rsps.add("GET", "https://api.vendor.test/v1/company/123/query", json={})
    c = client(clock, base="https://api.vendor.test/v1/company/123/")
    c.get_json("query")
    assert c.requests_made == 1


# -- real loopback HTTP: timeouts and dropped connections really happen -----------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.hits[self.path] = self.server.hits.get(self.path, 0) + 1
        try:
            if self.path == "/slow":
                self.server.release.wait(2.0)  # far longer than the client's read timeout
                self._reply(200, b'{"late": true}')
            elif self.path == "/drop":
                self.close_connection = True  # close the socket without a byte of response
            elif self.path == "/truncated":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "100")
                self.end_headers()
                self.wfile.write(b'{"items": [')
                self.close_connection = True
            else:
                self._reply(200, json.dumps({"path": self.path}).encode())
        except OSError:  # the client gave up first; that is the point of the test
            self.close_connection = True

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    release: threading.Event
    hits: dict[str, int]

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-test is expected


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.release = threading.Event()
    srv.hits = {}
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield srv
    finally:
        srv.release.set()
        srv.shutdown()
        thread.join()
        srv.server_close()


def loopback(server: _Server, clock: FakeClock, **overrides: Any) -> HttpClient:
    host, port = server.server_address[:2]
    options: dict[str, Any] = {"timeout": (0.5, 0.2), "max_attempts": 2}
    options.update(overrides)
    return client(clock, base=f"http://{host!s}:{port}", **options)


def test_loopback_read_timeout_is_really_applied(server: _Server, clock: FakeClock) -> None:
    c = loopback(server, clock)
    started = time.perf_counter()
    with pytest.raises(RetriableError, match="ReadTimeout"):
        c.get_json("/slow")
    elapsed = time.perf_counter() - started
    assert c.requests_made == 2
    assert 0.35 < elapsed < 1.5  # two reads cut at 0.2s, not the server's 2s stall


def test_loopback_post_read_timeout_is_uncertain(server: _Server, clock: FakeClock) -> None:
    c = loopback(server, clock)
    with pytest.raises(UncertainWrite):
        c.request("POST", "/slow", json={"amount": "1"})
    assert c.requests_made == 1


def test_loopback_dropped_connection_is_converted(server: _Server, clock: FakeClock) -> None:
    c = loopback(server, clock)
    with pytest.raises(RetriableError) as raised:
        c.get_json("/drop")
    assert type(raised.value) is RetriableError
    assert server.hits["/drop"] == 2
    with pytest.raises(UncertainWrite):
        c.request("POST", "/drop", json={})
    assert server.hits["/drop"] == 3


def test_loopback_truncated_body_is_converted(server: _Server, clock: FakeClock) -> None:
    c = loopback(server, clock)
    with pytest.raises(RetriableError):
        c.get_json("/truncated")
    with pytest.raises(UncertainWrite):
        c.request_json("POST", "/truncated", json={})
    assert c.get_json("/fine") == {"path": "/fine"}  # the session recovers


def test_loopback_refused_connection_on_a_write_is_retriable(clock: FakeClock) -> None:
    with socket.socket() as probe:  # find a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    c = client(clock, base=f"http://127.0.0.1:{port}", timeout=(0.5, 0.5), max_attempts=2)
    with pytest.raises(RetriableError, match="could not connect"):
        c.request("POST", "/payments", json={})
    assert c.requests_made == 2  # nothing was sent, so re-sending was safe


def test_a_vendor_rate_limit_class_with_a_documented_wait_pauses_the_tenant_that_long(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    """QuickBooks' 429 carries no Retry-After; its error class knows Intuit's 60 s. The whole
    tenant pauses for that, not for a default second."""
    from syncd.ratelimit import Limits, RateLimiter

    class Throttled(RateLimited):
        def __init__(self, message: str, **kwargs: Any) -> None:
            kwargs["retry_after"] = kwargs.get("retry_after") or 60.0
            super().__init__(message, **kwargs)

    rsps.add("GET", f"{BASE}/customers", status=429, body="<Fault>3001</Fault>")
    limiter = RateLimiter(Limits.per(minute=500), clock=clock)
    c = client(
        clock,
        limiter=limiter,
        vendor_codes={"3001": Throttled},
        code_of=lambda response: "3001" if "3001" in response.text else None,
        max_attempts=1,
    )
    with pytest.raises(Throttled):
        c.get_json("/customers")
    before = clock.monotonic()
    limiter.acquire()
    limiter.release()
    assert clock.monotonic() - before >= 60.0
