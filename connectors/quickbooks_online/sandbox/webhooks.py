"""QBO webhook bodies and their ``intuit-signature``, for tests to POST at the daemon.

- Legacy payload: ``{"eventNotifications":[{"realmId":…,"dataChangeEvent":{"entities":[{"name":
  "Invoice","id":"1234","operation":"Create|Update|Delete|Merge|Void|Emailed","lastUpdated":
  "…Z"}]}}]}`` — ids only, the receiver fetches the entity (blogs.a.intuit.com/2025/11/12/
  upcoming-change-to-webhooks-payload-structure; research §1.11).
- CloudEvents payload: a JSON *array* of ``{"specversion":"1.0","id","source","type":
  "qbo.invoice.created.v1","datacontenttype":"application/json","time","intuitentityid",
  "intuitaccountid","data":{}}`` (same blog; maesn.com). ``source`` value UNVERIFIED.
- Signature: header ``intuit-signature`` = base64(HMAC-SHA256(key=verifier token, msg=raw body))
  (python-quickbooks ``client.validate_webhook_signature``); assumed identical for CloudEvents
  (UNVERIFIED officially).

No sender here: delivery (3 s timeout, retries at 10 s, 20 s, 30 s, 5 m, …) is the caller's.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SIGNATURE_HEADER = "intuit-signature"
OPERATIONS = ("Create", "Update", "Delete", "Merge", "Void", "Emailed")
_PAST = {
    "Create": "created",
    "Update": "updated",
    "Delete": "deleted",
    "Merge": "merged",
    "Void": "voided",
    "Emailed": "emailed",
}


@dataclass(frozen=True)
class ChangeEvent:
    """One entity change, as webhooks report it."""

    entity: str  # "Invoice"
    id: str
    operation: str  # one of OPERATIONS
    at: dt.datetime  # aware


def _utc_millis(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def legacy_payload(realm_id: str, events: Iterable[ChangeEvent]) -> dict[str, Any]:
    entities = [
        {"name": e.entity, "id": e.id, "operation": e.operation, "lastUpdated": _utc_millis(e.at)}
        for e in events
    ]
    return {
        "eventNotifications": [{"realmId": realm_id, "dataChangeEvent": {"entities": entities}}]
    }


def cloudevents_payload(
    realm_id: str, events: Iterable[ChangeEvent], *, ids: Iterable[uuid.UUID] | None = None
) -> list[dict[str, Any]]:
    id_iter = iter(ids) if ids is not None else None
    out = []
    for e in events:
        event_id = next(id_iter) if id_iter is not None else uuid.uuid4()
        out.append(
            {
                "specversion": "1.0",
                "id": str(event_id),
                "source": f"intuit.quickbooks.online/{realm_id}",
                "type": f"qbo.{e.entity.lower()}.{_PAST.get(e.operation, 'updated')}.v1",
                "datacontenttype": "application/json",
                "time": _utc_millis(e.at),
                "intuitentityid": e.id,
                "intuitaccountid": realm_id,
                "data": {},
            }
        )
    return out


def sign(body: bytes, verifier_token: str) -> str:
    """``intuit-signature`` for ``body`` (python-quickbooks validate_webhook_signature)."""
    digest = hmac.new(verifier_token.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def encode(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


__all__ = [
    "OPERATIONS",
    "SIGNATURE_HEADER",
    "ChangeEvent",
    "cloudevents_payload",
    "encode",
    "legacy_payload",
    "sign",
]
