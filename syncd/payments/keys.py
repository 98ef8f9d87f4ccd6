"""Deterministic names for one push: the idempotency key and the marker written into the vendor.

Both derive from (payment id, the payment's creation instant, target connection, invoice number,
kind), so a retry, a takeover by another worker or a re-run after a crash computes the same ones;
they are also stored on the push row. The creation instant guards against ids reused after a
store is restored or recreated: without it, payment 7 of a new store would carry the marker of
payment 7 of the old one, and a marker search could mistake an old vendor record for ours.

Sizes fit the tightest fields we know: the marker is ``syncd:`` plus 15 base32 characters
(21 characters, 75 bits; QuickBooks ``PaymentRefNum`` holds 21, ConnectWise ``appliedBy`` has an
unpublished limit), searched only among one invoice's payments; the key is ``syncd-`` plus 32
characters (38; QuickBooks ``requestid`` takes 50, Xero's ``Idempotency-Key`` 128).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass

MARKER_PREFIX = "syncd:"
KEY_PREFIX = "syncd-"


@dataclass(frozen=True)
class PushNames:
    key: str
    marker: str


def push_names(
    payment_id: int,
    payment_created_at: dt.datetime,
    connection: str,
    invoice_number: str,
    kind: str,
) -> PushNames:
    """The key and marker of one payment push (``kind`` is ``push`` or ``reverse``)."""
    created = payment_created_at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    seed = "\x1f".join(("v1", str(payment_id), created, connection, invoice_number, kind))
    return PushNames(
        key=KEY_PREFIX + _digest("key", seed)[:32],
        marker=MARKER_PREFIX + _digest("marker", seed)[:15],
    )


def deposit_names(payout_id: int, payout_created_at: dt.datetime, connection: str) -> PushNames:
    """The key and marker of a payout's deposit in ``connection`` (push kind ``deposit``).

    Seeded apart from payment pushes (``payout`` and the payout's own id and creation instant),
    so a deposit can never share a key or a marker with a payment.
    """
    created = payout_created_at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    seed = "\x1f".join(("v1", "payout", str(payout_id), created, connection, "deposit"))
    return PushNames(
        key=KEY_PREFIX + _digest("key", seed)[:32],
        marker=MARKER_PREFIX + _digest("marker", seed)[:15],
    )


def _digest(purpose: str, seed: str) -> str:
    raw = hashlib.sha256(f"{purpose}\x1e{seed}".encode()).digest()
    return base64.b32encode(raw).decode("ascii").rstrip("=")


__all__ = ["KEY_PREFIX", "MARKER_PREFIX", "PushNames", "deposit_names", "push_names"]
