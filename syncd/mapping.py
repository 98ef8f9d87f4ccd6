"""Mappings as data: how a vendor payload becomes a canonical record, in a TOML file, not code.

A connector fetches raw JSON; ``mappings/<system>.toml`` says which part of it fills which
canonical field, so a user can fix a mapping (or a connection can override one field) without a
release. Every expression is compiled once at load and every mistake in the file is reported at
load, naming the file, the stream table and the field; a bad *record* is reported at apply time
as a :class:`MappingFailed` naming the file, the field, the record's id and the reason, so the
sync engine can quarantine it and keep the rest of the page.

File syntax, one table per stream (``customers``, ``invoices``, ``payments``; keys are canonical
field names of :mod:`syncd.model`, ``connection`` and ``raw`` are filled by syncd)::

    [custom_fields]              # where this system keeps user-defined fields (optional)
    list = "customFields"        # JMESPath to the list     (Autotask: "userDefinedFields")
    key = "caption"              # the name of each entry   (Autotask: "name")
    value = "value"              # the value of each entry  (QuickBooks: "StringValue")

    [invoices]
    external_id = "id"                                    # a JMESPath expression
    number = "invoiceNumber"
    customer_external_id = "company.id"
    currency = { path = "currency.currencyCode", default = "USD" }
    total = { path = "total", transform = "decimal" }
    balance = "balance"                                   # transform inferred: decimal
    status = { path = "status.name", map = { New = "open", Sent = "open", Paid = "paid" } }
    issued_on = { path = "date", transform = "date" }
    source_updated_at = "_info.lastUpdated"
    # status = { transform = "derive_status", void = "isVoided" }   # from total/balance

    [customers]
    xref = { custom_field = "Accounting ID" }             # looked up via [custom_fields]
    active = "!deletedFlag"

A field is a JMESPath string or a table (inline, or ``[invoices.status]`` when long) with
exactly one source — ``path`` (JMESPath), ``custom_field`` (an entry name, looked up through
``[custom_fields]``; a dedicated lookup rather than a JMESPath filter, because the list/key/value
names differ per system and are declared once) or ``const`` — plus optional ``transform``,
``map`` (enum), ``default``, ``required``, ``format`` (strptime, for ``date``/``datetime``),
``assume_tz`` (``datetime``; an IANA zone for naive source values, e.g. ``"UTC"``). Without
``transform`` the canonical field's type picks one.

Transforms: ``decimal`` (``Decimal(str(x))``: ``0.1`` in JSON is exactly ``0.1``; strings must be
plain decimal numbers; never NaN/inf), ``int``, ``str`` (ints become text: ids), ``bool``
(``true/false/yes/no/1/0``), ``date`` (ISO date, or the date *as written* in an ISO datetime, or
``format``), ``datetime`` (ISO 8601 incl. ``Z``, or ``format``; naive values refused unless
``assume_tz``), ``msdate`` (Microsoft JSON ``/Date(1700000000000+0000)/`` as Xero sends it:
milliseconds since the epoch in UTC; the offset only decides the calendar date of a date field),
``enum`` (through ``map``, or the canonical value itself; an unknown value lists the known ones),
``list`` (a tuple of ids, e.g. ``invoice_external_ids``), ``derive_status`` (``invoices.status``
only: :func:`derive_status` from the mapped total and balance, with optional ``void``/``draft``
JMESPath flags).

``None``, a missing key and a blank string all mean "no value": the ``default`` applies, else a
required field fails the record, else the canonical model's default applies.

A connection may override single fields (``load_mapping(path, overrides={"invoices": {"number":
{"custom_field": "Legacy No"}}})``); an override replaces the whole field spec.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
import types
import typing
from collections import abc as cabc
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.visitor import TreeInterpreter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from syncd.connector import Rejected
from syncd.errors import ConfigError, SkippableError
from syncd.model import Customer, Invoice, Record, SourcePayment, derive_status

STREAM_MODELS: Final[cabc.Mapping[str, type[Customer] | type[Invoice] | type[SourcePayment]]] = {
    "customers": Customer,
    "invoices": Invoice,
    "payments": SourcePayment,
}
_SET_BY_SYNCD: Final = frozenset({"connection", "raw"})
TRANSFORMS: Final = (
    "bool",
    "date",
    "datetime",
    "decimal",
    "derive_status",
    "enum",
    "int",
    "list",
    "msdate",
    "str",
)
# Which transforms may fill a canonical field of each kind, and which one is implied.
_ALLOWED: Final[cabc.Mapping[str, frozenset[str]]] = {
    "decimal": frozenset({"decimal", "int"}),
    "date": frozenset({"date", "msdate"}),
    "datetime": frozenset({"datetime", "msdate"}),
    "bool": frozenset({"bool"}),
    "str": frozenset({"str", "int", "enum"}),
    "enum": frozenset({"enum", "derive_status"}),
    "list": frozenset({"list"}),
    "int": frozenset({"int"}),
}
_IMPLIED: Final[cabc.Mapping[str, str]] = {kind: kind for kind in _ALLOWED}
_MISSING: Final[Any] = object()


class MappingFailed(SkippableError):
    """One record could not be mapped: quarantine it with its payload and go on.

    ``problems`` holds every ``(field, reason)`` found, so one quarantine entry explains all that
    is wrong with the record; ``field``/``reason`` are the first of them.
    """

    def __init__(
        self,
        *,
        mapping_file: str,
        stream: str,
        record_id: str | None,
        problems: cabc.Sequence[tuple[str, str]],
    ) -> None:
        self.mapping_file = mapping_file
        self.stream = stream
        self.record_id = record_id
        self.problems = tuple(problems)
        self.field, self.reason = self.problems[0]
        who = f"record {record_id}" if record_id is not None else "record with unresolved id"
        details = "; ".join(f"{stream}.{field}: {reason}" for field, reason in self.problems)
        super().__init__(f"{mapping_file}: {who}: {details}")


class _Bad(ValueError):
    """A source value one field cannot take; becomes one MappingFailed problem."""


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- transforms ---------------------------------------------------------------------------------

_DECIMAL_TEXT: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_INT_TEXT: Final = re.compile(r"[+-]?\d+")
_MSDATE: Final = re.compile(r"/Date\((-?\d+)(?:([+-])(\d{2})(\d{2}))?\)/")
_TRUE: Final = frozenset({"true", "yes", "y", "1"})
_FALSE: Final = frozenset({"false", "no", "n", "0"})
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        raise _Bad(f"bad decimal {_show(value)} (a boolean)")
    elif isinstance(value, int | float):
        # str() of a float is its shortest round-trip text, so 0.1 stays 0.1, not 0.1000…0055.
        result = Decimal(str(value))
    elif isinstance(value, str):
        text = value.strip()
        if not _DECIMAL_TEXT.fullmatch(text):
            raise _Bad(f"bad decimal {_show(value)}")
        result = Decimal(text)
    else:
        raise _Bad(f"bad decimal {_show(value)} (a {type(value).__name__})")
    if not result.is_finite():
        raise _Bad(f"bad decimal {_show(value)} (not a finite number)")
    return result


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise _Bad(f"bad integer {_show(value)} (a boolean)")
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        try:
            if value == int(value):
                return int(value)
        except (ValueError, OverflowError, InvalidOperation):
            pass
    elif isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        return int(value.strip())
    raise _Bad(f"bad integer {_show(value)}")


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, Decimal) and value.is_finite():
        return format(value, "f")
    raise _Bad(f"expected text, got {type(value).__name__} {_show(value)}")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise _Bad(f"bad boolean {_show(value)} (expected true/false, yes/no, 1/0)")


def _date_converter(fmt: str | None) -> cabc.Callable[[Any], dt.date]:
    def convert(value: Any) -> dt.date:
        if not isinstance(value, str):
            raise _Bad(f"malformed date {_show(value)} (expected text)")
        text = value.strip()
        try:
            if fmt is not None:
                return dt.datetime.strptime(text, fmt).date()
            if len(text) == 10:
                return dt.date.fromisoformat(text)
            return dt.datetime.fromisoformat(text).date()  # the date as written, not shifted to UTC
        except ValueError:
            wanted = f"format {fmt!r}" if fmt else "ISO 8601"
            raise _Bad(f"malformed date {_show(value)} (expected {wanted})") from None

    return convert


def _datetime_converter(fmt: str | None, tz: dt.tzinfo | None) -> cabc.Callable[[Any], dt.datetime]:
    def convert(value: Any) -> dt.datetime:
        if not isinstance(value, str):
            raise _Bad(f"malformed datetime {_show(value)} (expected text)")
        text = value.strip()
        try:
            parsed = (
                dt.datetime.strptime(text, fmt)
                if fmt is not None
                else dt.datetime.fromisoformat(text)
            )
        except ValueError:
            wanted = f"format {fmt!r}" if fmt else "ISO 8601"
            raise _Bad(f"malformed datetime {_show(value)} (expected {wanted})") from None
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            if tz is None:
                raise _Bad(
                    f"naive datetime {_show(value)} (no offset; set assume_tz in the mapping "
                    "if the source means a fixed zone)"
                )
            parsed = parsed.replace(tzinfo=tz)
        return parsed.astimezone(dt.UTC)

    return convert


def _msdate(value: Any) -> dt.datetime:
    """``/Date(ms±hhmm)/`` → the instant, expressed in the given offset (UTC when none)."""
    match = _MSDATE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise _Bad(f"malformed /Date(…)/ value {_show(value)}")
    millis, sign, hours, minutes = match.groups()
    try:
        instant = _EPOCH + dt.timedelta(milliseconds=int(millis))
        if sign is None:
            return instant
        offset = dt.timedelta(hours=int(hours), minutes=int(minutes))
        return instant.astimezone(dt.timezone(-offset if sign == "-" else offset))
    except (OverflowError, ValueError):
        raise _Bad(f"/Date(…)/ value {_show(value)} is out of range") from None


def _to_list(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    return tuple(_to_str(item) for item in items if item is not None and item != "")


def _enum_converter(
    mapping: cabc.Mapping[str, str] | None, allowed: frozenset[str] | None
) -> cabc.Callable[[Any], str]:
    def convert(value: Any) -> str:
        if isinstance(value, bool):
            key = "true" if value else "false"
        elif isinstance(value, int | str):
            key = str(value).strip()
        else:
            raise _Bad(f"unknown value {_show(value)} (a {type(value).__name__})")
        if mapping is not None:
            if key in mapping:
                return mapping[key]
            known = ", ".join(repr(k) for k in sorted(mapping))
            raise _Bad(f"unknown value {key!r} (the map knows {known})")
        if allowed is not None and key not in allowed:
            raise _Bad(f"unknown value {key!r} (allowed: {', '.join(sorted(allowed))})")
        return key

    return convert


def _truthy(value: Any) -> bool:
    """JMESPath truthiness: null, false, "", [] and {} are false; 0 is true."""
    if value is None or value is False:
        return False
    return not (isinstance(value, str | list | dict) and not value)


# --- sources ------------------------------------------------------------------------------------

Getter = cabc.Callable[[dict[str, Any]], Any]


def _field_chain(node: cabc.Mapping[str, Any]) -> list[str] | None:
    """The key names of a plain ``a.b.c`` expression, or None for anything richer."""
    if node["type"] == "field":
        return [node["value"]]
    if node["type"] == "subexpression":
        names: list[str] = []
        for child in node["children"]:
            sub = _field_chain(child)
            if sub is None:
                return None
            names += sub
        return names
    return None


def _entry_lookup(node: cabc.Mapping[str, Any]) -> tuple[list[str], str, str, str] | None:
    """``list[?key=='name'].value | [0]`` as (list chain, key, value, name), else None."""
    if node["type"] != "pipe":
        return None
    projection, first = node["children"]
    if projection["type"] != "filter_projection" or first != _FIRST:
        return None
    left, right, condition = projection["children"]
    chain = _field_chain(left)
    if chain is None or right["type"] != "field" or condition["type"] != "comparator":
        return None
    if condition["value"] != "eq":
        return None
    key, literal = condition["children"]
    if (
        key["type"] != "field"
        or literal["type"] != "literal"
        or not isinstance(literal["value"], str)
    ):
        return None
    return chain, key["value"], right["value"], literal["value"]


_FIRST: Final = {
    "type": "index_expression",
    "children": [
        {"type": "identity", "children": []},
        {"type": "index", "value": 0, "children": []},
    ],
}


def _compile_path(expression: str) -> Getter:
    """Compile once. Key chains (most fields) and custom-field filters skip the interpreter.

    The fast paths return exactly what JMESPath would; they only avoid its per-node dispatch,
    which dominates the cost of mapping a large page.
    """
    parsed = jmespath.compile(expression)
    lookup = _entry_lookup(parsed.parsed)
    if lookup is not None:
        items, key, value, name = lookup
        return _custom_field_getter(_chain_getter(items), key, value, name)
    chain = _field_chain(parsed.parsed)
    if chain is not None:
        return _chain_getter(chain)
    membership = _literal_membership(parsed.parsed)
    if membership is not None:
        literals, searched = membership
        get = _chain_getter(searched)
        return lambda raw: get(raw) in literals
    interpreter = TreeInterpreter()
    ast = parsed.parsed

    def search(raw: dict[str, Any]) -> Any:
        try:
            return interpreter.visit(ast, raw)
        except JMESPathError as exc:
            raise _Bad(f"expression {expression!r} failed: {exc}") from None

    return search


def _literal_membership(node: cabc.Mapping[str, Any]) -> tuple[list[Any], list[str]] | None:
    """``contains(['a', 'b'], x.y)`` as (['a', 'b'], ['x', 'y']), else None.

    The subject is a list of literals, so JMESPath's ``contains`` is Python's ``in`` on it (the
    function's own body) and can raise no type error; a missing ``x.y`` is null, not in the list.
    """
    if node["type"] != "function_expression" or node["value"] != "contains":
        return None
    if len(node["children"]) != 2:
        return None
    subject, search = node["children"]
    if subject["type"] != "multi_select_list" or not all(
        child["type"] == "literal" for child in subject["children"]
    ):
        return None
    chain = _field_chain(search)
    if chain is None:
        return None
    return [child["value"] for child in subject["children"]], chain


def _chain_getter(chain: list[str]) -> Getter:
    if len(chain) == 1:
        (key,) = chain
        return lambda raw: raw.get(key)
    if len(chain) == 2:
        first, second = chain

        def pair(raw: dict[str, Any]) -> Any:
            inner = raw.get(first)
            return inner.get(second) if isinstance(inner, dict) else None

        return pair
    keys = tuple(chain)

    def walk(raw: dict[str, Any]) -> Any:
        value: Any = raw
        for key in keys:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    return walk


def _custom_field_getter(items: Getter, key: str, value_key: str, name: str) -> Getter:
    """Same result as ``items[?key=='name'].value_key | [0]``: the first non-null value."""

    def lookup(raw: dict[str, Any]) -> Any:
        entries = items(raw)
        if isinstance(entries, list):
            for entry in entries:
                if isinstance(entry, dict) and entry.get(key) == name:
                    value = entry.get(value_key)
                    if value is not None:
                        return value
        return None

    return lookup


# --- the file's schema --------------------------------------------------------------------------


class _FieldSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    path: str | None = None
    custom_field: str | None = None
    const: Any = None
    transform: str | None = None
    map: dict[str, str] | None = None
    default: Any = None
    required: bool | None = None
    format: str | None = None
    assume_tz: str | None = None
    void: str | None = None
    draft: str | None = None


class _CustomFieldsSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    items: str = Field(alias="list")
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    source: Getter
    convert: cabc.Callable[[Any], Any]
    default: Any  # already converted; _MISSING when none
    required: bool


@dataclass(frozen=True, slots=True)
class _DerivedStatus:
    void: Getter | None
    draft: Getter | None


@dataclass(frozen=True, slots=True)
class _Plan:
    model: type[Customer] | type[Invoice] | type[SourcePayment]
    fields: tuple[_Field, ...]  # external_id first, so later errors can name the record
    derived_status: _DerivedStatus | None


def _kind(annotation: Any) -> tuple[str, type[StrEnum] | None]:
    """The transform family of a canonical field, from its type annotation."""
    if typing.get_origin(annotation) in (types.UnionType, typing.Union):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) is tuple:
        return "list", None
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        return "enum", annotation
    for kind, cls in (
        ("bool", bool),
        ("datetime", dt.datetime),
        ("date", dt.date),
        ("decimal", Decimal),
        ("int", int),
        ("str", str),
    ):
        if annotation is cls:
            return kind, None
    raise TypeError(f"no mapping kind for canonical type {annotation!r}")  # a model change


def _pydantic_problems(exc: ValidationError) -> list[tuple[str, str]]:
    found = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "(record)"
        message = str(error["msg"]).removeprefix("Value error, ")
        found.append((where, message))
    return found


class _Builder:
    """Turns the parsed TOML into plans, collecting every problem before raising one ConfigError."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.problems: list[str] = []
        self.custom_fields: _CustomFieldsSpec | None = None
        self.custom_items: Getter | None = None

    def problem(self, where: str, message: str, origin: str | None = None) -> None:
        self.problems.append(f"{origin or self.origin}: {where}: {message}")

    def read_custom_fields(self, table: object) -> None:
        if not isinstance(table, dict):
            self.problem("custom_fields", "must be a table with list, key and value")
            return
        try:
            self.custom_fields = _CustomFieldsSpec.model_validate(table)
        except ValidationError as exc:
            for where, message in _pydantic_problems(exc):
                self.problem(f"custom_fields.{where}", message)
            return
        try:
            self.custom_items = _compile_path(self.custom_fields.items)
        except JMESPathError as exc:
            self.problem("custom_fields.list", f"bad JMESPath expression: {exc}")

    def plan(
        self,
        stream: str,
        table: cabc.Mapping[str, Any],
        origins: cabc.Mapping[str, str],
    ) -> _Plan | None:
        model = STREAM_MODELS[stream]
        fields: list[_Field] = []
        derived: _DerivedStatus | None = None
        before = len(self.problems)
        for name, spec in table.items():
            origin = origins.get(name, self.origin)
            compiled = self.field(stream, name, spec, origin)
            if isinstance(compiled, _DerivedStatus):
                derived = compiled
            elif compiled is not None:
                fields.append(compiled)
        for name, info in model.model_fields.items():
            if name not in _SET_BY_SYNCD and info.is_required() and name not in table:
                self.problem(f"{stream}.{name}", "required canonical field is not mapped")
        if len(self.problems) > before:
            return None
        fields.sort(key=lambda f: f.name != "external_id")
        return _Plan(model=model, fields=tuple(fields), derived_status=derived)

    def field(
        self, stream: str, name: str, raw_spec: object, origin: str
    ) -> _Field | _DerivedStatus | None:
        where = f"{stream}.{name}"
        model = STREAM_MODELS[stream]
        if name in _SET_BY_SYNCD:
            self.problem(where, "is filled by syncd and cannot be mapped", origin)
            return None
        if name not in model.model_fields:
            known = ", ".join(n for n in model.model_fields if n not in _SET_BY_SYNCD)
            self.problem(where, f"unknown canonical field (known: {known})", origin)
            return None
        if isinstance(raw_spec, str):
            raw_spec = {"path": raw_spec}
        if not isinstance(raw_spec, dict):
            self.problem(
                where,
                f"expected a JMESPath string or an inline table, got {type(raw_spec).__name__}",
                origin,
            )
            return None
        try:
            spec = _FieldSpec.model_validate(raw_spec)
        except ValidationError as exc:
            for loc, message in _pydantic_problems(exc):
                self.problem(where, f"{loc}: {message}", origin)
            return None
        try:
            return self._compile(stream, name, spec, model)
        except _SpecError as exc:
            self.problem(where, str(exc), origin)
            return None

    def _compile(
        self,
        stream: str,
        name: str,
        spec: _FieldSpec,
        model: type[Customer] | type[Invoice] | type[SourcePayment],
    ) -> _Field | _DerivedStatus:
        given = spec.model_fields_set
        kind, enum_cls = _kind(model.model_fields[name].annotation)
        transform = spec.transform or ("enum" if spec.map is not None else _IMPLIED[kind])
        if transform not in TRANSFORMS:
            raise _SpecError(f'unknown transform "{transform}" (known: {", ".join(TRANSFORMS)})')
        if transform not in _ALLOWED[kind]:
            fits = ", ".join(sorted(_ALLOWED[kind]))
            raise _SpecError(f'transform "{transform}" cannot fill a {kind} field (use: {fits})')
        sources = [key for key in ("path", "custom_field", "const") if key in given]
        for key, allowed_with in (
            ("map", {"enum"}),
            ("format", {"date", "datetime"}),
            ("assume_tz", {"datetime"}),
            ("void", {"derive_status"}),
            ("draft", {"derive_status"}),
        ):
            if key in given and transform not in allowed_with:
                raise _SpecError(
                    f'"{key}" only goes with transform {" or ".join(sorted(allowed_with))}'
                )

        if transform == "derive_status":
            if (stream, name) != ("invoices", "status"):
                raise _SpecError('transform "derive_status" only fills invoices.status')
            if sources or given & {"default", "required"}:
                raise _SpecError(
                    '"derive_status" takes only void and draft (it reads total and balance)'
                )
            return _DerivedStatus(
                void=self._path(spec.void) if spec.void is not None else None,
                draft=self._path(spec.draft) if spec.draft is not None else None,
            )

        if len(sources) != 1:
            raise _SpecError(
                "needs exactly one of path, custom_field or const"
                + (f" (got {', '.join(sources)})" if sources else "")
            )
        convert = self._converter(transform, kind, enum_cls, spec)

        model_required = model.model_fields[name].is_required()
        if spec.required is False and model_required:
            raise _SpecError("required = false, but the canonical model requires this field")
        required = model_required if spec.required is None else spec.required

        default: Any = _MISSING
        if "const" in given:
            if "default" in given:
                raise _SpecError("const and default together make no sense")
            source: Getter = _none
            default = self._convert_literal(convert, spec.const, "const")
        else:
            if "default" in given:
                default = self._convert_literal(convert, spec.default, "default")
            if spec.path is not None:
                source = self._path(spec.path)
            else:
                source = self._custom_field(spec.custom_field or "")
        return _Field(name=name, source=source, convert=convert, default=default, required=required)

    def _converter(
        self, transform: str, kind: str, enum_cls: type[StrEnum] | None, spec: _FieldSpec
    ) -> cabc.Callable[[Any], Any]:
        if transform == "decimal":
            return _to_decimal
        if transform == "int":
            return {"str": _compose(_to_int, str), "decimal": _compose(_to_int, Decimal)}.get(
                kind, _to_int
            )
        if transform == "str":
            return _to_str
        if transform == "bool":
            return _to_bool
        if transform == "list":
            return _to_list
        if transform == "date":
            return _date_converter(spec.format)
        if transform == "datetime":
            tz: dt.tzinfo | None = None
            if spec.assume_tz is not None:
                try:
                    tz = ZoneInfo(spec.assume_tz)
                except (ZoneInfoNotFoundError, ValueError):
                    raise _SpecError(
                        f"assume_tz {spec.assume_tz!r} is not a known time zone"
                    ) from None
            return _datetime_converter(spec.format, tz)
        if transform == "msdate":
            if kind == "date":
                return _compose(_msdate, dt.datetime.date)
            return _compose(_msdate, lambda d: d.astimezone(dt.UTC))
        # enum
        allowed = frozenset(member.value for member in enum_cls) if enum_cls is not None else None
        if spec.map is not None and allowed is not None:
            wrong = sorted(v for v in spec.map.values() if v not in allowed)
            if wrong:
                raise _SpecError(
                    f"map targets {', '.join(map(repr, wrong))} are not canonical values "
                    f"(allowed: {', '.join(sorted(allowed))})"
                )
        if spec.map is None and allowed is None:
            raise _SpecError('transform "enum" on a text field needs a map')
        return _enum_converter(spec.map, allowed)

    def _path(self, expression: str) -> Getter:
        try:
            return _compile_path(expression)
        except JMESPathError as exc:
            reason = str(exc).replace("\n", " ")
            raise _SpecError(f"bad JMESPath expression {expression!r}: {reason}") from None

    def _custom_field(self, name: str) -> Getter:
        if self.custom_fields is None or self.custom_items is None:
            raise _SpecError(
                "custom_field needs a [custom_fields] table (list, key, value) in the mapping file"
            )
        return _custom_field_getter(
            self.custom_items, self.custom_fields.key, self.custom_fields.value, name
        )

    @staticmethod
    def _convert_literal(convert: cabc.Callable[[Any], Any], value: Any, what: str) -> Any:
        try:
            return convert(value)
        except _Bad as exc:
            raise _SpecError(f"bad {what}: {exc}") from None


class _SpecError(Exception):
    """One problem in one field's spec; the builder adds file and field to it."""


def _none(raw: dict[str, Any]) -> None:
    return None


def _compose(
    first: cabc.Callable[[Any], Any], then: cabc.Callable[[Any], Any]
) -> cabc.Callable[[Any], Any]:
    return lambda value: then(first(value))


# --- the public face ----------------------------------------------------------------------------


class Mapping:
    """A loaded mapping file: compiled once, then applied to every record of every page."""

    def __init__(self, origin: str, plans: cabc.Mapping[str, _Plan]) -> None:
        self._origin = origin
        self._plans = dict(plans)

    @property
    def origin(self) -> str:
        """The file this mapping came from, as named in every error."""
        return self._origin

    @property
    def streams(self) -> frozenset[str]:
        return frozenset(self._plans)

    def __repr__(self) -> str:
        return f"<Mapping {self._origin} streams={sorted(self._plans)}>"

    def _plan(self, stream: str) -> _Plan:
        try:
            return self._plans[stream]
        except KeyError:
            raise ConfigError(
                f"{self._origin}: no [{stream}] table (this mapping has: "
                f"{', '.join(sorted(self._plans)) or 'none'})"
            ) from None

    def apply(self, stream: str, raw: dict[str, Any], *, connection: str) -> Record:
        """One raw payload → one validated canonical record, or :class:`MappingFailed`."""
        plan = self._plan(stream)
        if not isinstance(raw, dict):
            raise MappingFailed(
                mapping_file=self._origin,
                stream=stream,
                record_id=None,
                problems=[("(record)", f"payload is a {type(raw).__name__}, not a JSON object")],
            )
        values: dict[str, Any] = {"connection": connection, "raw": raw}
        problems: list[tuple[str, str]] = []
        for spec in plan.fields:
            try:
                value = spec.source(raw)
                if value is None or (type(value) is str and (not value or value.isspace())):
                    if spec.default is not _MISSING:
                        values[spec.name] = spec.default
                    elif spec.required:
                        problems.append((spec.name, "missing required value"))
                    continue
                values[spec.name] = spec.convert(value)
            except _Bad as exc:
                problems.append((spec.name, str(exc)))
        derived = plan.derived_status
        if derived is not None and "total" in values and "balance" in values:
            try:
                values["status"] = derive_status(
                    total=values["total"],
                    balance=values["balance"],
                    void=derived.void is not None and _truthy(derived.void(raw)),
                    draft=derived.draft is not None and _truthy(derived.draft(raw)),
                )
            except _Bad as exc:
                problems.append(("status", str(exc)))
        record_id = values.get("external_id")
        if not problems:
            try:
                return plan.model.model_validate(values)
            except ValidationError as exc:
                problems = _pydantic_problems(exc)
        raise MappingFailed(
            mapping_file=self._origin,
            stream=stream,
            record_id=record_id if isinstance(record_id, str) else None,
            problems=problems,
        )

    def map_page(
        self, stream: str, raws: cabc.Iterable[dict[str, Any]], connection: str
    ) -> tuple[tuple[Record, ...], tuple[Rejected, ...]]:
        """Map a page; bad records come back as :class:`Rejected` (quarantined, never dropped)."""
        self._plan(stream)  # a missing table is a config error, not N rejected records
        records: list[Record] = []
        rejected: list[Rejected] = []
        for raw in raws:
            try:
                records.append(self.apply(stream, raw, connection=connection))
            except MappingFailed as exc:
                payload = raw if isinstance(raw, cabc.Mapping) else {"payload": raw}
                rejected.append(
                    Rejected(external_id=exc.record_id, reason=str(exc), payload=payload)
                )
        return tuple(records), tuple(rejected)


def parse_mapping(
    text: str,
    *,
    origin: str = "<mapping>",
    overrides: cabc.Mapping[str, cabc.Mapping[str, Any]] | None = None,
    overrides_origin: str | None = None,
) -> Mapping:
    """Like :func:`load_mapping`, from text (a packaged resource, a test)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML: {exc}") from None
    over_origin = overrides_origin or f"{origin} (connection override)"
    builder = _Builder(origin)
    for key in data:
        if key not in STREAM_MODELS and key != "custom_fields":
            builder.problem(
                key, "unknown table (known: custom_fields, " + ", ".join(STREAM_MODELS) + ")"
            )
    if "custom_fields" in data:
        builder.read_custom_fields(data["custom_fields"])
    over: cabc.Mapping[str, object] = overrides or {}  # from config: shape not yet checked
    for stream, fields in over.items():
        if stream not in STREAM_MODELS:
            builder.problem(
                stream, f"unknown stream (known: {', '.join(STREAM_MODELS)})", over_origin
            )
        elif stream not in data:
            builder.problem(stream, f"overrides a stream that {origin} does not map", over_origin)
        elif not isinstance(fields, cabc.Mapping):
            builder.problem(stream, "overrides must be a table of field = spec", over_origin)
    plans: dict[str, _Plan] = {}
    for stream in STREAM_MODELS:
        if stream not in data:
            continue
        table = data[stream]
        if not isinstance(table, dict):
            builder.problem(stream, "must be a table of field = spec")
            continue
        merged = dict(table)
        origins: dict[str, str] = {}
        stream_overrides = over.get(stream)
        if isinstance(stream_overrides, cabc.Mapping):
            for name, spec in stream_overrides.items():
                merged[name] = dict(spec) if isinstance(spec, cabc.Mapping) else spec
                origins[name] = over_origin
        plan = builder.plan(stream, merged, origins)
        if plan is not None:
            plans[stream] = plan
    if builder.problems:
        raise ConfigError(builder.problems)
    return Mapping(origin, plans)


def load_mapping(
    path: Path,
    overrides: cabc.Mapping[str, cabc.Mapping[str, Any]] | None = None,
    *,
    overrides_origin: str | None = None,
) -> Mapping:
    """Read, validate and compile ``path``; every problem in it is one line of a ConfigError.

    ``overrides`` (per connection, from the config) replace whole fields: ``{"invoices":
    {"number": "customFields[?caption=='Legacy No'].value | [0]"}}``. ``overrides_origin`` names
    where they came from in error messages (default: ``"<path> (connection override)"``).
    """
    origin = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{origin}: cannot read the mapping file: {reason}") from None
    return parse_mapping(
        text, origin=origin, overrides=overrides, overrides_origin=overrides_origin
    )


__all__ = [
    "STREAM_MODELS",
    "TRANSFORMS",
    "Mapping",
    "MappingFailed",
    "load_mapping",
    "parse_mapping",
]
