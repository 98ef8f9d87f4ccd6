"""Literals for the query languages syncd speaks: one tested function per dialect.

Connectors interpolate values into vendor queries only through these functions, never through
f-strings: a customer called ``O'Brien`` must not end a QuickBooks literal early, and a name with
``"`` must not end a ConnectWise condition. Each function returns text that is ready to drop into a
query (quotes included) or, for Autotask, a JSON-ready dict. URL encoding is *not* done here: pass
the finished query as a request parameter and let the HTTP layer encode it.

What each dialect refuses, and why (a ``ValueError`` naming the dialect; a value of the wrong type,
such as ``float``, is a ``TypeError``):

==================  ===========================================================================
every dialect       NUL, lone surrogates (cannot be sent as UTF-8), naive datetimes (syncd never
                    guesses a zone), NaN/infinite decimals, ``float`` (money is never binary).
QuickBooks query    all C0 controls and DEL: the grammar has no escape for them and Intuit documents
                    no behaviour; what we search by (ids, numbers, names, markers) needs none.
ConnectWise         all C0 controls and DEL, for the same reason (only ``\\"`` and ``\\\\`` are
                    known escapes; an unescaped newline's effect on the condition parser is
                    undocumented).
Autotask filter     NUL only: values travel as JSON, which escapes every other control.
OData ``$filter``   NUL only: values travel percent-encoded, which carries every other control.
==================  ===========================================================================

Sources (see ``research/``): QuickBooks query language, accounting-apis.md §1.3 (single quotes,
backslash escapes ``'``, "use backslash to escape special characters", blogs.intuit.com
2014/03/20, so a literal backslash is escaped as ``\\\\`` too); ConnectWise conditions,
psa-apis.md §1.4 (double quotes, ``\\"``/``\\\\`` escapes [secondary], ``[yyyy-MM-ddTHH:mm:ssZ]``
datetimes, bare ``true``/``false``/``null``); Autotask query filters, psa-apis.md §2.4 (op list,
``and``/``or`` groups with ``items``, ``udf: true``, ≤ 500 records, ≤ 500 ``or`` conditions, one UDF
per query); Business Central OData, more-apis.md §4.2 (``'`` doubled, bare ``…Z`` datetimes).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final, Literal

QBO: Final = "QuickBooks query"
CW: Final = "ConnectWise conditions"
AT: Final = "Autotask filter"
ODATA: Final = "OData $filter"

_CONTROLS: Final = re.compile(r"[\x00-\x1f\x7f]")
_NUL: Final = re.compile(r"\x00")
_SURROGATE: Final = re.compile(r"[\ud800-\udfff]")

# Control characters each dialect refuses; tests build their alphabets from these.
REFUSED_CHARACTERS: Final[Mapping[str, frozenset[str]]] = {
    QBO: frozenset(chr(c) for c in [*range(0x20), 0x7F]),
    CW: frozenset(chr(c) for c in [*range(0x20), 0x7F]),
    AT: frozenset("\x00"),
    ODATA: frozenset("\x00"),
}
_REFUSED_PATTERN: Final[Mapping[str, re.Pattern[str]]] = {
    QBO: _CONTROLS,
    CW: _CONTROLS,
    AT: _NUL,
    ODATA: _NUL,
}


def _text(value: object, dialect: str) -> str:
    """``value`` as text the dialect can carry, or a ValueError that says where it breaks."""
    if not isinstance(value, str):
        raise TypeError(f"{dialect}: expected str, got {type(value).__name__}")
    bad = _REFUSED_PATTERN[dialect].search(value)
    if bad is not None:
        char = bad.group()
        label = "NUL" if char == "\x00" else "a control character"
        raise ValueError(
            f"{dialect}: value contains {label} (U+{ord(char):04X}) at offset {bad.start()}, "
            "which this dialect cannot carry"
        )
    bad = _SURROGATE.search(value)
    if bad is not None:
        raise ValueError(
            f"{dialect}: value contains a lone surrogate (U+{ord(bad.group()):04X}) at offset "
            f"{bad.start()}, which cannot be sent as UTF-8"
        )
    return value


def _aware_utc(value: object, dialect: str) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise TypeError(f"{dialect}: expected datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{dialect}: naive datetime {value.isoformat()}: pass a timezone-aware datetime "
            "(syncd never guesses a zone)"
        )
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError(f"{dialect}: {value.isoformat()} is out of range in UTC") from None


def _seconds_utc(value: object, dialect: str) -> str:
    """``yyyy-MM-ddTHH:mm:ssZ``, floored to the second.

    Flooring widens a ``>=`` window by under a second, which the look-back absorbs; rounding up
    could skip a record changed in that second.
    """
    naive = _aware_utc(value, dialect).replace(tzinfo=None)
    return naive.isoformat(timespec="seconds") + "Z"  # isoformat pads years < 1000; strftime not


def _number(value: int | Decimal, dialect: str) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{dialect}: {value} is not a finite number")
        return format(value, "f")  # never exponent notation, which no dialect documents
    return str(value)


def _refuse_float(value: object, dialect: str) -> None:
    if isinstance(value, float):
        raise TypeError(
            f"{dialect}: float {value!r} refused: pass Decimal or int (never binary money)"
        )


def _identifier(name: object, pattern: re.Pattern[str], dialect: str, what: str = "field") -> str:
    if not isinstance(name, str) or not pattern.fullmatch(name):
        raise ValueError(f"{dialect}: {what} name {name!r} is not a valid identifier")
    return name


# --- QuickBooks Online --------------------------------------------------------------------------

_QBO_IDENT: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*")
_QBO_OPS: Final = frozenset({"=", "<", ">", "<=", ">=", "LIKE", "IN"})


def qbo_field(name: str) -> str:
    """An entity or property name (``Invoice``, ``MetaData.LastUpdatedTime``), validated."""
    return _identifier(name, _QBO_IDENT, QBO)


def qbo_string(value: str) -> str:
    """``'…'`` with ``\\`` and ``'`` backslash-escaped, per Intuit's query docs."""
    text = _text(value, QBO)
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def qbo_datetime(value: dt.datetime) -> str:
    """``'2024-05-01T12:00:00+00:00'``: ISO 8601 in UTC with an explicit offset, to the second."""
    utc = _aware_utc(value, QBO).replace(microsecond=0)
    return "'" + utc.isoformat() + "'"


def qbo_date(value: dt.date) -> str:
    """``'2024-05-01'`` for date properties such as ``TxnDate`` and ``DueDate``."""
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise TypeError(f"{QBO}: expected date, got {type(value).__name__}")
    return "'" + value.isoformat() + "'"


def qbo_like_pattern(
    value: str, match: Literal["contains", "prefix", "suffix"] = "contains"
) -> str:
    """A LIKE pattern (unquoted) around untrusted text.

    QBO documents ``%`` as the only wildcard and no way to escape it, so text holding ``%`` is
    refused rather than silently matched as a wildcard. Pass the result as a ``LIKE`` value.
    """
    text = _text(value, QBO)
    if "%" in text:
        raise ValueError(f"{QBO}: LIKE text may not contain '%' (QBO has no escape for it)")
    return {"contains": f"%{text}%", "prefix": f"{text}%", "suffix": f"%{text}"}[match]


def qbo_value(value: object) -> str:
    """Any supported Python value as a QBO literal: str, bool, int, Decimal, datetime, date.

    ``None`` is refused: the query language has no null literal.
    """
    _refuse_float(value, QBO)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return _number(value, QBO)
    if isinstance(value, str):
        return qbo_string(value)
    if isinstance(value, dt.datetime):
        return qbo_datetime(value)
    if isinstance(value, dt.date):
        return qbo_date(value)
    raise TypeError(f"{QBO}: cannot express {type(value).__name__} {value!r} as a literal")


def qbo_select(
    entity: str,
    where: Iterable[tuple[str, str, object]] = (),
    order_by: str | Sequence[str] = (),
    start_position: int | None = None,
    max_results: int | None = None,
    *,
    count: bool = False,
) -> str:
    """A complete ``SELECT`` statement.

    ``where`` holds ``(property, op, value)`` triples joined with ``AND`` (QBO has no ``OR``); op
    is one of ``= < > <= >= LIKE IN``; an ``IN`` value is a sequence. A ``LIKE`` value is a pattern
    whose ``%`` are wildcards: build it with :func:`qbo_like_pattern`. ``order_by`` items are
    ``"Prop"`` or ``"Prop DESC"``. ``STARTPOSITION`` is 1-based, ``MAXRESULTS`` at most 1000.
    """
    parts = ["SELECT", "COUNT(*)" if count else "*", "FROM", qbo_field(entity)]
    conditions = []
    for prop, op, value in where:
        norm = op.strip().upper()
        if norm not in _QBO_OPS:
            raise ValueError(
                f"{QBO}: unknown operator {op!r} (known: {', '.join(sorted(_QBO_OPS))})"
            )
        if norm == "IN":
            if isinstance(value, str | bytes) or not isinstance(value, Iterable):
                raise TypeError(f"{QBO}: IN needs a sequence of values for {prop!r}")
            items = [qbo_value(v) for v in value]
            if not items:
                raise ValueError(f"{QBO}: IN needs at least one value for {prop!r}")
            literal = "(" + ", ".join(items) + ")"
        elif norm == "LIKE":
            if not isinstance(value, str):
                raise TypeError(f"{QBO}: LIKE needs a str pattern for {prop!r}")
            literal = qbo_string(value)
        else:
            literal = qbo_value(value)
        conditions.append(f"{qbo_field(prop)} {norm} {literal}")
    if conditions:
        parts += ["WHERE", " AND ".join(conditions)]
    orders = [order_by] if isinstance(order_by, str) else list(order_by)
    if orders:
        rendered = []
        for item in orders:
            prop, _, direction = item.strip().partition(" ")
            direction = direction.strip().upper()
            if direction not in ("", "ASC", "DESC"):
                raise ValueError(f"{QBO}: order direction {direction!r} is not ASC or DESC")
            rendered.append(qbo_field(prop) + (f" {direction}" if direction else ""))
        parts += ["ORDERBY", ", ".join(rendered)]
    if start_position is not None:
        if (
            isinstance(start_position, bool)
            or not isinstance(start_position, int)
            or start_position < 1
        ):
            raise ValueError(f"{QBO}: STARTPOSITION is 1-based, got {start_position!r}")
        parts += ["STARTPOSITION", str(start_position)]
    if max_results is not None:
        if (
            isinstance(max_results, bool)
            or not isinstance(max_results, int)
            or not 1 <= max_results <= 1000
        ):
            raise ValueError(f"{QBO}: MAXRESULTS must be 1..1000, got {max_results!r}")
        parts += ["MAXRESULTS", str(max_results)]
    return " ".join(parts)


# --- ConnectWise Manage conditions --------------------------------------------------------------

_CW_IDENT: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*")
_CW_OPS: Final = frozenset({"=", "!=", "<", "<=", ">", ">=", "contains", "like", "in", "not in"})


def cw_field(name: str) -> str:
    """A condition field (``name``, ``status/id``, ``_info/lastUpdated``), validated."""
    return _identifier(name, _CW_IDENT, CW)


def cw_string(value: str) -> str:
    """``"…"`` with ``\\`` and ``"`` backslash-escaped. ``%`` stays a wildcard under ``like``."""
    text = _text(value, CW)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def cw_datetime(value: dt.datetime) -> str:
    """``[2024-05-01T12:00:00Z]``: UTC, floored to the second."""
    return "[" + _seconds_utc(value, CW) + "]"


def cw_value(value: object) -> str:
    """Any supported value as a condition literal: bool, None, int, Decimal, str, datetime.

    A bare ``date`` is refused: condition fields are datetimes, and which instant a date means is
    the caller's decision.
    """
    _refuse_float(value, CW)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return _number(value, CW)
    if isinstance(value, str):
        return cw_string(value)
    if isinstance(value, dt.datetime):
        return cw_datetime(value)
    if isinstance(value, dt.date):
        raise TypeError(f"{CW}: pass a datetime, not a date ({value}): conditions compare instants")
    raise TypeError(f"{CW}: cannot express {type(value).__name__} {value!r} as a literal")


def cw_condition(field: str, op: str, value: object) -> str:
    """``field op literal``; ``in``/``not in`` take a sequence and render ``(a, b, …)``."""
    norm = " ".join(op.split()).lower()
    if norm not in _CW_OPS:
        raise ValueError(f"{CW}: unknown operator {op!r} (known: {', '.join(sorted(_CW_OPS))})")
    if norm in ("in", "not in"):
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise TypeError(f"{CW}: {norm} needs a sequence of values for {field!r}")
        items = [cw_value(v) for v in value]
        if not items:
            raise ValueError(f"{CW}: {norm} needs at least one value for {field!r}")
        literal = "(" + ",".join(items) + ")"
    else:
        literal = cw_value(value)
    return f"{cw_field(field)} {norm} {literal}"


# --- Autotask REST query filters ----------------------------------------------------------------

_AT_IDENT: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
AT_COMPARISON_OPS: Final = frozenset(
    {"eq", "noteq", "gt", "gte", "lt", "lte", "beginsWith", "endsWith", "contains"}
)
AT_EXISTENCE_OPS: Final = frozenset({"exist", "notExist"})
AT_LIST_OPS: Final = frozenset({"in", "notIn"})
AT_GROUP_OPS: Final = frozenset({"and", "or"})
AT_MAX_RECORDS: Final = 500
AT_MAX_OR_CONDITIONS: Final = 500


def _at_scalar(value: object) -> str | int | bool | float:
    """A filter value as JSON-native data.

    Datetimes use the form django-autotask sends (``%Y-%m-%dT%H:%M:%S.%fZ``, UTC). A Decimal becomes
    a JSON number only when its shortest float text is the same number, so the wire carries
    exactly the value asked for; otherwise it is refused.
    """
    _refuse_float(value, AT)
    if value is None:
        raise ValueError(f"{AT}: null is not a filter value (use op 'notExist')")
    if isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return _text(value, AT)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{AT}: {value} is not a finite number")
        if value == value.to_integral_value():
            return int(value)
        as_float = float(value)
        if Decimal(repr(as_float)) != value:
            raise ValueError(f"{AT}: {value} has more digits than a JSON number can carry exactly")
        return as_float
    if isinstance(value, dt.datetime):
        return _aware_utc(value, AT).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    raise TypeError(f"{AT}: cannot express {type(value).__name__} {value!r} as a filter value")


def at_filter(field: str, op: str, value: object = ..., *, udf: bool = False) -> dict[str, Any]:
    """One condition, e.g. ``at_filter("companyName", "eq", "O'Brien")``.

    ``exist``/``notExist`` take no value; ``in``/``notIn`` take a non-empty sequence. With
    ``udf=True`` the field is a user-defined field's name, which may hold spaces.
    """
    if udf:
        if not isinstance(field, str) or not field.strip():
            raise ValueError(f"{AT}: UDF name must be a non-empty string, got {field!r}")
        _text(field, AT)
    else:
        _identifier(field, _AT_IDENT, AT)
    result: dict[str, Any] = {"op": op, "field": field}
    if op in AT_EXISTENCE_OPS:
        if value is not ...:
            raise ValueError(f"{AT}: op {op!r} takes no value")
    elif op in AT_LIST_OPS:
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise TypeError(f"{AT}: op {op!r} needs a sequence of values for {field!r}")
        items = [_at_scalar(v) for v in value]
        if not items:
            raise ValueError(f"{AT}: op {op!r} needs at least one value for {field!r}")
        result["value"] = items
    elif op in AT_COMPARISON_OPS:
        if value is ...:
            raise ValueError(f"{AT}: op {op!r} needs a value for {field!r}")
        result["value"] = _at_scalar(value)
    else:
        known = sorted(AT_COMPARISON_OPS | AT_EXISTENCE_OPS | AT_LIST_OPS)
        raise ValueError(f"{AT}: unknown op {op!r} (known: {', '.join(known)}; groups: and, or)")
    if udf:
        result["udf"] = True
    return result


def _at_group(op: str, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    if not items:
        raise ValueError(f"{AT}: an {op!r} group needs at least one item")
    for item in items:
        _at_check(item)
    return {"op": op, "items": [dict(item) for item in items]}


def at_and(*items: Mapping[str, Any]) -> dict[str, Any]:
    """``{"op": "and", "items": [...]}``."""
    return _at_group("and", items)


def at_or(*items: Mapping[str, Any]) -> dict[str, Any]:
    """``{"op": "or", "items": [...]}``. Autotask refuses more than 500 ``or`` conditions."""
    group = _at_group("or", items)
    if len(items) > AT_MAX_OR_CONDITIONS:
        raise ValueError(
            f"{AT}: {len(items)} 'or' conditions; Autotask allows {AT_MAX_OR_CONDITIONS}"
        )
    return group


def _at_check(item: Mapping[str, Any]) -> None:
    """Re-validate a filter tree that may have been built by hand or deserialised."""
    if not isinstance(item, Mapping) or "op" not in item:
        raise ValueError(f"{AT}: not a filter: {item!r}")
    op = item["op"]
    if op in AT_GROUP_OPS:
        items = item.get("items")
        if not isinstance(items, list) or not items:
            raise ValueError(f"{AT}: group {op!r} needs a non-empty 'items' list")
        for child in items:
            _at_check(child)
        return
    kwargs = {"udf": bool(item.get("udf", False))}
    if "value" in item:
        at_filter(item.get("field", ""), op, item["value"], **kwargs)
    else:
        at_filter(item.get("field", ""), op, **kwargs)


def _at_walk(items: Iterable[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
    for item in items:
        yield item
        if item["op"] in AT_GROUP_OPS:
            yield from _at_walk(item["items"])


def at_query(
    filters: Sequence[Mapping[str, Any]],
    max_records: int | None = None,
    include_fields: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The body for ``POST …/{Entity}/query`` (or, JSON-encoded, the ``search=`` parameter).

    Top-level filters are and-ed by Autotask. Enforces the documented limits: 1..500 records, at
    most 500 ``or`` conditions, one UDF per query. ``id`` is always added to ``include_fields``,
    since paging past 500 results needs it.
    """
    if not filters:
        raise ValueError(
            f"{AT}: a query needs at least one filter (e.g. at_filter('id', 'gte', 0))"
        )
    for item in filters:
        _at_check(item)
    nodes = list(_at_walk(filters))
    or_count = sum(len(n["items"]) for n in nodes if n["op"] == "or")
    if or_count > AT_MAX_OR_CONDITIONS:
        raise ValueError(
            f"{AT}: {or_count} 'or' conditions; Autotask allows {AT_MAX_OR_CONDITIONS}"
        )
    udfs = {n["field"] for n in nodes if n.get("udf")}
    if len(udfs) > 1:
        raise ValueError(
            f"{AT}: {len(udfs)} UDFs in one query ({', '.join(sorted(udfs))}); Autotask allows 1"
        )
    body: dict[str, Any] = {"filter": [dict(item) for item in filters]}
    if max_records is not None:
        if (
            isinstance(max_records, bool)
            or not isinstance(max_records, int)
            or not 1 <= max_records <= AT_MAX_RECORDS
        ):
            raise ValueError(f"{AT}: MaxRecords must be 1..{AT_MAX_RECORDS}, got {max_records!r}")
        body["MaxRecords"] = max_records
    if include_fields is not None:
        if isinstance(include_fields, str):
            raise TypeError(f"{AT}: include_fields is a sequence of names, not a str")
        names = [_identifier(name, _AT_IDENT, AT) for name in include_fields]
        body["IncludeFields"] = names if "id" in names else ["id", *names]
    return body


# --- OData $filter (Business Central API v2.0) --------------------------------------------------

_ODATA_IDENT: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*")
_ODATA_OPS: Final = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})


def odata_field(name: str) -> str:
    """A property path (``lastModifiedDateTime``, ``customer/number``), validated."""
    return _identifier(name, _ODATA_IDENT, ODATA)


def odata_string(value: str) -> str:
    """``'…'`` with ``'`` doubled (OData ABNF ``SQUOTE-in-string``)."""
    return "'" + _text(value, ODATA).replace("'", "''") + "'"


def odata_datetime(value: dt.datetime) -> str:
    """A bare ``DateTimeOffset`` literal in UTC: ``2025-01-01T00:00:00Z`` (fraction kept if any)."""
    naive = _aware_utc(value, ODATA).replace(tzinfo=None)
    return naive.isoformat(timespec="microseconds" if naive.microsecond else "seconds") + "Z"


def odata_value(value: object) -> str:
    """Any supported value as an OData v4 literal: str, bool, None, int, Decimal, datetime, date,
    UUID (bare, as Business Central ids are ``Edm.Guid``)."""
    _refuse_float(value, ODATA)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return _number(value, ODATA)
    if isinstance(value, str):
        return odata_string(value)
    if isinstance(value, dt.datetime):
        return odata_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{ODATA}: cannot express {type(value).__name__} {value!r} as a literal")


def odata_condition(field: str, op: str, value: object) -> str:
    """``field op literal`` with op one of ``eq ne gt ge lt le``."""
    if op not in _ODATA_OPS:
        raise ValueError(
            f"{ODATA}: unknown operator {op!r} (known: {', '.join(sorted(_ODATA_OPS))})"
        )
    return f"{odata_field(field)} {op} {odata_value(value)}"


__all__ = [
    "AT",
    "AT_COMPARISON_OPS",
    "AT_EXISTENCE_OPS",
    "AT_GROUP_OPS",
    "AT_LIST_OPS",
    "AT_MAX_OR_CONDITIONS",
    "AT_MAX_RECORDS",
    "CW",
    "ODATA",
    "QBO",
    "REFUSED_CHARACTERS",
    "at_and",
    "at_filter",
    "at_or",
    "at_query",
    "cw_condition",
    "cw_datetime",
    "cw_field",
    "cw_string",
    "cw_value",
    "odata_condition",
    "odata_datetime",
    "odata_field",
    "odata_string",
    "odata_value",
    "qbo_date",
    "qbo_datetime",
    "qbo_field",
    "qbo_like_pattern",
    "qbo_select",
    "qbo_string",
    "qbo_value",
]
