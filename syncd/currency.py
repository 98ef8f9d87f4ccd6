"""ISO 4217 currency codes and their minor units, so money can be validated without a network.

Source: ISO 4217 list one (SIX Group, amendment 178). Codes that are not legal tender for invoices
(funds, precious metals, testing codes) are left out on purpose: an invoice in ``XAU`` is a
mapping error, not a currency.
"""

from __future__ import annotations

from decimal import Decimal

from syncd.errors import SkippableError

_TWO_DECIMALS = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN BZD CAD
CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD
HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD
MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON
RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD
TZS UAH USD UYU UZS VES WST XCD XCG YER ZAR ZMW ZWG
"""
_OTHER_DECIMALS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "CLF": 4, "UYW": 4,
}  # fmt: skip

MINOR_UNITS: dict[str, int] = dict.fromkeys(_TWO_DECIMALS.split(), 2) | _OTHER_DECIMALS


def is_currency(code: str) -> bool:
    """True when ``code`` is an ISO 4217 code syncd accepts on an invoice or payment."""
    return code in MINOR_UNITS


def minor_units(code: str) -> int:
    """How many decimals an amount in ``code`` may carry (2 for USD, 0 for JPY, 3 for KWD)."""
    return MINOR_UNITS[code]


def has_valid_precision(amount: Decimal, code: str) -> bool:
    """True when ``amount`` has no more decimals than ``code`` allows (12.345 USD is refused)."""
    if not amount.is_finite():
        return False
    quantum = Decimal(1).scaleb(-MINOR_UNITS[code])
    return amount == amount.quantize(quantum)


def json_amount(amount: Decimal) -> float | int:
    """``amount`` as a JSON number that carries exactly the same value; ``SkippableError`` when no
    JSON number can (vendors' JSON APIs take numbers, and a float must never round money)."""
    if not amount.is_finite():
        raise SkippableError(f"amount {amount} is not a finite number")
    if amount == amount.to_integral_value():
        return int(amount)
    number = float(amount)
    if Decimal(repr(number)) != amount:
        raise SkippableError(f"amount {amount} has more digits than a JSON number carries exactly")
    return number
