"""QuickBooks Online (Intuit Accounting API v3): connector and loopback emulator (``.sandbox``)."""

from connectors.quickbooks_online.connector import (
    QuickBooksOnlineConnector,
    QuickBooksOnlineSettings,
)
from connectors.quickbooks_online.payments import DepositLine
from connectors.quickbooks_online.webhooks import Change, parse_webhook, verify_webhook

__all__ = [
    "Change",
    "DepositLine",
    "QuickBooksOnlineConnector",
    "QuickBooksOnlineSettings",
    "parse_webhook",
    "verify_webhook",
]
