"""QuickBooks Online Accounting API v3 emulator (with Intuit's OAuth server), on loopback.

It follows the vendor's public behaviour as collected in ``research/accounting-apis.md`` §1 and
implements that section's emulator checklist (§1.13); each behaviour cites its source beside the
code. Source tags: [PQB] ej2/python-quickbooks, [IOA] intuit/oauth-pythonclient, [TQB]
singer-io/tap-quickbooks, [I-*] developer.intuit.com / blogs.intuit.com pages, plus the GitHub
issues named inline. Behaviours the sources do not settle are emulator choices, listed in
``UNVERIFIED``.

Modules: ``app`` (the ``QuickBooksSandbox`` and its routes), ``oauth`` (discovery, authorize,
token, revoke, bearer check), ``query`` (the query language), ``entities`` (tables, write rules,
invoice/payment/deposit arithmetic), ``seed`` (deterministic data), ``throttle`` (per-realm
limits), ``webhooks`` (payloads and ``intuit-signature``), ``common`` (faults, money, time).

    with QuickBooksSandbox(seed=1, throttle=False) as qbo:
        requests.get(qbo.company_url + "/invoice/130", headers=qbo.headers())
"""

from connectors.quickbooks_online.sandbox.app import (
    CDC_MAX_DAYS,
    CDC_MAX_OBJECTS,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REALM_ID,
    DEFAULT_VERIFIER_TOKEN,
    MAX_BATCH_ITEMS,
    MIN_MINOR_VERSION,
    UNVERIFIED,
    QuickBooksSandbox,
    start,
)
from connectors.quickbooks_online.sandbox.common import QBOFault
from connectors.quickbooks_online.sandbox.entities import UNDEPOSITED_FUNDS
from connectors.quickbooks_online.sandbox.seed import card_fee
from connectors.quickbooks_online.sandbox.webhooks import (
    SIGNATURE_HEADER,
    ChangeEvent,
    cloudevents_payload,
    legacy_payload,
    sign,
)

__all__ = [
    "CDC_MAX_DAYS",
    "CDC_MAX_OBJECTS",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_REALM_ID",
    "DEFAULT_VERIFIER_TOKEN",
    "MAX_BATCH_ITEMS",
    "MIN_MINOR_VERSION",
    "SIGNATURE_HEADER",
    "UNDEPOSITED_FUNDS",
    "UNVERIFIED",
    "ChangeEvent",
    "QBOFault",
    "QuickBooksSandbox",
    "card_fee",
    "cloudevents_payload",
    "legacy_payload",
    "sign",
    "start",
]
