"""QuickBooks Online's error table: what each answer means for the caller, pinned by one test.

Intuit answers in three shapes (research/accounting-apis.md 1.9):

- ``{"Fault": {"Error": [{"Message", "Detail", "code", "element"}], "type": "ValidationFault"}}``
  with HTTP 400 for refused content, 5010 stale objects and query errors (Intuit error-codes
  page);
- the gateway's lower-case ``{"fault": {"error": [{"message", "detail", "code"}]}}`` for 401
  (3200 AuthenticationFailed) and 403 (3100 AuthorizationFailed: the token's company is not the
  URL's realm) (routablehq/python-quickbooks#250; mcohen01/node-quickbooks#154);
- XML, even when JSON was asked for, for the 429 ``ThrottleExceeded`` (code 3001) and some auth
  faults (python-quickbooks#43/#83; ruckus/quickbooks-ruby#348). Two fields are read from it with
  a regular expression: no XML parser is run on a body we did not ask for.

Two tables, because one code means different things on a read and on a write:

- ``STATUS_MAP`` and ``VENDOR_CODES`` go to ``HttpClient`` and hold for every request. A 400 on a
  query is our bug (``FatalError``).
- ``WRITE_REFUSALS`` is applied by the client to creates (and to batch items): there a
  validation fault means Intuit refused *this* record and wrote nothing, so the outbox parks it
  for a person (``SkippableError``) and goes on; 5010 (someone else changed the object) is worth a
  re-read and a retry (``RetriableError``).

A 429 carries no ``Retry-After`` (none documented, research 1.10); Intuit's advice is to wait 60 s,
so ``ThrottleExceeded`` defaults its ``retry_after`` to that (tap-quickbooks sleeps 60 s too).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

import requests

from syncd.errors import (
    AuthError,
    ConnectorError,
    FatalError,
    RateLimited,
    RetriableError,
    SkippableError,
    UncertainWrite,
)
from syncd.http import json_or_none

THROTTLE_WAIT: Final = 60.0  # seconds: "on 429 wait 60 s" (Intuit limits page, research 1.10)


class ThrottleExceeded(RateLimited):
    """Intuit's 429 (code 3001). Without a ``Retry-After`` it asks for Intuit's 60 seconds."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = 429,
        code: str | None = None,
    ) -> None:
        wait = THROTTLE_WAIT if retry_after is None else retry_after
        super().__init__(message, retry_after=wait, status=status, code=code)


STATUS_MAP: Final[Mapping[int, type[ConnectorError]]] = MappingProxyType(
    {
        400: FatalError,  # a query Intuit cannot parse or validate: our bug; writes see below
        401: AuthError,  # 3200: the client refreshes the token once and retries, then gives up
        403: AuthError,  # 3100: the token belongs to another company (wrong realm_id)
        429: ThrottleExceeded,
        # 5xx: RetriableError (UncertainWrite on writes): syncd.http defaults.
    }
)

VENDOR_CODES: Final[Mapping[str, type[ConnectorError]]] = MappingProxyType(
    {
        "3001": ThrottleExceeded,  # ThrottleExceeded, whatever the status (formerly a 403)
        "3200": AuthError,  # AuthenticationFailed
        "3100": AuthError,  # AuthorizationFailed
        "100": AuthError,  # "General Authentication Error" (XML variant)
        "120": AuthError,  # Authorization Failure
    }
)

WRITE_REFUSALS: Final[Mapping[str, type[ConnectorError]]] = MappingProxyType(
    {
        "610": SkippableError,  # Object Not Found: the invoice or customer is deleted or inactive
        "2010": SkippableError,  # Request has invalid or unsupported property (a value of ours)
        "2020": SkippableError,  # Required param missing
        "2050": SkippableError,  # String length outside the specification
        "2170": SkippableError,  # Invalid Enumeration
        "2500": SkippableError,  # Invalid Reference Id (an account or method that is gone)
        "6000": SkippableError,  # business validation (e.g. more than the invoice's balance)
        "6140": SkippableError,  # Duplicate Document Number
        "6210": SkippableError,  # Account Period Closed: a person must pick another date
        "6240": SkippableError,  # Duplicate Name Exists
        "6540": SkippableError,  # Deposited Transaction cannot be changed
        "5010": RetriableError,  # Stale Object: re-read the SyncToken and try again
    }
)

_XML_CODE: Final = re.compile(r"<Error\b[^>]*\bcode=\"([^\"]+)\"")
_XML_TEXT: Final = re.compile(r"<(Message|Detail)>([^<]*)</\1>")


def first_error(body: Any) -> Mapping[str, Any] | None:
    """The first error of a ``Fault``/``fault`` envelope, or of a batch item's ``Fault``."""
    if not isinstance(body, Mapping):
        return None
    fault = body.get("Fault", body.get("fault", body))
    errors = fault.get("Error", fault.get("error")) if isinstance(fault, Mapping) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
        return errors[0]
    return None


def code_of(response: requests.Response) -> str | None:
    """Intuit's error code (``"5010"``), from the JSON envelope of either case or the XML."""
    error = first_error(json_or_none(response))
    if error is not None:
        return _code(error.get("code"))
    match = _XML_CODE.search(response.text) if response.content else None
    return _code(match.group(1)) if match else None


def message_of(response: requests.Response) -> str | None:
    """``Message: Detail`` of the first error; the detail names the field or the limit."""
    error = first_error(json_or_none(response))
    if error is not None:
        return describe(error)
    if not response.content:
        return None
    parts = {tag: html.unescape(text).strip() for tag, text in _XML_TEXT.findall(response.text)}
    return _join(parts.get("Message"), parts.get("Detail")) or response.text[:200]


def describe(error: Mapping[str, Any]) -> str | None:
    message = error.get("Message", error.get("message"))
    detail = error.get("Detail", error.get("detail"))
    return _join(
        message if isinstance(message, str) else None, detail if isinstance(detail, str) else None
    )


def item_error(fault: Mapping[str, Any], *, where: str) -> ConnectorError:
    """A batch item's ``Fault`` as the error a single create would have raised.

    A ``SystemFault`` (or an unknown type) in a create item is an ``UncertainWrite``: Intuit does
    not say whether the item was saved before it failed.
    """
    error = first_error(fault) or {}
    code = _code(error.get("code"))
    kind = str(fault.get("type", ""))
    message = f"{where} [{code}] {describe(error) or kind}" if code else f"{where}: {kind}"
    cls = VENDOR_CODES.get(code or "") or WRITE_REFUSALS.get(code or "")
    if cls is None:
        if kind == "ValidationFault":
            cls = FatalError  # a validation code we do not know: stop and tell, do not guess
        elif kind.lower().startswith("authentication"):
            cls = AuthError
        else:
            cls = UncertainWrite
    return cls(message, status=None, code=code)


def _code(value: Any) -> str | None:
    """``"003001"`` and ``3001`` alike as ``"3001"``."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value).strip().lstrip("0") or "0"


def _join(message: str | None, detail: str | None) -> str | None:
    if message and detail and detail != message:
        return f"{message}: {detail}"
    return message or detail


__all__ = [
    "STATUS_MAP",
    "THROTTLE_WAIT",
    "VENDOR_CODES",
    "WRITE_REFUSALS",
    "ThrottleExceeded",
    "code_of",
    "describe",
    "first_error",
    "item_error",
    "message_of",
]
