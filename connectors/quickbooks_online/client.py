"""The QuickBooks Online Accounting API v3, as syncd uses it: it fetches and posts, and knows
nothing of canonical records (the connector and its mapping do).

Plain ``requests`` through ``syncd.http.HttpClient``, not python-quickbooks: its ``QuickBooks``
client refreshes the token in its constructor and has no refresh callback (research/accounting-
apis.md 1.12), its objects save themselves (active record) and it classifies 5010 and 6xxx as a
plain ``QuickbooksException``. Here one session per connection gets syncd's timeouts, error table,
safe retries and rate limits. Vendor facts and their sources (research section 1):

- **Requests** (1.2): everything lives under ``/v3/company/{realmId}/``; ``Accept:
  application/json``; ``minorversion`` on every call (75: Intuit retired 1-74 on 1 Aug 2025).
- **Auth** (1.1, 1.9): ``Authorization: Bearer`` from the token vault (``auth.py``). A 401 (fault
  3200, e.g. a token revoked early) is answered by one forced refresh and one retry; a second 401
  is an ``AuthError``. Re-sending after a 401 is safe for a write too: Intuit checks the token
  before it reads the body.
- **Queries** (1.3): ``GET /query?query=…`` (tap-quickbooks does the same), so that a read is a
  read for the retry rules; statements are built by ``syncd.query.qbo_select``.
- **CDC** (1.4): ``GET /cdc?entities=…&changedSince=…``, at most 30 days back and 1000 objects.
- **Idempotent writes** (1.7): ``?requestid=`` (≤ 50 characters; a batch's ≤ 36) makes Intuit
  answer a repeated request with the original response, so ``HttpClient`` may re-send a create
  whose answer was lost.
- **Batch** (1.8): ``POST /batch`` with ≤ 30 ``BatchItemRequest`` items; per-item faults, HTTP 200.
- **Rate limits** (1.10): 500 requests a minute and 10 a second per realm (``LIMITS``, shared by
  every job of the realm through ``get_limiter``), 40 batches a minute per realm and app
  (``BATCH_LIMITS``), each window 0.2 s longer than Intuit's (``METER_MARGIN``) so that network
  jitter cannot make Intuit count one more than we did. A 429 pauses the realm; see
  ``errors.py`` for the 60 s wait.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote

import structlog

from connectors.quickbooks_online.auth import TokenSource
from connectors.quickbooks_online.errors import (
    STATUS_MAP,
    VENDOR_CODES,
    WRITE_REFUSALS,
    code_of,
    message_of,
)
from syncd.clock import Clock
from syncd.errors import AuthError, ConnectorError, FatalError, UncertainWrite
from syncd.http import HttpClient
from syncd.ratelimit import Limiter, Limits
from syncd.redact import REDACTOR, Redactor

MINOR_VERSION: Final = 75
MAX_RESULTS: Final = 1000  # MAXRESULTS ceiling (research 1.3)
MAX_REQUEST_ID: Final = 50
MAX_BATCH_REQUEST_ID: Final = 36
MAX_BATCH_ITEMS: Final = 30  # "recommended maximum … is 30" (limits page); python-quickbooks too
CDC_MAX_DAYS: Final = 30
CDC_MAX_OBJECTS: Final = 1000
# Intuit meters arrivals, we count grants: a request granted just as the oldest one leaves our
# window can reach Intuit a few milliseconds sooner, relative to that one, than it did, which
# makes an 11th in Intuit's second, a 429 and a 60 s pause for the realm (bench/payments.py met
# six in 40 payments sent at exactly 10 a second). Each window is a little longer than Intuit's.
METER_MARGIN: Final = 0.2  # seconds
LIMITS: Final = Limits(
    windows=((10, 1.0 + METER_MARGIN), (500, 60.0 + METER_MARGIN)), max_concurrency=10
)
BATCH_LIMITS: Final = Limits(windows=((40, 60.0 + METER_MARGIN),))

_log = structlog.get_logger("connectors.quickbooks_online")


class QuickBooksClient:
    """One company's (realm's) API: queries, CDC, reads, idempotent creates and batches."""

    def __init__(
        self,
        api_root: str,
        realm_id: str,
        tokens: TokenSource,
        *,
        connection: str,
        clock: Clock | None = None,
        minorversion: int = MINOR_VERSION,
        limiter: Limiter | None = None,
        batch_limiter: Limiter | None = None,
        redactor: Redactor = REDACTOR,
        max_attempts: int = 5,
        backoff: float = 1.0,
    ) -> None:
        self.realm_id = realm_id
        self.connection = connection
        self.minorversion = minorversion
        self._tokens = tokens
        self._company = f"v3/company/{quote(realm_id, safe='')}"
        self._batch_limiter = batch_limiter
        self.server_time: dt.datetime | None = None  # Intuit's clock, from the last answer
        self._http = HttpClient(
            api_root,
            connection=connection,
            vendor="quickbooks_online",
            status_map=STATUS_MAP,
            vendor_codes=VENDOR_CODES,
            code_of=code_of,
            message_of=message_of,
            limiter=limiter,
            clock=clock,
            redactor=redactor,
            headers={"Accept": "application/json"},
            max_attempts=max_attempts,
            backoff=backoff,
            idempotency_param="requestid",
        )

    @property
    def requests_made(self) -> int:
        """Every HTTP attempt to the API (retries included); token refreshes are the vault's."""
        return self._http.requests_made

    def close(self) -> None:
        self._http.close()

    # -- reads -----------------------------------------------------------------------------------

    def query(self, statement: str) -> dict[str, Any]:
        """The ``QueryResponse`` of a statement (an empty result is ``{}``, research 1.3)."""
        body = self._send("GET", "query", params={"query": statement})
        answer = body.get("QueryResponse") if isinstance(body, dict) else None
        if not isinstance(answer, dict):
            raise FatalError("quickbooks_online: a query answer without QueryResponse")
        return answer

    def query_rows(self, entity: str, statement: str) -> list[dict[str, Any]]:
        """The ``entity`` rows a ``SELECT`` returned (none when the key is absent)."""
        return _rows(self.query(statement).get(entity, []), f"query of {entity}")

    def changed_since(
        self, entities: Sequence[str], since: dt.datetime
    ) -> dict[str, list[dict[str, Any]]]:
        """CDC: every object of ``entities`` changed at or after ``since``, tombstones included
        (``"status": "Deleted"`` with only ``Id`` and ``MetaData``)."""
        params = {
            "entities": ",".join(entities),
            "changedSince": since.astimezone(dt.UTC).isoformat(timespec="seconds"),
        }
        body = self._send("GET", "cdc", params=params)
        found: dict[str, list[dict[str, Any]]] = {name: [] for name in entities}
        blocks = body.get("CDCResponse") if isinstance(body, dict) else None
        for block in blocks if isinstance(blocks, list) else []:
            answers = block.get("QueryResponse") if isinstance(block, dict) else None
            for answer in answers if isinstance(answers, list) else []:
                for name in entities:
                    if isinstance(answer, dict) and name in answer:
                        found[name] += _rows(answer[name], f"CDC of {name}")
        return found

    def read(self, entity: str, entity_id: str) -> dict[str, Any]:
        body = self._send("GET", f"{entity.lower()}/{quote(entity_id, safe='')}")
        return _entity(body, entity, "GET")

    # -- writes ----------------------------------------------------------------------------------

    def create(self, entity: str, body: Mapping[str, Any], *, request_id: str) -> dict[str, Any]:
        """``POST /{entity}`` with ``requestid``: re-sent safely, and a refusal raised as the
        error ``WRITE_REFUSALS`` says (nothing was written)."""
        check_request_id(request_id, MAX_REQUEST_ID)
        try:
            answer = self._send("POST", entity.lower(), json=dict(body), request_id=request_id)
        except ConnectorError as exc:
            raise refusal(exc) from None
        return _entity(answer, entity, "POST")

    def batch(self, items: Sequence[Mapping[str, Any]], *, request_id: str) -> list[dict[str, Any]]:
        """``POST /batch``: the ``BatchItemResponse`` list, per-item faults left in place.

        The batch budget (40 a minute) is spent once per call; a retry inside ``HttpClient``
        spends only the realm's budget.
        """
        if not 1 <= len(items) <= MAX_BATCH_ITEMS:
            raise ValueError(f"a batch holds 1..{MAX_BATCH_ITEMS} items, got {len(items)}")
        check_request_id(request_id, MAX_BATCH_REQUEST_ID)
        payload = {"BatchItemRequest": [dict(item) for item in items]}
        if self._batch_limiter is not None:
            self._batch_limiter.acquire()
        try:
            answer = self._send("POST", "batch", json=payload, request_id=request_id)
        except ConnectorError as exc:
            raise refusal(exc) from None
        finally:
            if self._batch_limiter is not None:
                self._batch_limiter.release()
        found = answer.get("BatchItemResponse") if isinstance(answer, dict) else None
        if not isinstance(found, list):
            raise UncertainWrite("quickbooks_online POST batch: answer without BatchItemResponse")
        return [item for item in found if isinstance(item, dict)]

    # -- the one request path --------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        request_id: str | None = None,
    ) -> Any:
        url = f"{self._company}/{path}"
        query = {**(params or {}), "minorversion": self.minorversion}
        token = self._tokens.access_token()
        for attempt in (1, 2):
            try:
                body = self._http.request_json(
                    method,
                    url,
                    params=query,
                    json=json,
                    headers={"Authorization": f"Bearer {token}"},
                    idempotency_key=request_id,
                )
            except AuthError as exc:
                if exc.status != 401:
                    raise
                if attempt == 2:
                    raise AuthError(
                        f"{exc}; a freshly refreshed token was refused too: run "
                        f"`syncd auth {self.connection}` to reconnect",
                        status=401,
                        code=exc.code,
                    ) from None
                _log.info("quickbooks_token_rejected", connection=self.connection)
                token = self._tokens.access_token(rejected=token)
            else:
                self.server_time = _instant(body) or self.server_time
                return body
        raise AssertionError("unreachable")  # pragma: no cover


# -- helpers (pure: tested on their own) ---------------------------------------------------------


def refusal(exc: ConnectorError) -> ConnectorError:
    """A write's 400 as ``WRITE_REFUSALS`` classes it; any other error unchanged."""
    cls = WRITE_REFUSALS.get(exc.code or "")
    if cls is None or exc.status != 400:
        return exc
    return cls(str(exc), status=exc.status, code=exc.code)


def request_id(key: str, suffix: str = "", limit: int = MAX_REQUEST_ID) -> str:
    """A ``requestid`` from our idempotency key: the key itself when it fits, else a digest.

    Deterministic, so a retry after a crash sends the same id and Intuit replays its answer.
    """
    text = key + suffix
    if len(text) <= limit and text.isascii() and text.isprintable():
        return text
    return "sd-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[: limit - 3]


def check_request_id(value: str, limit: int) -> None:
    if not 1 <= len(value) <= limit:
        raise ValueError(f"requestid must be 1..{limit} characters, got {len(value)}")


def _instant(body: Any) -> dt.datetime | None:
    """The answer's ``time`` (``2015-08-10T11:44:02.957-07:00``, research 1.2), in UTC."""
    stamp = body.get("time") if isinstance(body, dict) else None
    try:
        parsed = dt.datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
    except ValueError:
        return None
    return parsed.astimezone(dt.UTC) if parsed is not None and parsed.tzinfo else None


def _rows(value: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise FatalError(f"quickbooks_online: {what} did not answer a list of objects")
    return value


def _entity(body: Any, entity: str, method: str) -> dict[str, Any]:
    found = body.get(entity) if isinstance(body, dict) else None
    if not isinstance(found, dict) or "Id" not in found:
        if method == "GET":
            raise FatalError(f"quickbooks_online GET {entity}: answer without the {entity}")
        raise UncertainWrite(f"quickbooks_online POST {entity}: answer without the {entity}")
    return found


__all__ = [
    "BATCH_LIMITS",
    "CDC_MAX_DAYS",
    "CDC_MAX_OBJECTS",
    "LIMITS",
    "MAX_BATCH_ITEMS",
    "MAX_BATCH_REQUEST_ID",
    "MAX_REQUEST_ID",
    "MAX_RESULTS",
    "METER_MARGIN",
    "MINOR_VERSION",
    "QuickBooksClient",
    "check_request_id",
    "refusal",
    "request_id",
]
