"""ConnectWise's error table: what each answer means for the caller, pinned by one test.

Statuses are from ConnectWise's "PSA API Requests" best-practice page (research/psa-apis.md 1.7):
400 malformed, 401 bad auth, 403 security role, 404 not found ("on cloud … you may have incorrect
authentication"), 409 conflict, 429 with ``Retry-After``, 500 "retry; some are timeouts". Error
bodies are ``{"code", "message", "errors": [{"code", "message", "resource", "field"}]}``
(pyconnectwise ``connectwise_client._make_request``; ConnectWiseManageAPI
``Invoke-CWMWebRequest.ps1``).

Two tables, because one vendor code means different things on a read and on a write:

- ``STATUS_MAP`` and ``VENDOR_CODES`` go to ``HttpClient`` and hold for every request;
- ``PAYMENT_REFUSALS`` is applied by the client to a payment POST only: there ``InvalidObject``
  (amount above the balance, too many decimals, a closed invoice) and ``ObjectExists`` mean the
  vendor refused *this payment* and wrote nothing, so the outbox parks it for a person
  (``SkippableError``) and pushes the others. On a GET the same ``InvalidObject`` means our query
  is wrong (a 400: ``FatalError``).

A 404 is first taken as a moved codebase (the client re-discovers it once, as django-connectwise
``fetch_resource`` does) and, when it persists, as the cloud's answer to bad keys or a missing
record: see ``ConnectWiseClient.explain_not_found``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import requests

from syncd.errors import AuthError, ConnectorError, FatalError, SkippableError
from syncd.http import json_or_none

STATUS_MAP: Final[Mapping[int, type[ConnectorError]]] = MappingProxyType(
    {
        400: FatalError,  # our request is malformed: a bug, retrying cannot help
        401: AuthError,  # company/public/private key or clientId rejected
        403: AuthError,  # the API member's security role lacks a permission: a person must act
        404: FatalError,  # after one codebase re-discovery (see module docstring)
        409: FatalError,  # a conflict on a read or an unknown write: stop and tell
        # 429 RateLimited, 5xx RetriableError (UncertainWrite on writes): syncd.http defaults.
    }
)

VENDOR_CODES: Final[Mapping[str, type[ConnectorError]]] = MappingProxyType(
    {
        "ApiFindCondition": FatalError,  # our conditions name an unknown field: a bug
        "Unauthorized": AuthError,
    }
)

PAYMENT_REFUSALS: Final[Mapping[str, type[ConnectorError]]] = MappingProxyType(
    {
        "InvalidObject": SkippableError,  # the payment's content was refused; nothing written
        "ObjectExists": SkippableError,  # a conflicting record exists; nothing written
    }
)


def code_of(response: requests.Response) -> str | None:
    """The vendor's error code: the body's top-level ``code``."""
    body = json_or_none(response)
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        return str(body["code"])
    return None


def message_of(response: requests.Response) -> str | None:
    """``message`` plus the first detail (``errors[0].message``), which names the bad field."""
    body = json_or_none(response)
    if not isinstance(body, dict):
        return response.text[:200] if response.content else None
    message = body.get("message") if isinstance(body.get("message"), str) else None
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        detail = errors[0].get("message")
        if isinstance(detail, str) and detail:
            message = f"{message} ({detail})" if message else detail
    return message


__all__ = ["PAYMENT_REFUSALS", "STATUS_MAP", "VENDOR_CODES", "code_of", "message_of"]
