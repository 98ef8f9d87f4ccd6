"""The ConnectWise Manage REST API 3.0, as syncd uses it: it fetches and posts, and knows nothing of
canonical records (the connector and its mapping do).

Vendor facts and their sources (research/psa-apis.md section 1):

- **Auth** (1.1): HTTP Basic ``"{company}+{public}:{private}"`` plus a ``clientId`` header
  (pyconnectwise ``manage_client._get_auth_string``/``_get_headers``; django-connectwise
  ``api.py``). An optional ``Accept: application/vnd.connectwise.com+json; version=X`` pins the
  schema (django-connectwise ``get_headers``).
- **Codebase** (1.1, 1.9): every call lives under ``/{codebase}apis/3.0/``; the tenant's codebase
  comes from the *unauthenticated* ``GET /login/companyinfo/{company}`` (key ``Codebase``), and a
  404 can mean that it moved, so a 404 re-discovers it once and retries (django-connectwise
  ``CompanyInfoManager`` + ``fetch_resource``). The discovery call goes through its own session
  without credentials: keys are sent only where they are needed.
- **Paging** (1.4): ``pageSize`` at most 1000. We ask for keyset paging (``pagination-type:
  forward-only``) and follow the ``Link: <…pageId=N>; rel="next"`` URL (ConnectWiseManageAPI
  ``Invoke-CWMAllResult.ps1``): it cannot skip or repeat records while others change, as ``page=N``
  can. An endpoint that ignores the header answers without a ``Link`` header; when that first
  page is full we go on with navigable ``page=2, 3, …``, following its ``Link`` header or, without
  one, paging until a short page (django-connectwise ``fetch_records``).
- **URL length** (1.4): keep a request URL under ~2000 characters, so ``id in (…)`` lists are
  split (django-connectwise ``get_optimal_size`` batches them the same way, ``sync.py``
  L530-560).
- **Rate limits** (1.7): 429 with ``Retry-After`` seconds (CW "PSA API Requests" page), which
  ``HttpClient`` honours. The only number published is "~1000 requests/minute" [secondary], so the
  client-side budget is half of it, shared per (host, company): ``LIMITS``.

Money stays a JSON number in the payload we hand back (``raw`` must stay JSON for the store); the
mapping turns it into ``Decimal`` through ``Decimal(str(x))``, which is exact for the at most 15
significant digits an amount has. Amounts we *send* go through ``json_amount``, which refuses any
value a JSON number would not carry exactly.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import requests
import structlog

from connectors.connectwise.errors import (
    PAYMENT_REFUSALS,
    STATUS_MAP,
    VENDOR_CODES,
    code_of,
    message_of,
)
from syncd.clock import Clock
from syncd.currency import json_amount
from syncd.errors import ConnectorError, FatalError, RetriableError
from syncd.http import HttpClient
from syncd.query import cw_condition
from syncd.ratelimit import Limiter, Limits
from syncd.redact import REDACTOR, Redactor

API_PATH: Final = "apis/3.0/"
MAX_PAGE_SIZE: Final = 1000  # "hard limit of 1,000 records" (CW "PSA Pagination" page)
FORWARD_ONLY: Final = {"pagination-type": "forward-only"}
MAX_CONDITIONS_CHARS: Final = 1500  # URL-encoded ``id in (…)`` per request; ~2000 in all
LIMITS: Final = Limits.per(minute=500, concurrency=4)  # half the [secondary] 1000/min

_LINK: Final = re.compile(r'<([^>]*)>\s*;\s*rel="?([^",;]+)"?')
_log = structlog.get_logger("connectors.connectwise")


@dataclass(frozen=True)
class Credentials:
    company_id: str
    public_key: str
    private_key: str = field(repr=False)
    client_id: str

    def basic(self) -> str:
        user = f"{self.company_id}+{self.public_key}:{self.private_key}"
        return "Basic " + base64.b64encode(user.encode("utf-8")).decode("ascii")


@dataclass(frozen=True)
class ListPage:
    """One page of a listing; ``next_position`` resumes the listing after it (None: the end).

    A position is the next request relative to ``/{codebase}apis/3.0/`` (``company/companies?
    conditions=…&pageSize=1000&pageId=42``), so it survives a codebase move and a restart.
    """

    records: list[dict[str, Any]]
    next_position: str | None


class ConnectWiseClient:
    """One tenant's API: discovery, listings, contacts' e-mails and invoice payments."""

    def __init__(
        self,
        root: str,
        credentials: Credentials,
        *,
        connection: str,
        clock: Clock | None = None,
        api_version: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        codebase: str | None = None,
        limiter: Limiter | None = None,
        redactor: Redactor = REDACTOR,
        max_attempts: int = 5,
        backoff: float = 1.0,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        self.root = root.rstrip("/")
        self.company_id = credentials.company_id
        self.page_size = page_size
        self._codebase = _normalise_codebase(codebase) if codebase else None
        self._pinned = codebase is not None  # an explicit codebase is never re-discovered
        authorization = credentials.basic()
        redactor.add(credentials.private_key, authorization)
        accept = "application/json"
        if api_version:
            accept = f"application/vnd.connectwise.com+json; version={api_version}"
        common: dict[str, Any] = {
            "connection": connection,
            "vendor": "connectwise",
            "status_map": STATUS_MAP,
            "vendor_codes": VENDOR_CODES,
            "code_of": code_of,
            "message_of": message_of,
            "limiter": limiter,
            "clock": clock,
            "redactor": redactor,
            "max_attempts": max_attempts,
            "backoff": backoff,
        }
        self._login = HttpClient(self.root, headers={"Accept": "application/json"}, **common)
        self._api = HttpClient(
            self.root,
            headers={
                "Authorization": authorization,
                "clientId": credentials.client_id,
                "Accept": accept,
            },
            **common,
        )

    @property
    def requests_made(self) -> int:
        """Every HTTP attempt of both sessions (retries included), for the engine's run record."""
        return self._login.requests_made + self._api.requests_made

    @property
    def codebase(self) -> str | None:
        return self._codebase

    def close(self) -> None:
        self._login.close()
        self._api.close()

    # -- discovery and the 404 rule --------------------------------------------------------------

    def discover_codebase(self) -> str:
        """Ask ``/login/companyinfo/{company}`` for the tenant's codebase (e.g. ``v2025_1/``)."""
        where = f"{self.root}/login/companyinfo/{self.company_id}"
        try:
            info = self._login.get_json(f"login/companyinfo/{quote(self.company_id, safe='')}")
        except FatalError as exc:
            if exc.status != 404:
                raise
            info = None
        codebase = info.get("Codebase") if isinstance(info, dict) else None
        if not isinstance(codebase, str) or not codebase.strip("/ "):
            # An unknown company answers 404 or a null body (django-connectwise get_company_info).
            raise FatalError(
                f"connectwise: {where} does not know company_id {self.company_id!r}: check "
                "company_id and the site/base_url"
            )
        found = _normalise_codebase(codebase)
        if found != self._codebase:
            _log.info("connectwise_codebase", codebase=found, previous=self._codebase)
        self._codebase = found
        return found

    def _url(self, path: str) -> str:
        codebase = self._codebase or self.discover_codebase()
        return f"{codebase}{API_PATH}{path.lstrip('/')}"

    def _send(self, method: str, path: str, *, parse: bool, **kwargs: Any) -> Any:
        """One API call; a 404 re-discovers the codebase once and, if it moved, retries.

        Re-sending after a 404 is safe for a write too: the server did not act on it.
        """
        call = self._api.request_json if parse else self._api.request
        try:
            return call(method, self._url(path), **kwargs)
        except FatalError as exc:
            if exc.status != 404 or self._pinned:
                raise
            before = self._codebase
            if self.discover_codebase() == before:
                raise
            return call(method, self._url(path), **kwargs)

    # -- reads -----------------------------------------------------------------------------------

    def system_info(self) -> dict[str, Any]:
        """``GET /system/info``: the cheapest authenticated call (ConnectWiseManageAPI
        ``Connect-CWM.ps1`` validates credentials with it)."""
        body = self._send("GET", "system/info", parse=True)
        return body if isinstance(body, dict) else {}

    def list_pages(
        self,
        resource: str,
        *,
        conditions: str | None = None,
        fields: str | None = None,
        position: str | None = None,
    ) -> Iterator[ListPage]:
        """Every record of ``resource`` matching ``conditions``, page by page, in id order.

        ``position`` is a ``ListPage.next_position`` from an interrupted listing: it carries the
        conditions it was started with.
        """
        probing = position is None  # the first page tells whether forward-only is honoured
        if position is None:
            params: dict[str, Any] = {"pageSize": self.page_size}
            if conditions:
                params["conditions"] = conditions
            if fields:
                params["fields"] = fields
            position = f"{resource}?{urlencode(params, quote_via=quote)}"
        while position is not None:
            query = dict(parse_qsl(urlsplit(position).query))
            navigable = "page" in query
            response = self._send(
                "GET", position, parse=False, headers=None if navigable else FORWARD_ONLY
            )
            records = _records(response)
            following = self._next_position(response, position, records, probing, navigable)
            yield ListPage(records, following)
            position, probing = following, False

    def _next_position(
        self,
        response: requests.Response,
        current: str,
        records: list[dict[str, Any]],
        probing: bool,
        navigable: bool,
    ) -> str | None:
        header = response.headers.get("Link")
        link = next_link(header)
        if link is not None:
            return self._relative(link)
        query = dict(parse_qsl(urlsplit(current).query))
        if header or len(records) < int(query.get("pageSize") or self.page_size):
            return None  # links without a next one, or a short page: this was the last page
        if navigable:
            return _with_query(current, page=int(query["page"]) + 1)
        if probing:
            # A full first page without a Link: forward-only is not supported here (cwps
            # "Endpoint doesn't support 'forward-only' pagination"); page 1 was navigable.
            _log.info("connectwise_navigable_paging", resource=urlsplit(current).path)
            return _with_query(current, page=2)
        return None  # a keyset chain ends where the Link header stops

    def _relative(self, link: str) -> str:
        """A next-page URL as a position relative to ``/{codebase}apis/3.0/``."""
        parts, root = urlsplit(link), urlsplit(self.root)
        foreign = (parts.scheme or parts.netloc) and (
            parts.scheme.lower(),
            parts.netloc.lower(),
        ) != (root.scheme.lower(), root.netloc.lower())
        at = parts.path.find("/" + API_PATH)
        if foreign or at < 0:
            raise FatalError(
                f"connectwise: next-page link {parts.scheme}://{parts.netloc}{parts.path} is not "
                f"under {self.root}/{{codebase}}/{API_PATH}; refusing to follow it"
            )
        rest = parts.path[at + len(API_PATH) + 1 :]
        return f"{rest}?{parts.query}" if parts.query else rest

    def billing_emails(
        self, contact_ids: Iterable[int], companies: tuple[int, int] | None = None
    ) -> dict[int, str | None]:
        """The e-mail of each billing contact; unknown contacts are left out.

        Ids are asked for with ``id in (…)``: one request per ~170 contacts. When more are wanted
        and ``companies`` says the page holds *every* company of an id range (a full pass pages
        by id), the range's billing contacts come in one request per 1000 instead
        (``company/id`` between the bounds and ``defaultBillingFlag = true``, a Contact field in
        pyconnectwise ``ContactModel``), and only the ids that query missed are asked for by id.
        """
        wanted = set(contact_ids)
        found: dict[int, str | None] = {}
        if companies is not None and len(list(id_chunks(sorted(wanted)))) > 1:
            first, last = companies
            conditions = " and ".join(
                (
                    cw_condition("company/id", ">=", first),
                    cw_condition("company/id", "<=", last),
                    cw_condition("defaultBillingFlag", "=", True),
                )
            )
            found = {
                rid: email
                for rid, email in self._emails(conditions).items()
                if rid in wanted  # a company's flagged contact may not be its billingContact
            }
        for chunk in id_chunks(sorted(wanted - found.keys())):
            found.update(self._emails(cw_condition("id", "in", chunk)))
        return found

    def _emails(self, conditions: str) -> dict[int, str | None]:
        found: dict[int, str | None] = {}
        for page in self.list_pages(
            "company/contacts", conditions=conditions, fields="id,communicationItems"
        ):
            for contact in page.records:
                if isinstance(contact.get("id"), int):
                    found[contact["id"]] = email_of(contact)
        return found

    def invoice_payments(self, invoice_id: int) -> list[dict[str, Any]]:
        """``GET /finance/invoices/{id}/payments``, every page (research 1.6)."""
        payments: list[dict[str, Any]] = []
        for page in self.list_pages(f"finance/invoices/{invoice_id}/payments"):
            payments += page.records
        return payments

    # -- writes ----------------------------------------------------------------------------------

    def post_payment(self, invoice_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /finance/invoices/{id}/payments`` (pyconnectwise
        ``FinanceInvoicesIdPaymentsEndpoint``).

        Sent once: ConnectWise has no idempotency key, so ``HttpClient`` turns a lost answer into
        ``UncertainWrite`` and never re-sends it; the caller settles it by reading back.
        """
        try:
            created = self._send(
                "POST", f"finance/invoices/{invoice_id}/payments", parse=True, json=dict(body)
            )
        except ConnectorError as exc:
            refusal = PAYMENT_REFUSALS.get(exc.code or "")
            if refusal is None or exc.status is None or not 400 <= exc.status < 500:
                raise
            raise refusal(str(exc), status=exc.status, code=exc.code) from None
        if not isinstance(created, dict) or "id" not in created:
            raise FatalError("connectwise: payment POST answered without the created payment")
        return created

    def delete_payment(self, invoice_id: int, payment_id: int) -> None:
        """``DELETE /finance/invoices/{id}/payments/{paymentId}`` (pyconnectwise
        ``FinanceInvoicesIdPaymentsIdEndpoint``; 204 on success, research 1.6, 1.7).

        Sent once, like the POST: a lost answer is an ``UncertainWrite`` for the caller to settle.
        """
        self._send("DELETE", f"finance/invoices/{invoice_id}/payments/{payment_id}", parse=False)


# -- helpers (pure: tested on their own) ---------------------------------------------------------


def site_root(site: str) -> str:
    """``https://{API host}`` for a cloud site; UI hosts become API hosts (django-connectwise
    ``CW_CLOUD_URLS``: ``na.myconnectwise.net`` → ``api-na.myconnectwise.net``)."""
    if "://" in site:
        return site.rstrip("/")
    host = site.strip().strip("/").lower()
    if re.fullmatch(r"(na|eu|au|aus|za)\.myconnectwise\.net|staging\.connectwisedev\.com", host):
        host = "api-" + host
    return f"https://{host}"


def next_link(header: str | None) -> str | None:
    """The ``rel="next"`` URL of an RFC 8288 ``Link`` header."""
    for match in _LINK.finditer(header or ""):
        if match.group(2).strip().lower() == "next":
            return match.group(1).strip()
    return None


def email_of(contact: Mapping[str, Any]) -> str | None:
    """A contact's e-mail from ``communicationItems``: the default one first (pyconnectwise
    ``ContactCommunicationItemModel``: ``communicationType``, ``value``, ``defaultFlag``)."""
    items = contact.get("communicationItems")
    emails = [
        item
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, dict)
        and item.get("communicationType") == "Email"
        and isinstance(item.get("value"), str)
        and item["value"].strip()
    ]
    emails.sort(key=lambda item: not item.get("defaultFlag"))
    return str(emails[0]["value"]).strip() if emails else None


def id_chunks(ids: list[int], budget: int = MAX_CONDITIONS_CHARS) -> Iterator[list[int]]:
    """Split ids so each ``id in (…)`` condition stays within ``budget`` URL-encoded characters
    (each id costs its digits plus an encoded comma)."""
    chunk: list[int] = []
    used = len(quote("id in ()"))
    for rid in ids:
        cost = len(str(rid)) + len(quote(","))
        if chunk and used + cost > budget:
            yield chunk
            chunk, used = [], len(quote("id in ()"))
        chunk.append(rid)
        used += cost
    if chunk:
        yield chunk


def _records(response: requests.Response) -> list[dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        # A complete answer that is not JSON (a proxy's page): the next run retries this page.
        raise RetriableError(
            f"connectwise GET {urlsplit(response.url).path}: answer is not JSON"
        ) from None
    if not isinstance(body, list) or not all(isinstance(r, dict) for r in body):
        raise FatalError(f"connectwise GET {urlsplit(response.url).path}: expected a JSON list")
    return body


def _with_query(position: str, **changes: Any) -> str:
    parts = urlsplit(position)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in changes and k != "pageId"]
    query += [(k, str(v)) for k, v in changes.items()]
    return f"{parts.path}?{urlencode(query, quote_via=quote)}"


def _normalise_codebase(codebase: str) -> str:
    return codebase.strip().strip("/") + "/"


__all__ = [
    "API_PATH",
    "FORWARD_ONLY",
    "LIMITS",
    "MAX_PAGE_SIZE",
    "ConnectWiseClient",
    "Credentials",
    "ListPage",
    "email_of",
    "id_chunks",
    "json_amount",
    "next_link",
    "site_root",
]
