"""What every part of the QBO emulator shares: money, company-local time, and Intuit's faults.

Sources (tags as in ``research/accounting-apis.md`` §1): the fault envelope
``{"Fault":{"Error":[{"Message","Detail","code","element"}],"type":"ValidationFault"},"time":…}``
and the codes used here come from Intuit's error-codes page (developer.intuit.com/app/developer/qbo
/docs/develop/troubleshooting/error-codes, research §1.9); the lower-case 401/403 bodies from
``routablehq/python-quickbooks#250`` and ``mcohen01/node-quickbooks#154``; the XML throttle body
from ``routablehq/python-quickbooks#43``/``#83`` and ``ruckus/quickbooks-ruby#348``; timestamps
"local time with offset" (``2015-08-10T11:44:02.957-07:00``) from Intuit's samples (research §1.2).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from decimal import Decimal, InvalidOperation
from typing import Any
from xml.sax.saxutils import escape

from syncd.sandbox.routing import Response

Row = dict[str, Any]

PACIFIC_DAYLIGHT = dt.timezone(dt.timedelta(hours=-7))
"""Default company time zone: Intuit's samples carry ``-07:00`` (research §1.2)."""

CENT = Decimal("0.01")

# -- money ----------------------------------------------------------------------------------------


def dec(value: Any, field: str = "Amount") -> Decimal:
    """A request amount as ``Decimal``: JSON numbers, or strings (python-quickbooks' DecimalEncoder
    sends ``Decimal`` as a string, research §1.12). Anything else is a 2010-style fault."""
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise QBOFault(2010, f"Invalid number for {field}: {value!r}", element=field)
    try:
        out = Decimal(str(value))
    except InvalidOperation:
        raise QBOFault(2010, f"Invalid number for {field}: {value!r}", element=field) from None
    if not out.is_finite():
        raise QBOFault(2010, f"Invalid number for {field}: {value!r}", element=field)
    return out


def num(value: Decimal) -> int | float:
    """Money as QBO prints it: a JSON number, integral values without a fraction (``0``)."""
    q = value.quantize(CENT)
    return int(q) if q == q.to_integral_value() else float(q)


# -- time -----------------------------------------------------------------------------------------


def local_seconds(at: dt.datetime, tz: dt.tzinfo) -> str:
    """``MetaData`` stamps: whole seconds, company-local, with offset (``…T11:44:02-07:00``)."""
    return at.astimezone(tz).isoformat(timespec="seconds")


def local_millis(at: dt.datetime, tz: dt.tzinfo) -> str:
    """The response ``time`` field: milliseconds and offset (``…T11:44:02.957-07:00``)."""
    return at.astimezone(tz).isoformat(timespec="milliseconds")


@functools.lru_cache(maxsize=4096)
def _parse_instant(text: str, tz: dt.tzinfo) -> float | None:
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.timestamp()


def parse_instant(text: str, tz: dt.tzinfo) -> float | None:
    """Epoch seconds of an ISO date or date-time; a naive value is company-local (emulator
    choice, UNVERIFIED); None when unparseable."""
    return _parse_instant(text.strip(), tz)


# -- faults ---------------------------------------------------------------------------------------

MESSAGES: dict[int, str] = {
    # Message per code, from Intuit's error-codes page (research §1.9) unless marked.
    500: "Unsupported Operation",
    610: "Object Not Found",
    2010: "Request has invalid or unsupported property",
    2020: "Required param missing, need to supply the required value for the API",
    2050: "String length is either shorter or longer than supported by specification",
    2170: "Invalid Enumeration",
    2500: "Invalid Reference Id",
    4000: "Error parsing query",  # node-quickbooks#56, QuickBooks-V3-PHP-SDK#8
    4001: "Invalid query",  # UNVERIFIED wording for QueryValidationError
    5010: "Stale Object Error",
    6000: "A business validation error has occurred while processing your request",
    6140: "Duplicate Document Number Error",
    6240: "Duplicate Name Exists Error",
    6540: "Deposited Transaction cannot be changed",
    10000: "An application error has occurred while processing your request",
}


class QBOFault(Exception):
    """A QBO ``Fault`` raised anywhere in the emulator; handlers turn it into the JSON envelope
    (HTTP 400 for validation faults, research §1.9) and batch turns it into an item ``Fault``."""

    def __init__(
        self,
        code: int,
        detail: str,
        *,
        element: str = "",
        message: str | None = None,
        status: int = 400,
        kind: str = "ValidationFault",
    ) -> None:
        self.code = code
        self.detail = detail
        self.element = element
        self.message = message or MESSAGES.get(code, "Validation Exception")
        self.status = status
        self.kind = kind
        super().__init__(f"{code}: {detail}")

    def fault(self) -> Row:
        """The ``Fault`` object (without ``time``), as in a batch item or a response."""
        return {
            "Error": [
                {
                    "Message": self.message,
                    "Detail": self.detail,
                    "code": str(self.code),
                    "element": self.element,
                }
            ],
            "type": self.kind,
        }

    def response(self, time: str) -> Response:
        return Response.json_body({"Fault": self.fault(), "time": time}, self.status)


def business(detail: str, element: str = "") -> QBOFault:
    """A 6000 business-validation fault; ``Detail`` starts "Business Validation Error: " as in
    Intuit's bodies (``mcohen01/node-quickbooks#48``, ``routablehq/python-quickbooks#391``)."""
    return QBOFault(6000, f"Business Validation Error: {detail}", element=element)


def required(name: str) -> QBOFault:
    """2020 as seen for deposits (``routablehq/python-quickbooks#329``): "Required parameter
    Line.DepositLineDetail.AccountRef is missing in the request"."""
    return QBOFault(2020, f"Required parameter {name} is missing in the request", element=name)


def not_found(entity: str, rid: Any) -> QBOFault:
    """610 Object Not Found, with the page's detail text (research §1.9: inactive or deleted)."""
    return QBOFault(
        610,
        "Object Not Found : Something you're trying to use has been made inactive. Check the "
        f"fields with accounts, customers, items, vendors or employees. ({entity} Id={rid})",
        element=entity,
    )


def too_long(field: str, limit: int, supplied: int) -> QBOFault:
    return QBOFault(
        2050,
        f"String length specified does not match the supported length. Min:0 Max:{limit} "
        f"supported. Supplied length:{supplied}",
        element=field,
    )


def auth_fault_body(
    status: int, code: str, name: str, detail: str | None, kind: str, millis: int
) -> bytes:
    """The lower-case envelope Intuit's gateway answers 401/403 with (python-quickbooks#250
    for 401 ``AuthenticationFailed`` 3200 type AUTHENTICATION; node-quickbooks#154 for 403
    ``AuthorizationFailed`` 3100 type SERVICE); ``time`` is epoch milliseconds there."""
    body: dict[str, Any] = {
        "warnings": None,
        "intuitObject": None,
        "fault": {
            "error": [
                {
                    "message": f"message={name}; errorCode=00{code}; statusCode={status}",
                    "detail": detail,
                    "code": code,
                    "element": None,
                }
            ],
            "type": kind,
        },
        "report": None,
        "queryResponse": None,
        "batchItemResponse": [],
        "attachableResponse": [],
        "syncErrorResponse": None,
        "requestId": None,
        "time": millis,
        "status": None,
        "cdcresponse": [],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def unauthorized(detail: str, millis: int) -> Response:
    """401 AuthenticationFailed (3200); python-quickbooks raises before parsing it (research
    §1.9). ``WWW-Authenticate`` is RFC 6750's; Intuit's exact header is UNVERIFIED."""
    return Response(
        401,
        auth_fault_body(401, "3200", "AuthenticationFailed", detail, "AUTHENTICATION", millis),
        {
            "Content-Type": "application/json;charset=UTF-8",
            "WWW-Authenticate": 'Bearer realm="Intuit", error="invalid_token"',
        },
    )


def forbidden(millis: int) -> Response:
    """403 AuthorizationFailed (3100): the token's company is not this URL's (wrong realm)."""
    return Response(
        403,
        auth_fault_body(403, "3100", "AuthorizationFailed", None, "SERVICE", millis),
        {"Content-Type": "application/json;charset=UTF-8"},
    )


def throttled(time: str, headers: dict[str, str] | None = None) -> Response:
    """429 ThrottleExceeded, XML even when JSON was asked for (research §1.9)."""
    xml = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{escape(time)}">'
        '<Fault type="SERVICE"><Error code="3001">'
        "<Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>"
        "<Detail>The request limit was reached.  Try again later</Detail>"
        "</Error></Fault></IntuitResponse>"
    )
    return Response(429, xml.encode(), {"Content-Type": "application/xml", **(headers or {})})


__all__ = [
    "CENT",
    "MESSAGES",
    "PACIFIC_DAYLIGHT",
    "QBOFault",
    "Row",
    "auth_fault_body",
    "business",
    "dec",
    "forbidden",
    "local_millis",
    "local_seconds",
    "not_found",
    "num",
    "parse_instant",
    "required",
    "throttled",
    "too_long",
    "unauthorized",
]
