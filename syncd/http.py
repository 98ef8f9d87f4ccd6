"""HTTP plumbing for every connector: one ``HttpClient`` (one ``requests.Session``) per connection.

What it guarantees, so that connectors do not each get it slightly wrong:

- **Timeouts always.** Every request has a (connect, read) timeout; there is no way to pass None.
- **Errors from a table.** A response's status (and the vendor's own error code, through
  ``vendor_codes`` + ``code_of``) picks a class of ``syncd.errors`` from ``DEFAULT_STATUS_MAP``
  merged with the connector's overrides. Connectors never see a ``requests`` exception: transport
  failures become ``RetriableError`` (reads) or ``UncertainWrite`` (writes that may have been sent).
- **Retries only where safe.** Reads (GET/HEAD/OPTIONS) are retried with capped exponential
  backoff + jitter, honouring ``Retry-After``. A write is re-sent only when the caller gave an
  idempotency key or vouched for it (``idempotent=True``, e.g. after a look-up-before-create).
  Whether an error may be retried follows from what we *know*: a ``RetriableError`` means the
  vendor did not act (429, a connection never opened); an ``UncertainWrite`` means it may have,
  and is re-sent only under the caller's idempotency guarantee.
- **Credentials stay home.** Requests (and redirects) go only to the base URL's scheme+host+port
  or to ``allowed_origins``; anything else raises ``FatalError`` before a byte is sent.
- **Nothing secret is logged or raised.** Each attempt is one ``http_request`` structlog event;
  events and error messages pass through the ``Redactor``, carry the URL path without its query
  string, and never the request's headers or body.

Write semantics, spelled out (they decide whether a payment can be posted twice):

====================================  ============================================================
write outcome                         raised (retried in-process only with a key / idempotent=True)
====================================  ============================================================
4xx from the table (400, 409, 422…)   the mapped class: the vendor refused, nothing was written
429 (or a status/code the connector   ``RateLimited``: refused before processing, so it is
maps to ``RateLimited``)              retried even without a key
5xx                                   ``UncertainWrite``: a 500/502/504 may follow a commit, and a
                                      503 from a gateway proves nothing either
timeout / dropped connection /        ``UncertainWrite``: the request may have been received
truncated or non-JSON success body
connection never opened (refused,     ``RetriableError``: nothing was sent
DNS, connect timeout)
3xx                                   ``FatalError``: a write is never re-sent to another URL;
                                      a redirected write API means a wrong ``base_url``
====================================  ============================================================

A vendor code found in ``vendor_codes`` is taken as the vendor's precise word and raised as mapped,
whatever the method.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import requests
import structlog
import urllib3.exceptions
from requests.auth import AuthBase, HTTPBasicAuth
from tenacity import RetryCallState, Retrying, stop_after_attempt, wait_exponential_jitter

from syncd import __version__, metrics
from syncd.clock import Clock, SystemClock
from syncd.errors import (
    AuthError,
    ConnectorError,
    FatalError,
    RateLimited,
    RetriableError,
    SkippableError,
    UncertainWrite,
)
from syncd.ratelimit import Limiter
from syncd.redact import REDACTOR, Redactor

READ_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
DEFAULT_TIMEOUT: Final = (5.0, 60.0)  # (connect, read) seconds
MAX_REDIRECTS: Final = 5
MESSAGE_LIMIT: Final = 200  # characters of vendor message kept in an error

DEFAULT_STATUS_MAP: Mapping[int, type[ConnectorError]] = MappingProxyType(
    {
        400: FatalError,  # our request is malformed (a bug, a bad query): retrying cannot help
        401: AuthError,  # token expired or revoked: OAuth refreshes, else a person reconnects
        403: AuthError,  # missing scope/role or a disabled integration user: a person must act
        404: FatalError,  # wrong base URL or tenant; a connector looking records up handles it
        408: RetriableError,  # the server gave up waiting for our request
        409: FatalError,  # conflicting state; vendors that mean "duplicate key" override this
        # 422: the vendor understood the request and rejected its *content*, i.e. the record we
        # sent (this is where 422 appears in practice: writes). That is one bad record:
        # quarantine it and go on. A vendor that answers 422 to a malformed query overrides it.
        422: SkippableError,
        429: RateLimited,
        500: RetriableError,
        502: RetriableError,
        503: RetriableError,
        504: RetriableError,
        # any other 5xx: RetriableError; any other 4xx (and an unfollowed 3xx): FatalError
    }
)


def classify_status(
    status: int, status_map: Mapping[int, type[ConnectorError]] = DEFAULT_STATUS_MAP
) -> type[ConnectorError]:
    """The error class for an HTTP status: the table's entry, else by family."""
    if status in status_map:
        return status_map[status]
    return RetriableError if 500 <= status <= 599 else FatalError


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date (RFC 9110).

    Returns None when absent or unparseable, and never a negative number (a date in the past means
    "now").
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000" parses naive; HTTP-dates are GMT
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - now).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def json_or_none(response: requests.Response) -> Any:
    """The response's JSON body, or None when there is none or it is not JSON."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


_MESSAGE_KEYS: Final = ("message", "error_description", "error", "detail", "title", "Message")


def default_message_of(response: requests.Response) -> str | None:
    """A vendor's human message from common JSON error shapes, else the start of the text body."""
    body = json_or_none(response)
    if isinstance(body, dict):
        for key in _MESSAGE_KEYS:
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message")
            if isinstance(value, str) and value.strip():
                return value
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            first = errors[0]
            if isinstance(first, dict):
                first = first.get("message")
            if isinstance(first, str):
                return first
        return None
    if body is None and response.content:
        return response.text
    return None


_SENSITIVE_HEADER = re.compile(r"auth|token|key|secret|password|cookie|code", re.IGNORECASE)
_Origin = tuple[str, str, int]


def _origin(url: str) -> _Origin:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


@dataclass(frozen=True)
class _Call:
    """One logical request, as the caller asked for it."""

    method: str
    url: str
    params: Mapping[str, Any] | None
    json: Any
    data: Any
    headers: Mapping[str, str] | None
    timeout: tuple[float, float]
    parse_json: bool

    @property
    def write(self) -> bool:
        return self.method not in READ_METHODS


@dataclass(frozen=True)
class _Result:
    response: requests.Response
    body: Any


_log = structlog.get_logger("syncd.http")


class HttpClient:
    """One connection's HTTP session: timeouts, retries, error table, rate limit, redaction.

    ``status_map`` entries override ``DEFAULT_STATUS_MAP``. ``vendor_codes`` maps the vendor's own
    error codes (what ``code_of(response)`` returns, e.g. QuickBooks ``"5010"``) to a class and wins
    over the status. ``message_of`` extracts the vendor's message for errors. The idempotency key
    of a write goes in ``idempotency_header`` or ``idempotency_param``, whichever the vendor uses.
    """

    def __init__(
        self,
        base_url: str,
        *,
        connection: str,
        vendor: str,
        status_map: Mapping[int, type[ConnectorError]] | None = None,
        vendor_codes: Mapping[str, type[ConnectorError]] | None = None,
        code_of: Callable[[requests.Response], str | None] | None = None,
        message_of: Callable[[requests.Response], str | None] = default_message_of,
        limiter: Limiter | None = None,
        clock: Clock | None = None,
        redactor: Redactor = REDACTOR,
        headers: Mapping[str, str] | None = None,
        auth: AuthBase | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        max_attempts: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        max_retry_after: float = 120.0,
        idempotency_header: str | None = None,
        idempotency_param: str | None = None,
        allowed_origins: Iterable[str] = (),
    ) -> None:
        if urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).hostname:
            raise ValueError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.base_url = base_url.rstrip("/")
        self.connection = connection
        self.vendor = vendor
        self.status_map: Mapping[int, type[ConnectorError]] = {
            **DEFAULT_STATUS_MAP,
            **(status_map or {}),
        }
        self.vendor_codes: Mapping[str, type[ConnectorError]] = dict(vendor_codes or {})
        self.code_of = code_of
        self.message_of = message_of
        self.limiter = limiter
        self.clock: Clock = clock or SystemClock()
        self.redactor = redactor
        self.timeout = self._check_timeout(timeout)
        self.max_attempts = max_attempts
        self.max_retry_after = max_retry_after
        self.idempotency_header = idempotency_header
        self.idempotency_param = idempotency_param
        self._origins = {_origin(self.base_url), *(_origin(o) for o in allowed_origins)}
        self._backoff = wait_exponential_jitter(multiplier=backoff, max=max_backoff, jitter=backoff)
        self._lock = threading.Lock()
        self.requests_made = 0  # every attempt, retries and redirect hops included

        self._session = requests.Session()
        self._session.headers["User-Agent"] = f"syncd/{__version__}"
        self._session.headers.update(headers or {})
        self._session.auth = auth
        # The config loader registers secrets it resolved; register what we were handed as well,
        # so a credential built at run time cannot slip through.
        for name, value in (headers or {}).items():
            if _SENSITIVE_HEADER.search(name):
                self.redactor.add(value, value.partition(" ")[2])
        if isinstance(auth, HTTPBasicAuth):
            user, password = str(auth.username), str(auth.password)
            self.redactor.add(password, f"{user}:{password}")

    # -- public API ------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        idempotent: bool = False,
        timeout: tuple[float, float] | None = None,
    ) -> requests.Response:
        """Send ``method path``; return the response (< 400) or raise a ``ConnectorError``.

        ``path`` is relative to ``base_url`` or an absolute URL on an allowed origin (a next-page
        link). See the module docstring for when a write is retried.
        """
        return self._execute(
            method, path, params, json, data, headers, idempotency_key, idempotent, timeout, False
        ).response

    def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        idempotent: bool = False,
        timeout: tuple[float, float] | None = None,
    ) -> Any:
        """Like ``request`` but return the parsed JSON body (None for 204/205).

        A body that does not parse (truncated) counts as a transport failure: retried for reads,
        ``UncertainWrite`` for writes, since the vendor did answer something.
        """
        return self._execute(
            method, path, params, json, data, headers, idempotency_key, idempotent, timeout, True
        ).body

    def get_json(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> Any:
        """GET ``path`` and return its parsed JSON body."""
        return self.request_json("GET", path, params=params, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the retry loop --------------------------------------------------------------------------

    def _execute(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json: Any,
        data: Any,
        headers: Mapping[str, str] | None,
        idempotency_key: str | None,
        idempotent: bool,
        timeout: tuple[float, float] | None,
        parse_json: bool,
    ) -> _Result:
        method = method.upper()
        may_resend = method in READ_METHODS or idempotent
        if idempotency_key is not None:
            headers, params = self._with_key(idempotency_key, headers, params)
            may_resend = True
        call = _Call(
            method=method,
            url=self._url(path),
            params=params,
            json=json,
            data=data,
            headers=headers,
            timeout=self.timeout if timeout is None else self._check_timeout(timeout),
            parse_json=parse_json,
        )
        self._check_origin(call.url, method)

        def should_retry(state: RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, RateLimited) and (exc.retry_after or 0.0) > self.max_retry_after:
                return False  # too long to hold a worker; the scheduler retries later
            if isinstance(exc, RetriableError):
                return True  # the vendor did not act: safe for any method
            return may_resend and isinstance(exc, UncertainWrite)

        retrying = Retrying(
            sleep=self.clock.sleep,
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=should_retry,
            before_sleep=self._count_rate_limit_wait,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                return self._attempt(call, attempt.retry_state.attempt_number)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    def _count_rate_limit_wait(self, state: RetryCallState) -> None:
        """Metrics: a sleep after a 429 is a wait the vendor imposed (called only before a real
        sleep, unlike ``_wait``, which tenacity also asks on the last attempt)."""
        if state.outcome is not None and isinstance(state.outcome.exception(), RateLimited):
            metrics.observe_rate_limit_wait(self.vendor, state.upcoming_sleep, source="server")

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return exc.retry_after
        return self._backoff(state)

    def _attempt(self, call: _Call, attempt: int) -> _Result:
        url, params = call.url, call.params
        for _hop in range(MAX_REDIRECTS + 1):
            response = self._send(call, url, params, attempt)
            location = response.headers.get("Location")
            if response.status_code not in REDIRECT_STATUSES or not location:
                break
            target = urljoin(url, location)
            if call.write:
                raise FatalError(
                    self._safe(
                        f"{self.vendor} {call.method} {urlsplit(url).path} -> "
                        f"{response.status_code} redirected to {urlsplit(target).hostname}"
                        f"{urlsplit(target).path}: writes are never re-sent elsewhere; "
                        "check base_url"
                    ),
                    status=response.status_code,
                )
            self._check_origin(target, call.method)
            url, params = target, None  # the Location carries its own query
        else:
            raise FatalError(
                self._safe(
                    f"{self.vendor} {call.method} {urlsplit(call.url).path}: too many redirects"
                )
            )
        if response.status_code >= 400:
            raise self._http_error(response, call, url)
        body = self._parse(response, call, url) if call.parse_json else None
        return _Result(response, body)

    def _send(
        self, call: _Call, url: str, params: Mapping[str, Any] | None, attempt: int
    ) -> requests.Response:
        if self.limiter is not None:
            metrics.observe_rate_limit_wait(self.vendor, self.limiter.acquire())
        started = self.clock.monotonic()  # after any rate-limit wait: duration is the vendor's
        status: int | None = None
        failure: str | None = None
        try:
            with self._lock:
                self.requests_made += 1
            response = self._session.request(
                call.method,
                url,
                params=params,
                json=call.json,
                data=call.data,
                headers=call.headers,
                timeout=call.timeout,
                allow_redirects=False,  # followed by hand, so the origin check sees every hop
            )
            status = response.status_code
            return response
        except requests.RequestException as exc:
            failure = type(exc).__name__
            # ``from None``: requests' messages embed the full URL, query string and all.
            raise self._transport_error(exc, call, url) from None
        finally:
            if self.limiter is not None:
                self.limiter.release()
            self._log_request(call.method, url, status, started, attempt, failure)

    # -- classification --------------------------------------------------------------------------

    def _http_error(self, response: requests.Response, call: _Call, url: str) -> ConnectorError:
        status = response.status_code
        code = self._hook(self.code_of, response)
        cls = self.vendor_codes.get(code) if code is not None else None
        from_vendor_code = cls is not None
        if cls is None:
            cls = classify_status(status, self.status_map)
        retry_after = parse_retry_after(response.headers.get("Retry-After"), self.clock.now())

        detail = self._hook(self.message_of, response)
        message = f"{self.vendor} {call.method} {urlsplit(url).path} -> {status}"
        if code is not None:
            message += f" [{code}]"
        if detail:
            message += f": {' '.join(detail.split())[:MESSAGE_LIMIT]}"
        message = self._safe(message)

        if (
            call.write
            and not from_vendor_code
            and issubclass(cls, RetriableError)
            and not issubclass(cls, RateLimited)
        ):
            return UncertainWrite(
                f"{message} (the write may have been applied)", status=status, code=code
            )
        if issubclass(cls, RateLimited) or (
            issubclass(cls, RetriableError) and retry_after is not None
        ):
            limited = cls if issubclass(cls, RateLimited) else RateLimited
            error = limited(message, retry_after=retry_after, status=status, code=code)
            if self.limiter is not None:
                # The error's own wait wins: a vendor class may know a documented wait that the
                # response does not carry (QuickBooks' 429 has no Retry-After; Intuit says 60 s).
                wait = error.retry_after if isinstance(error, RateLimited) else retry_after
                pause = wait if wait is not None else self._backoff.multiplier
                self.limiter.pause(min(pause, self.max_retry_after))
            return error
        return cls(message, status=status, code=code)

    def _transport_error(
        self, exc: requests.RequestException, call: _Call, url: str
    ) -> ConnectorError:
        where = f"{self.vendor} {call.method} {urlsplit(url).path}"
        kind = type(exc).__name__
        if isinstance(exc, requests.ConnectTimeout) or _never_connected(exc):
            return RetriableError(self._safe(f"{where}: could not connect ({kind})"))
        if isinstance(exc, _NO_COMPLETE_ANSWER):
            if call.write:
                return UncertainWrite(
                    self._safe(f"{where}: no complete answer ({kind}); the write may have landed")
                )
            return RetriableError(self._safe(f"{where}: no complete answer ({kind})"))
        # InvalidURL, InvalidHeader, MissingSchema…: our bug or our config, not the network.
        return FatalError(self._safe(f"{where}: request could not be built ({kind})"))

    def _parse(self, response: requests.Response, call: _Call, url: str) -> Any:
        if response.status_code in (204, 205):
            return None
        try:
            return response.json()
        except ValueError:
            where = f"{self.vendor} {call.method} {urlsplit(url).path} -> {response.status_code}"
            if call.write:
                raise UncertainWrite(
                    self._safe(f"{where}: answer is not valid JSON; the write may have landed"),
                    status=response.status_code,
                ) from None
            raise RetriableError(
                self._safe(f"{where}: body is not valid JSON (truncated?)"),
                status=response.status_code,
            ) from None

    def _hook(
        self, hook: Callable[[requests.Response], str | None] | None, response: requests.Response
    ) -> str | None:
        """Run ``code_of``/``message_of``; a surprising body must not hide the HTTP error."""
        if hook is None:
            return None
        try:
            return hook(response)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            _log.warning(
                "http_error_hook_failed",
                hook=getattr(hook, "__name__", repr(hook)),
                error=type(exc).__name__,
                connection=self.connection,
                vendor=self.vendor,
            )
            return None

    # -- URLs, keys, logging ---------------------------------------------------------------------

    def _url(self, path: str) -> str:
        if urlsplit(path).scheme:
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def _check_origin(self, url: str, method: str) -> None:
        try:
            allowed = _origin(url) in self._origins
        except ValueError:  # an unparseable port in a vendor's next link
            allowed = False
        if not allowed:
            parts = urlsplit(url)
            raise FatalError(
                self._safe(
                    f"{self.vendor} {method}: refusing to send credentials to host "
                    f"{parts.hostname!r} ({parts.scheme}://{parts.netloc}); this connection only "
                    f"talks to {urlsplit(self.base_url).netloc}"
                )
            )

    def _with_key(
        self, key: str, headers: Mapping[str, str] | None, params: Mapping[str, Any] | None
    ) -> tuple[Mapping[str, str] | None, Mapping[str, Any] | None]:
        if self.idempotency_header:
            return {**(headers or {}), self.idempotency_header: key}, params
        if self.idempotency_param:
            return headers, {**(params or {}), self.idempotency_param: key}
        # A key we cannot send must not license re-sending the write.
        raise ValueError(
            f"{self.vendor}: idempotency_key given but the client has no idempotency_header "
            "or idempotency_param"
        )

    @staticmethod
    def _check_timeout(timeout: tuple[float, float]) -> tuple[float, float]:
        connect, read = timeout
        if not (connect > 0 and read > 0):
            raise ValueError(f"timeouts must be positive (connect, read) seconds, got {timeout}")
        return (float(connect), float(read))

    def _safe(self, text: str) -> str:
        return str(self.redactor.redact(text))

    def _log_request(
        self,
        method: str,
        url: str,
        status: int | None,
        started: float,
        attempt: int,
        failure: str | None,
    ) -> None:
        fields = self.redactor.redact(
            {
                "method": method,
                "path": urlsplit(url).path,  # never the query string
                "status": status,
                "duration_ms": round((self.clock.monotonic() - started) * 1000, 1),
                "attempt": attempt,
                "connection": self.connection,
                "vendor": self.vendor,
            }
        )
        if failure is not None:
            fields["error"] = failure
        if failure is not None or (status is not None and status >= 400):
            _log.warning("http_request", **fields)
        else:
            _log.info("http_request", **fields)
        metrics.observe_http(self.vendor, status)


# Failures after the request may have been received: the answer is missing or cut short.
_NO_COMPLETE_ANSWER: Final = (
    requests.Timeout,
    requests.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def _never_connected(exc: requests.RequestException) -> bool:
    """True when the connection was never opened (refused, DNS): the request was not sent."""
    if not isinstance(exc, requests.ConnectionError) or isinstance(
        exc, requests.exceptions.SSLError
    ):
        return False
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, urllib3.exceptions.MaxRetryError):
        reason = reason.reason
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


__all__ = [
    "DEFAULT_STATUS_MAP",
    "DEFAULT_TIMEOUT",
    "READ_METHODS",
    "HttpClient",
    "classify_status",
    "default_message_of",
    "json_or_none",
    "parse_retry_after",
]
