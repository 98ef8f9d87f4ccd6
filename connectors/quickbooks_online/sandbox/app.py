"""``QuickBooksSandbox``: the QBO Accounting API v3 and Intuit's OAuth server on loopback.

Routes (research §1.1-§1.8; the API root is the server root, so ``base_url + "/v3"`` is what
python-quickbooks calls ``api_url_v3``):

- ``GET /.well-known/openid_configuration`` (also ``…/openid_sandbox_configuration``): discovery
- ``GET /connect/oauth2`` (instant consent), ``POST /oauth2/v1/tokens/bearer``,
  ``POST /oauth2/v1/tokens/revoke``, ``GET /op/v1/jwks``, ``GET /v1/openid_connect/userinfo``
- ``GET|POST /v3/company/{realm}/query`` (``?query=`` or an ``application/text`` body)
- ``GET /v3/company/{realm}/cdc?entities=…&changedSince=…``
- ``POST /v3/company/{realm}/batch``
- ``GET /v3/company/{realm}/{entity}/{id}``; ``POST /v3/company/{realm}/{entity}`` (create or
  update; ``?operation=delete``, ``?operation=void``, ``?operation=update&include=void``)

Every ``/v3`` request passes, in order: the bearer check (401 lower-case ``fault`` 3200, 403
3100 for another realm — research §1.9), the throttle (429 XML, §1.10), ``minorversion`` (≥ 75,
§1.2) and the ``requestid`` replay cache (§1.7). Entities served: Customer, Invoice, Payment,
Deposit (read/write); Account, PaymentMethod, Item, CompanyInfo (read-only here).
Responses are always JSON (QBO answers XML without ``Accept: application/json``; not emulated).
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import random
import threading
from collections import OrderedDict
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from connectors.quickbooks_online.sandbox.common import (
    PACIFIC_DAYLIGHT,
    QBOFault,
    Row,
    forbidden,
    local_millis,
    parse_instant,
    required,
    throttled,
    unauthorized,
)
from connectors.quickbooks_online.sandbox.entities import (
    SCHEMAS,
    UNDEPOSITED_FUNDS,
    WRITABLE,
    Company,
)
from connectors.quickbooks_online.sandbox.oauth import TokenAuthority
from connectors.quickbooks_online.sandbox.query import Query, parse
from connectors.quickbooks_online.sandbox.seed import card_fee, seed_company
from connectors.quickbooks_online.sandbox.throttle import Throttle
from connectors.quickbooks_online.sandbox.webhooks import (
    SIGNATURE_HEADER,
    ChangeEvent,
    cloudevents_payload,
    encode,
    legacy_payload,
    sign,
)
from syncd.clock import Clock, SystemClock
from syncd.sandbox.faults import Fault, FaultRule
from syncd.sandbox.kit import Sandbox, toml_table
from syncd.sandbox.routing import Handler, HTTPError, Request, Response
from syncd.sandbox.server import format_seconds

DEFAULT_REALM_ID = "9341453050298464"  # sandbox realms are 16 digits (any string works)
DEFAULT_CLIENT_ID = "ABsandboxClientId0000000000000000000000000000000"
DEFAULT_CLIENT_SECRET = "sandboxClientSecret0000000000000000000000"  # noqa: S105 - fake
DEFAULT_VERIFIER_TOKEN = "sandbox-verifier-token-00000000"  # noqa: S105 - fake
MIN_MINOR_VERSION = 75  # Intuit deprecated 1-74 (blogs.intuit.com 2025/01/21; research §1.2)
MAX_REQUEST_ID = 50  # research §1.7
MAX_BATCH_REQUEST_ID = 36  # research §1.7
MAX_BATCH_ID = 10  # each bId when the batch carries a requestid (research §1.7)
MAX_BATCH_ITEMS = 30  # research §1.8 (limits page: "recommended maximum … is 30")
CDC_MAX_DAYS = 30  # research §1.4
CDC_MAX_OBJECTS = 1000  # research §1.4
URL_ENTITIES = {name.lower(): name for name in SCHEMAS}

UNVERIFIED: tuple[str, ...] = (
    "minorversion below 75 answers 400 (Intuit may instead serve 75 silently); fault code 2010",
    "requestid: replays are kept forever (LRU of 50 000 per realm); only responses produced by"
    " the API (2xx and business faults) are stored, not 401/403/429; >50 chars answers 2050",
    "batch requestid ≤ 36 and bId ≤ 10 chars enforced only when the batch URL has a requestid;"
    " more than 30 items answers 400 with code 6000",
    "overpayment (payment line above the invoice balance), applied amounts above TotalAmt,"
    " linking another customer's invoice: 6000 business faults with our wording",
    "void or delete of an invoice with payments applied is refused (6000); a voided invoice or"
    " payment cannot be edited (6000)",
    "applying or unapplying a payment bumps the invoice's SyncToken and LastUpdatedTime;"
    " Customer.Balance follows open invoices without a SyncToken/LastUpdatedTime bump",
    "voided payment: TotalAmt/UnappliedAmt/line amounts 0, PrivateNote 'Voided', links kept on"
    " the payment and removed from the invoice",
    "deposit rules: a linked payment must sit in Undeposited Funds, be in no other deposit, and"
    " its line amount must equal the payment's TotalAmt; TxnLineId answered as '0'",
    "6540/6140/610/2020 detail texts (codes are Intuit's, wording partly ours)",
    "default DepositToAccountRef is Undeposited Funds",
    "query: string comparisons and LIKE are case-insensitive; '\\%' is a literal percent;"
    " naive datetimes are company-local; default order is by Id; STARTPOSITION 0 means 1",
    "query: which properties are filterable (see entities.SCHEMAS; Payment.PrivateNote is not);"
    " 4001 QueryValidationError wording; OR answers 4000 QueryParserError",
    "CDC: the 1000-object cap is filled entity by entity in the order asked, oldest first;"
    " changedSince older than 30 days answers 400 (4001); unknown entities answer 400",
    "delete answers {Entity:{Id,status:'Deleted',domain}} (third-party mocks only)",
    "429 from injected faults carries Retry-After; the natural throttle sends none"
    " (Intuit documents no Retry-After); throttle windows slide",
    "401 details 'Bearer token missing' / 'Token revoked'; WWW-Authenticate header",
    "DisplayName uniqueness is case-insensitive and includes inactive customers",
    "CloudEvents webhook 'source' value; intuit-signature on CloudEvents deliveries",
    "authorization codes live 10 minutes and are single-use; invalid_client answers 401",
    "Customer/Account/etc. delete answers 500 Unsupported Operation; unknown URL entities too",
    "a reference to an inactive customer answers 610 (invoice and payment writes)",
    "an invoice with payments cannot change customer or drop below the amount applied (6000)",
    "CurrencyRef other than USD answers 6000 (multicurrency off); DisplayName is derived from"
    " Given/Family/Company name when absent; a sales line without ItemRef uses item 'Services';"
    " DueDate defaults to TxnDate + 30 days",
    "malformed JSON answers 2010; minorversion and requestid faults are not replayed",
    "refresh without rotation: the same token comes back with x_refresh_token_expires_in"
    " counting down; within the grace window a superseded token gets the current one",
)


class QuickBooksSandbox(Sandbox):
    """A seeded QBO company (realm) plus its OAuth server. Defaults: 40 customers, 120 invoices.

    Credentials: ``client_id``/``client_secret`` (Basic auth at the token endpoint), the realm
    ``realm_id``, and a seeded refresh token (``refresh_token``, rotated on every refresh by
    default). ``clock`` stamps ``MetaData`` and expires tokens (a ``syncd.testing.FakeClock`` in
    tests); the throttle runs on ``time.monotonic`` so a frozen clock cannot freeze it.
    ``throttle=True`` enforces 10 requests/s and 500/min per realm (40 batches/min): a client
    that ignores Intuit's limits meets 429s here as in production.

    Knobs: ``customers``/``invoices`` (seed sizes; 100 000 invoices take ~15 s and ~600 MB),
    ``tz`` (company zone of every timestamp, default ``-07:00``), ``rotate_refresh_token_after``
    (seconds; 0 = every refresh, None = never), ``refresh_token_grace`` (seconds a superseded
    refresh token still works; Intuit's strict reading is 0), ``access_token_ttl``,
    ``per_second``/``per_minute``/``batch_per_minute``/``monotonic`` (throttle),
    ``reject_old_minorversion``, ``duplicate_doc_number_error`` (6140, Intuit's "warn on
    duplicate numbers" preference), ``requestid_cache_size``.
    """

    name = "quickbooks_online"

    def __init__(
        self,
        *,
        seed: int = 0,
        customers: int = 40,
        invoices: int = 120,
        realm_id: str = DEFAULT_REALM_ID,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        verifier_token: str = DEFAULT_VERIFIER_TOKEN,
        clock: Clock | None = None,
        tz: dt.tzinfo = PACIFIC_DAYLIGHT,
        rotate_refresh_token_after: float | None = 0.0,
        refresh_token_grace: float = 0.0,
        access_token_ttl: int = 3600,
        throttle: bool = True,
        per_second: int = 10,
        per_minute: int = 500,
        batch_per_minute: int = 40,
        monotonic: Callable[[], float] | None = None,
        reject_old_minorversion: bool = True,
        duplicate_doc_number_error: bool = True,
        requestid_cache_size: int = 50_000,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(seed=seed, host=host, port=port)
        self.realm_id = realm_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.verifier_token = verifier_token
        self.clock: Clock = clock or SystemClock()
        self.tz = tz
        self.reject_old_minorversion = reject_old_minorversion
        self.throttle_enabled = throttle
        self.throttle = Throttle(
            per_second=per_second,
            per_minute=per_minute,
            batch_per_minute=batch_per_minute,
            **({"monotonic": monotonic} if monotonic else {}),
        )
        self.requestid_cache_size = requestid_cache_size
        self._lock = threading.RLock()
        self._replies: OrderedDict[tuple[str, str], Response] = OrderedDict()
        self._tid = itertools.count(1)  # intuit_tid response header (QuickBooks-V3-DotNET-SDK#111)
        self._churn_rng = random.Random(seed + 1)
        self.auth = TokenAuthority(
            client_id=client_id,
            client_secret=client_secret,
            realm_id=realm_id,
            now=self._now,
            seed=seed,
            rotate_after=rotate_refresh_token_after,
            grace=refresh_token_grace,
            access_token_ttl=access_token_ttl,
        )
        self.company = Company(
            tz=tz, now=self._now, duplicate_doc_number_error=duplicate_doc_number_error
        )
        seed_company(
            self.company, seed=seed, customers=customers, invoices=invoices, realm_id=realm_id
        )
        self._register_routes()

    # ==========================================================================================
    # identity & configuration
    # ==========================================================================================

    def _now(self) -> dt.datetime:
        return self.clock.now()

    def set_clock(self, clock: Clock) -> None:
        with self._lock:
            self.clock = clock

    @property
    def api_url(self) -> str:
        """``http://127.0.0.1:<port>/v3``: python-quickbooks' ``api_url_v3``."""
        return f"{self.base_url}/v3"

    @property
    def company_url(self) -> str:
        return f"{self.api_url}/company/{self.realm_id}"

    @property
    def discovery_url(self) -> str:
        """Give this to ``intuitlib.AuthClient(environment=…)`` (research §1.12)."""
        return f"{self.base_url}/.well-known/openid_configuration"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/oauth2/v1/tokens/bearer"

    @property
    def revoke_url(self) -> str:
        return f"{self.base_url}/oauth2/v1/tokens/revoke"

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/connect/oauth2"

    @property
    def refresh_token(self) -> str:
        """The seeded connection's current refresh token (changes when it rotates)."""
        return self.auth.current_refresh_token()

    def issue_access_token(self) -> str:
        """A valid access token for the seeded connection, without an HTTP round trip."""
        return self.auth.issue_access_token()

    def headers(self, access_token: str | None = None) -> dict[str, str]:
        """What a well-behaved client sends (python-quickbooks ``make_request``)."""
        return {
            "Authorization": f"Bearer {access_token or self.issue_access_token()}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }

    def expire_access_tokens(self) -> None:
        self.auth.expire_access_tokens()

    def rotate_refresh_token(self) -> str:
        """Intuit rotated the seeded refresh token (another worker refreshed): the old value now
        answers ``invalid_grant``. Returns the new one."""
        return self.auth.rotate()

    def expire_refresh_token(self) -> None:
        self.auth.expire_refresh_token()

    def revoke(self) -> None:
        """The user disconnected the app: every token of the seeded connection dies."""
        self.auth.revoke_grant()

    def config_snippet(self, connection_name: str) -> str:
        values = {
            "connector": "quickbooks_online",
            "realm_id": self.realm_id,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
            "environment": "sandbox",
            "base_url": self.base_url,
            "token_url": self.token_url,
            "discovery_url": self.discovery_url,
        }
        header = f"# QuickBooks Online sandbox (seed {self.seed}) at {self.base_url}\n"
        return header + toml_table(("connections", connection_name), values)

    # ==========================================================================================
    # plumbing
    # ==========================================================================================

    def _time(self) -> str:
        return local_millis(self._now(), self.tz)

    def _millis(self) -> int:
        return int(self._now().timestamp() * 1000)

    def _register_routes(self) -> None:
        r = self.router
        for path in (
            "/.well-known/openid_configuration",
            "/.well-known/openid_configuration/",
            "/.well-known/openid_sandbox_configuration",
            "/.well-known/openid_sandbox_configuration/",
        ):
            r.add("GET", path, self.auth.discovery)
        r.add("GET", "/connect/oauth2", self.auth.authorize)
        r.add("POST", "/oauth2/v1/tokens/bearer", self.auth.token)
        r.add("POST", "/oauth2/v1/tokens/revoke", self.auth.revoke)
        r.add("GET", "/op/v1/jwks", self.auth.jwks)
        r.add("GET", "/v1/openid_connect/userinfo", self.auth.userinfo)
        api = "/v3/company/{realm}"
        r.add("GET", api + "/query", self._api(self._query))
        r.add("POST", api + "/query", self._api(self._query))
        r.add("GET", api + "/cdc", self._api(self._cdc))
        r.add("POST", api + "/batch", self._api(self._batch, batch=True))
        r.add("GET", api + "/{entity}/{id}", self._api(self._read))
        r.add("POST", api + "/{entity}", self._api(self._write))

    def _api(self, handler: Handler, *, batch: bool = False) -> Handler:
        def wrapped(request: Request) -> Response:
            response = self._guard(request, handler, batch)
            tid = next(self._tid)
            response.headers.setdefault("intuit_tid", f"1-{self.seed:04x}-{tid:08x}")
            return response

        return wrapped

    def _guard(self, request: Request, handler: Handler, batch: bool) -> Response:
        realm, detail = self.auth.check(request.header("authorization"))
        if realm is None:
            return unauthorized(detail or "Token expired", self._millis())
        if realm != request.params.get("realm") or realm != self.realm_id:
            return forbidden(self._millis())
        if self.throttle_enabled and not self.throttle.admit(realm, batch=batch):
            return throttled(self._time())
        try:
            self._check_minorversion(request)
            rid = request.query.get("requestid")
            limit = MAX_BATCH_REQUEST_ID if batch else MAX_REQUEST_ID
            if rid is not None and len(rid) > limit:
                raise QBOFault(
                    2050,
                    f"String length specified does not match the supported length. Min:1 "
                    f"Max:{limit} supported. Supplied length:{len(rid)}",
                    element="requestid",
                )
        except QBOFault as fault:
            return fault.response(self._time())
        with self._lock:
            key = (realm, rid) if rid else None
            if key is not None and key in self._replies:
                self._replies.move_to_end(key)
                stored = self._replies[key]
                # The original response, byte for byte, no side effects (research §1.7).
                return Response(stored.status, stored.body, dict(stored.headers))
            try:
                response = handler(request)
            except QBOFault as fault:
                response = fault.response(self._time())
            except HTTPError as exc:
                response = exc.response
            if key is not None:
                self._replies[key] = Response(
                    response.status, response.body, dict(response.headers)
                )
                while len(self._replies) > self.requestid_cache_size:
                    self._replies.popitem(last=False)
            return response

    def _check_minorversion(self, request: Request) -> None:
        raw = request.query.get("minorversion")
        if raw is None:
            return  # Intuit serves its base version (75 since Aug 2025) when absent
        if not raw.strip().isdigit():
            raise QBOFault(2010, f"Invalid minorversion {raw!r}", element="minorversion")
        if self.reject_old_minorversion and int(raw) < MIN_MINOR_VERSION:
            raise QBOFault(
                2010,
                f"Minor version {raw} is no longer supported. Use minorversion="
                f"{MIN_MINOR_VERSION} or later.",
                element="minorversion",
            )

    def fault_response(self, kind: Fault, request: Request, rule: FaultRule) -> Response:
        """Injected faults in Intuit's words: 429 XML ThrottleExceeded, 401 lower-case 3200,
        5xx JSON ``Fault`` (code 10000, type SystemFault)."""
        if kind is Fault.RATE_LIMIT:
            headers = {"Retry-After": format_seconds(rule.retry_after), **rule.headers}
            return throttled(self._time(), headers)
        if kind is Fault.EXPIRED_TOKEN:
            response = unauthorized(rule.message or "Token expired", self._millis())
            response.headers.update(rule.headers)
            return response
        fault = QBOFault(
            10000,
            rule.message
            or "System Failure Error: An unexpected error occurred while accessing or saving "
            "your data. Please wait a few minutes and try again.",
            status=rule.status,
            kind="SystemFault",
        )
        response = fault.response(self._time())
        response.headers.update(rule.headers)
        return response

    # ==========================================================================================
    # handlers
    # ==========================================================================================

    def _entity(self, request: Request) -> str:
        name = URL_ENTITIES.get(request.params["entity"].lower())
        if name is None:
            raise QBOFault(
                500,
                f"Unsupported Operation : entity {request.params['entity']} is not emulated",
                element="entity",
            )
        return name

    def _read(self, request: Request) -> Response:
        entity = self._entity(request)
        row = self.company.row(entity, request.params["id"])
        return Response.json_body({entity: row, "time": self._time()})

    @staticmethod
    def _body(request: Request) -> Any:
        """The JSON body; malformed JSON is a 2010 fault, as QBO's parser reports it."""
        try:
            return json.loads(request.body.decode("utf-8")) if request.body else None
        except (UnicodeDecodeError, ValueError) as exc:
            raise QBOFault(
                2010,
                f"Property Name:{exc} specified is unsupported or invalid",
                element="body",
            ) from None

    def _write(self, request: Request) -> Response:
        entity = self._entity(request)
        body = self._body(request)
        operation = (request.query.get("operation") or "").lower()
        include = (request.query.get("include") or "").lower()
        if operation == "delete":
            result = self.company.delete(entity, body)
        elif operation == "void" or (operation == "update" and include == "void"):
            result = self.company.void(entity, body)
        elif operation in ("", "create", "update"):
            result = self.company.save(entity, body)
        else:
            raise QBOFault(500, f"Unsupported Operation : operation={operation}")
        return Response.json_body({entity: result, "time": self._time()})

    def _statement(self, request: Request) -> str:
        text = request.query.get("query")
        if text is None and request.method == "POST":
            text = request.body.decode("utf-8", "replace")
        return text or ""

    def _run_query(self, query: Query) -> Row:
        rows = self.company.matched(query)
        if query.count:
            return {"totalCount": len(rows)}
        page = rows[query.start - 1 : query.start - 1 + query.max_results]
        if not page:
            return {}  # "empty result → QueryResponse: {}" (research §1.3)
        if query.projection is not None:
            keep = query.projection
            page = [{k: row[k] for k in keep if k in row} for row in page]
        return {query.entity: page, "startPosition": query.start, "maxResults": len(page)}

    def _query(self, request: Request) -> Response:
        query = parse(self._statement(request), SCHEMAS, self.tz)
        result = self._run_query(query)
        info = {
            "entity": query.entity,
            "start": query.start,
            "returned": len(result.get(query.entity, [])),
        }
        response = Response.json_body({"QueryResponse": result, "time": self._time()})
        self.server.page_served(request, info)
        return response

    def _cdc(self, request: Request) -> Response:
        """Change data capture (research §1.4): ≤ 30 days back, ≤ 1000 objects in all,
        tombstones for deletions, one QueryResponse per entity asked."""
        names = [n.strip() for n in (request.query.get("entities") or "").split(",") if n.strip()]
        if not names:
            raise required("entities")
        for name in names:
            if name not in SCHEMAS:
                raise QBOFault(4001, f"QueryValidationError: Unknown entity: {name}", element=name)
        raw = request.query.get("changedSince")
        if not raw:
            raise required("changedSince")
        since = parse_instant(raw, self.tz)
        if since is None:
            raise QBOFault(2010, f"Invalid changedSince {raw!r}", element="changedSince")
        oldest = (self._now() - dt.timedelta(days=CDC_MAX_DAYS)).timestamp()
        if since < oldest:
            raise QBOFault(
                4001,
                f"QueryValidationError: changedSince {raw} is more than {CDC_MAX_DAYS} days "
                "in the past",
                element="changedSince",
            )
        budget = CDC_MAX_OBJECTS
        responses: list[Row] = []
        for name in names:
            rows = self.company.changed_since(name, since)[:budget]
            budget -= len(rows)
            if rows:
                responses.append({name: rows, "startPosition": 1, "maxResults": len(rows)})
            else:
                responses.append({})
        body = {"CDCResponse": [{"QueryResponse": responses}], "time": self._time()}
        return Response.json_body(body)

    def _batch(self, request: Request) -> Response:
        """``{"BatchItemRequest":[{bId, operation, <Entity>} | {bId, Query}]}``; items run one
        after another, each fault stays in its item, the batch answers 200 (research §1.8)."""
        body = self._body(request)
        items = body.get("BatchItemRequest") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            raise required("BatchItemRequest")
        if len(items) > MAX_BATCH_ITEMS:
            raise QBOFault(
                6000,
                f"Business Validation Error: a batch holds at most {MAX_BATCH_ITEMS} items, "
                f"got {len(items)}",
                element="BatchItemRequest",
            )
        with_rid = "requestid" in request.query
        out: list[Row] = []
        for item in items:
            if not isinstance(item, dict):
                raise QBOFault(2010, "Invalid BatchItemRequest", element="BatchItemRequest")
            bid = str(item.get("bId", ""))
            if not bid:
                raise required("bId")
            if with_rid and len(bid) > MAX_BATCH_ID:
                raise QBOFault(
                    2050,
                    f"String length specified does not match the supported length. Min:1 "
                    f"Max:{MAX_BATCH_ID} supported. Supplied length:{len(bid)}",
                    element="bId",
                )
            try:
                out.append({"bId": bid, **self._batch_item(item)})
            except QBOFault as fault:
                out.append({"bId": bid, "Fault": fault.fault()})
        return Response.json_body({"BatchItemResponse": out, "time": self._time()})

    def _batch_item(self, item: Row) -> Row:
        if "Query" in item:
            return {"QueryResponse": self._run_query(parse(str(item["Query"]), SCHEMAS, self.tz))}
        entities = [k for k in item if k in WRITABLE]
        if len(entities) != 1:
            raise QBOFault(2010, "A batch item holds exactly one entity or a Query")
        entity = entities[0]
        operation = str(item.get("operation", "")).lower()
        if operation == "create":
            return {entity: self.company.create(entity, item[entity])}
        if operation == "update":
            return {entity: self.company.update(entity, item[entity])}
        if operation == "delete":
            return {entity: self.company.delete(entity, item[entity])}
        raise QBOFault(2170, f"Invalid Enumeration : operation {operation!r}", element="operation")

    # ==========================================================================================
    # test-side helpers (no HTTP)
    # ==========================================================================================

    def _get(self, entity: str, rid: int | str) -> Row:
        with self._lock:
            return copy.deepcopy(self.company.row(entity, rid))

    def customer(self, rid: int | str) -> Row:
        return self._get("Customer", rid)

    def invoice(self, rid: int | str) -> Row:
        return self._get("Invoice", rid)

    def payment(self, rid: int | str) -> Row:
        return self._get("Payment", rid)

    def deposit(self, rid: int | str) -> Row:
        return self._get("Deposit", rid)

    def account(self, rid: int | str) -> Row:
        return self._get("Account", rid)

    def rows(self, entity: str) -> list[Row]:
        """Every live row of ``entity``, by Id (inactive customers included)."""
        with self._lock:
            return copy.deepcopy(list(self.company.all_rows(entity)))

    def all_customers(self) -> list[Row]:
        return self.rows("Customer")

    def all_invoices(self) -> list[Row]:
        return self.rows("Invoice")

    def all_payments(self) -> list[Row]:
        return self.rows("Payment")

    def deposits(self) -> list[Row]:
        return self.rows("Deposit")

    def expected_ids(self, stream: str) -> set[str]:
        """What a full pull must deliver (the contract tests): every customer, inactive ones
        included, and every invoice that is not deleted, voided ones included."""
        entity = {"customers": "Customer", "invoices": "Invoice"}.get(stream)
        if entity is None:
            raise NotImplementedError(f"QuickBooksSandbox lists no expected ids for {stream!r}")
        with self._lock:
            return {str(row["Id"]) for row in self.company.all_rows(entity)}

    def deleted_ids(self, entity: str) -> list[str]:
        """Ids deleted from ``entity`` (visible to clients only as CDC tombstones)."""
        with self._lock:
            return [str(i) for i in sorted(self.company.tables[entity].tombstones)]

    def voided_ids(self, entity: str) -> list[str]:
        with self._lock:
            return [str(i) for i in sorted(self.company.voided.get(entity, set()))]

    def account_by_name(self, name: str) -> Row:
        with self._lock:
            return self._get("Account", self.company.account_id(name))

    def payment_method_by_name(self, name: str) -> Row:
        with self._lock:
            row = self.company.find("PaymentMethod", Name=name)
            if row is None:
                raise KeyError(name)
            return copy.deepcopy(row)

    def payments_for_invoice(self, invoice_id: int | str) -> list[Row]:
        """Payments applied to an invoice (voided ones no longer count), oldest first."""
        with self._lock:
            apps = self.company.payments_for_invoice(int(invoice_id))
            return [copy.deepcopy(self.company.row("Payment", pid)) for pid in sorted(apps)]

    def applied_amounts(self, invoice_id: int | str) -> dict[str, Decimal]:
        with self._lock:
            apps = self.company.payments_for_invoice(int(invoice_id))
            return {str(pid): amount for pid, amount in sorted(apps.items())}

    def deposit_of(self, payment_id: int | str) -> str | None:
        with self._lock:
            deposit = self.company.deposited_in.get(int(payment_id))
            return str(deposit) if deposit is not None else None

    def _save(self, entity: str, body: Row) -> Row:
        with self._lock:
            return copy.deepcopy(self.company.save(entity, body))

    def _sparse(self, entity: str, rid: int | str, changes: Row) -> Row:
        with self._lock:
            row = self.company.row(entity, rid)
            body = {"Id": row["Id"], "SyncToken": row["SyncToken"], "sparse": True, **changes}
            return copy.deepcopy(self.company.save(entity, body))

    def add_customer(self, display_name: str, **fields: Any) -> Row:
        return self._save("Customer", {"DisplayName": display_name, **fields})

    def update_customer(self, rid: int | str, **changes: Any) -> Row:
        return self._sparse("Customer", rid, changes)

    def deactivate_customer(self, rid: int | str) -> Row:
        return self._sparse("Customer", rid, {"Active": False})

    def add_invoice(
        self, customer_id: int | str, amount: Decimal | str | int = "100.00", **fields: Any
    ) -> Row:
        """An open invoice with one "Services" line of ``amount``; ``fields`` override."""
        body: Row = {
            "CustomerRef": {"value": str(customer_id)},
            "Line": [
                {
                    "Amount": str(amount),
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": "1"}},
                }
            ],
            **fields,
        }
        return self._save("Invoice", body)

    def update_invoice(self, rid: int | str, **changes: Any) -> Row:
        return self._sparse("Invoice", rid, changes)

    def void_invoice(self, rid: int | str) -> Row:
        with self._lock:
            row = self.company.row("Invoice", rid)
            return copy.deepcopy(self.company.void("Invoice", row))

    def delete_invoice(self, rid: int | str) -> None:
        with self._lock:
            self.company.delete("Invoice", self.company.row("Invoice", rid))

    def add_payment(
        self,
        invoice_id: int | str,
        amount: Decimal | str | int,
        *,
        total: Decimal | str | int | None = None,
        **fields: Any,
    ) -> Row:
        """A payment of ``amount`` applied to one invoice (its customer's); ``total`` larger than
        ``amount`` leaves the rest unapplied."""
        with self._lock:
            invoice = self.company.row("Invoice", invoice_id)
            body: Row = {
                "CustomerRef": {"value": invoice["CustomerRef"]["value"]},
                "TotalAmt": str(total if total is not None else amount),
                "Line": [
                    {
                        "Amount": str(amount),
                        "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}],
                    }
                ],
                **fields,
            }
            return copy.deepcopy(self.company.save("Payment", body))

    def void_payment(self, rid: int | str) -> Row:
        with self._lock:
            row = self.company.row("Payment", rid)
            return copy.deepcopy(self.company.void("Payment", row))

    def delete_payment(self, rid: int | str) -> None:
        with self._lock:
            self.company.delete("Payment", self.company.row("Payment", rid))

    def add_deposit(
        self,
        payment_ids: list[int | str],
        *,
        fee: Decimal | str | None = None,
        account: str = "Checking",
        fee_account: str = "Merchant Fees",
    ) -> Row:
        """Deposit payments from Undeposited Funds with a negative fee line (default: 2.9 % +
        0.30 per payment, research §1.6 pattern A)."""
        with self._lock:
            lines: list[Row] = []
            fees = Decimal(0)
            for pid in payment_ids:
                payment = self.company.row("Payment", pid)
                lines.append(
                    {
                        "Amount": payment["TotalAmt"],
                        "LinkedTxn": [{"TxnId": payment["Id"], "TxnType": "Payment"}],
                    }
                )
                fees += card_fee(Decimal(str(payment["TotalAmt"])))
            total_fee = Decimal(str(fee)) if fee is not None else fees
            if total_fee:
                lines.append(
                    {
                        "Amount": str(-total_fee),
                        "DetailType": "DepositLineDetail",
                        "DepositLineDetail": {
                            "AccountRef": {"value": str(self.company.account_id(fee_account))}
                        },
                    }
                )
            body = {
                "DepositToAccountRef": {"value": str(self.company.account_id(account))},
                "Line": lines,
            }
            return copy.deepcopy(self.company.save("Deposit", body))

    @property
    def undeposited_funds_id(self) -> str:
        with self._lock:
            return str(self.company.account_id(UNDEPOSITED_FUNDS))

    def churn(self, request: Request) -> None:
        """``Fault.CHURN``: an update, an insert, a void or a delete among invoices, or a
        customer edit, drawn from a RNG seeded with ``seed + 1``."""
        with self._lock:
            rng = self._churn_rng
            roll = rng.random()
            company = self.company
            customers = [
                int(r["Id"]) for r in company.tables["Customer"].rows.values() if r["Active"]
            ]
            active = set(customers)
            invoices = [
                rid
                for rid, row in company.tables["Invoice"].rows.items()
                if not company.applied.get(rid)
                and rid not in company.voided["Invoice"]
                and int(row["CustomerRef"]["value"]) in active
            ]
            if "customer" in request.path.lower() or "Customer" in request.raw_query:
                if customers:
                    self.update_customer(
                        rng.choice(customers), Notes=f"churn {rng.randint(0, 9999)}"
                    )
                return
            if roll < 0.5 and invoices:
                self.update_invoice(
                    rng.choice(invoices), PrivateNote=f"churn {rng.randint(0, 9999)}"
                )
            elif roll < 0.8 and customers:
                self.add_invoice(rng.choice(customers), f"{rng.randint(10, 900)}.00")
            elif roll < 0.9 and invoices:
                self.void_invoice(rng.choice(invoices))
            elif invoices:
                self.delete_invoice(rng.choice(invoices))

    # -- webhooks --------------------------------------------------------------------------------

    def changes(self, clear: bool = True) -> list[ChangeEvent]:
        """Writes since the last call (API and helpers, not seed data), for webhook payloads."""
        with self._lock:
            events = list(self.company.events)
            if clear:
                self.company.events.clear()
            return events

    def webhook(
        self, events: list[ChangeEvent] | None = None, *, cloudevents: bool = False
    ) -> tuple[bytes, dict[str, str]]:
        """A webhook delivery for ``events`` (default: ``changes()``): the raw body and the
        headers to POST it with, ``intuit-signature`` included (research §1.11)."""
        events = self.changes() if events is None else events
        payload: Any = (
            cloudevents_payload(self.realm_id, events)
            if cloudevents
            else legacy_payload(self.realm_id, events)
        )
        body = encode(payload)
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: self.sign(body)}
        return body, headers

    def sign(self, body: bytes) -> str:
        return sign(body, self.verifier_token)


def start(seed: int = 0, **options: Any) -> QuickBooksSandbox:
    """Entry point for ``BaseConnector.sandbox`` ("connectors.quickbooks_online.sandbox:start")."""
    return QuickBooksSandbox(seed=seed, **options).start()


__all__ = [
    "CDC_MAX_DAYS",
    "CDC_MAX_OBJECTS",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_REALM_ID",
    "DEFAULT_VERIFIER_TOKEN",
    "MAX_BATCH_ITEMS",
    "MIN_MINOR_VERSION",
    "UNVERIFIED",
    "QuickBooksSandbox",
    "start",
]
