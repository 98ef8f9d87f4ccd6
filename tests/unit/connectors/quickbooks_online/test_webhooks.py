"""Webhook deliveries: the ``intuit-signature`` check and both payload formats."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from typing import Any

import pytest

from connectors.quickbooks_online import (
    Change,
    QuickBooksOnlineConnector,
    parse_webhook,
    verify_webhook,
)

TOKEN = "verifier-token-1234"
REALM = "9130"
LEGACY = {
    "eventNotifications": [
        {
            "realmId": REALM,
            "dataChangeEvent": {
                "entities": [
                    {
                        "name": "Invoice",
                        "id": "130",
                        "operation": "Void",
                        "lastUpdated": "2026-09-08T20:52:31.657Z",
                    },
                    {"name": "Customer", "id": "58", "operation": "Update", "lastUpdated": "x"},
                ]
            },
        }
    ]
}
CLOUD = [
    {
        "specversion": "1.0",
        "id": "3b9c1d7e-0000-4000-8000-000000000001",
        "source": "intuit.quickbooks.online",
        "type": "qbo.invoice.deleted.v1",
        "datacontenttype": "application/json",
        "time": "2026-09-08T20:52:31.657Z",
        "intuitentityid": "131",
        "intuitaccountid": REALM,
        "data": {},
    },
    {
        "specversion": "1.0",
        "id": "3b9c1d7e-0000-4000-8000-000000000002",
        "type": "qbo.payment.created.v1",
        "intuitentityid": "900",
        "intuitaccountid": "other-realm",
    },
]


def signed(payload: Any, token: str = TOKEN) -> tuple[bytes, str]:
    body = json.dumps(payload).encode()
    digest = hmac.new(token.encode(), body, hashlib.sha256).digest()
    return body, base64.b64encode(digest).decode()


def test_a_genuine_signature_verifies() -> None:
    body, signature = signed(LEGACY)
    assert verify_webhook(body, signature, TOKEN)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body, sig: (body + b" ", sig),  # body changed in transit
        lambda body, sig: (body, signed(LEGACY, "other-token")[1]),  # another app's token
        lambda body, sig: (body, ""),
        lambda body, sig: (body, None),
        lambda body, sig: (body, "not base64 ☃"),
    ],
)
def test_anything_else_does_not(tamper: Any) -> None:
    body, signature = tamper(*signed(LEGACY))
    assert not verify_webhook(body, signature, TOKEN)


def test_no_verifier_token_verifies_nothing() -> None:
    body, signature = signed(LEGACY, "")
    assert not verify_webhook(body, signature, "")


def test_legacy_payload() -> None:
    body, _ = signed(LEGACY)
    assert parse_webhook(body) == [
        Change(
            "Invoice", "130", "Void", REALM, dt.datetime(2026, 9, 8, 20, 52, 31, 657000, dt.UTC)
        ),
        Change("Customer", "58", "Update", REALM, None),
    ]


def test_cloudevents_payload() -> None:
    body, _ = signed(CLOUD)
    first, second = parse_webhook(body)
    assert first[:4] == ("Invoice", "131", "Delete", REALM)
    assert first.at == dt.datetime(2026, 9, 8, 20, 52, 31, 657000, dt.UTC)
    assert second[:4] == ("Payment", "900", "Create", "other-realm")


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"something": "else"}',
        b'[{"type": "com.other.event"}]',
        b'{"eventNotifications": [{"dataChangeEvent": {"entities": []}}]}',  # no realmId
    ],
)
def test_other_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(ValueError, match="QuickBooks webhook"):
        parse_webhook(body)


def test_the_connector_checks_with_its_token_and_keeps_its_own_realm(make: Any) -> None:
    connector: QuickBooksOnlineConnector = make(verifier_token=TOKEN)
    body, signature = signed(CLOUD)
    assert connector.verify_webhook(body, signature)
    assert [c.id for c in connector.parse_webhook(body)] == ["131"]
    assert not make().verify_webhook(body, signature)  # no verifier_token configured
