"""QuickBooks Online webhooks: is this delivery Intuit's, and what changed.

- **Signature** (research/accounting-apis.md 1.11): header ``intuit-signature`` =
  base64(HMAC-SHA256(key = the app's verifier token, message = the raw body)). Compared in
  constant time over the raw bytes. python-quickbooks' ``validate_webhook_signature`` is not used:
  it needs a client instance, re-encodes the body from ``str`` and compares with ``==``.
- **Payloads**: the legacy ``{"eventNotifications": [{"realmId", "dataChangeEvent": {"entities":
  [{"name", "id", "operation", "lastUpdated"}]}}]}`` and the CloudEvents array Intuit is moving
  to (``type`` ``qbo.invoice.created.v1``, ``intuitentityid``, ``intuitaccountid``; deadline
  reported as 31 Jul 2026). Both carry ids only: the daemon pulls the records (or runs an
  incremental pull), so a webhook only makes a sync come sooner, and the periodic CDC and sweep
  still catch what a lost delivery missed (Intuit: "pair with periodic CDC").
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from typing import Any, Final, NamedTuple

SIGNATURE_HEADER: Final = "intuit-signature"
# CloudEvents types use past-tense verbs; the legacy payload's operations are the names we keep.
_OPERATIONS: Final = {
    "created": "Create",
    "updated": "Update",
    "deleted": "Delete",
    "merged": "Merge",
    "voided": "Void",
    "emailed": "Emailed",
}
_ENTITIES: Final = {
    name.lower(): name
    for name in ("Customer", "Invoice", "Payment", "Deposit", "CreditMemo", "SalesReceipt")
}


class Change(NamedTuple):
    """One entity change: ``("Invoice", "130", "Void", "9341…", when)``."""

    entity: str
    id: str
    operation: str  # Create, Update, Delete, Merge, Void, Emailed
    realm_id: str
    at: dt.datetime | None = None


def verify_webhook(body: bytes, signature: str | None, verifier_token: str) -> bool:
    """True when ``signature`` is Intuit's HMAC of exactly ``body`` under ``verifier_token``."""
    if not signature or not verifier_token:
        return False
    digest = hmac.new(verifier_token.encode("utf-8"), body, hashlib.sha256).digest()
    expected = base64.b64encode(digest)
    return hmac.compare_digest(expected, signature.strip().encode("utf-8"))


def parse_webhook(body: bytes) -> list[Change]:
    """The changes a delivery announces, in either payload format; ``ValueError`` if neither."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("QuickBooks webhook: the body is not JSON") from None
    if isinstance(payload, dict) and "eventNotifications" in payload:
        return _legacy(payload["eventNotifications"])
    if isinstance(payload, list):
        return [_cloud_event(event) for event in payload]
    raise ValueError("QuickBooks webhook: neither eventNotifications nor a CloudEvents array")


def _legacy(notifications: Any) -> list[Change]:
    changes: list[Change] = []
    for notification in _list(notifications):
        realm = _text(notification, "realmId")
        event = notification.get("dataChangeEvent")
        for entity in _list(event.get("entities") if isinstance(event, dict) else None):
            changes.append(
                Change(
                    _text(entity, "name"),
                    _text(entity, "id"),
                    _text(entity, "operation"),
                    realm,
                    _instant(entity.get("lastUpdated")),
                )
            )
    return changes


def _cloud_event(event: Any) -> Change:
    if not isinstance(event, dict):
        raise ValueError("QuickBooks webhook: a CloudEvent is not an object")
    parts = _text(event, "type").split(".")  # qbo.invoice.created.v1
    if len(parts) < 3 or parts[0] != "qbo":
        raise ValueError(f"QuickBooks webhook: unknown CloudEvent type {event.get('type')!r}")
    entity = _ENTITIES.get(parts[1], parts[1][:1].upper() + parts[1][1:])
    operation = _OPERATIONS.get(parts[2], parts[2].capitalize())
    return Change(
        entity,
        _text(event, "intuitentityid"),
        operation,
        _text(event, "intuitaccountid"),
        _instant(event.get("time")),
    )


def _list(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError("QuickBooks webhook: expected a list of objects")
    return value


def _text(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise ValueError(f"QuickBooks webhook: {key!r} is missing")
    return value


def _instant(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(dt.UTC) if parsed.tzinfo is not None else None


__all__ = ["SIGNATURE_HEADER", "Change", "parse_webhook", "verify_webhook"]
