"""The QBO query language: tokenizer, parser and evaluator.

Grammar (Intuit data-queries page, research §1.3)::

    SELECT * | count(*) | Prop[, …] FROM Entity
        [WHERE Prop op value [AND Prop op value …]]
        [ORDERBY | ORDER BY Prop [ASC|DESC][, …]]
        [STARTPOSITION n] [MAXRESULTS n]

- operators ``=  <  >  <=  >=  IN (…)  LIKE``; ``LIKE`` knows only the ``%`` wildcard;
  **no OR** (nor JOIN, GROUP BY, NOT); one entity per query, entity names case-sensitive;
- keywords and property paths are case-insensitive (``MetaData``/``Metadata``: tap-quickbooks
  writes ``Metadata.``, python-quickbooks ``MetaData.``; both work, research §1.3);
- string literals in single quotes; a backslash escapes the next character ("Escape Character:
  Use backslash (\\) to escape special characters", blogs.intuit.com 2014/03/20);
- ``STARTPOSITION`` is 1-based, ``MAXRESULTS`` defaults to 100 and may not exceed 1000 (python-
  quickbooks README; tap-quickbooks ``sync.py``).

Faults: syntax errors are 4000 "Error parsing query" with a JavaCC-style ``QueryParserError:
Encountered …`` detail (node-quickbooks#56, quickbooks-node-promise#1); semantic errors
(unknown entity or property, MAXRESULTS too large) are 4001 ``QueryValidationError`` (wording
UNVERIFIED). Which properties are filterable is per entity (``EntitySchema``); the lists are the
emulator's (UNVERIFIED against Intuit's per-entity reference).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from connectors.quickbooks_online.sandbox.common import QBOFault, Row, parse_instant

DEFAULT_MAX_RESULTS = 100  # python-quickbooks README
MAX_RESULTS_LIMIT = 1000  # research §1.3


class Kind(Enum):
    """How a property's values compare."""

    STR = "str"  # case-insensitive text (UNVERIFIED: Intuit does not document collation)
    NUM = "num"
    BOOL = "bool"
    DATETIME = "datetime"  # compared as instants, whatever the offset of either side
    DATE = "date"  # yyyy-MM-dd
    REF = "ref"  # a reference ``{"value": "42", "name": …}``: compares its value
    ID = "id"  # string ids compared as numbers


@dataclass(frozen=True)
class Prop:
    name: str  # canonical dotted name, e.g. ``MetaData.LastUpdatedTime``
    path: tuple[str, ...]  # keys into the row
    kind: Kind


@dataclass(frozen=True)
class EntitySchema:
    """Queryable properties of one entity; ``name_list`` entities hide inactive rows unless the
    query filters on ``Active`` (research §1.3: "Name-list entities need ``AND Active IN (true,
    false)`` to include inactive ones")."""

    name: str
    props: Mapping[str, Prop]
    name_list: bool = False

    @classmethod
    def build(
        cls, name: str, specs: Iterable[tuple[str, Kind]], *, name_list: bool = False
    ) -> EntitySchema:
        props: dict[str, Prop] = {}
        common = [
            ("Id", Kind.ID),
            ("MetaData.CreateTime", Kind.DATETIME),
            ("MetaData.LastUpdatedTime", Kind.DATETIME),
        ]
        for prop_name, kind in [*common, *specs]:
            path = tuple(prop_name.split("."))
            if kind is Kind.REF:
                path = (*path, "value")
            elif prop_name == "PrimaryEmailAddr":
                path = (*path, "Address")
            props[prop_name.lower()] = Prop(prop_name, path, kind)
        return cls(name, props, name_list)

    def prop(self, name: str) -> Prop:
        found = self.props.get(name.lower())
        if found is None:
            raise QBOFault(
                4001, f"QueryValidationError: property '{name}' is not queryable", element=name
            )
        return found


@dataclass(frozen=True)
class Condition:
    prop: Prop
    op: str  # = < > <= >= IN LIKE
    values: tuple[Any, ...]  # normalised for the prop's kind; a compiled regex for LIKE

    def key(self) -> tuple[Any, ...]:
        vals = tuple(v.pattern if isinstance(v, re.Pattern) else v for v in self.values)
        return (self.prop.name, self.op, vals)


@dataclass(frozen=True)
class Query:
    entity: str
    count: bool = False
    where: tuple[Condition, ...] = ()
    order: tuple[tuple[Prop, bool], ...] = ()  # (prop, descending)
    start: int = 1
    max_results: int = DEFAULT_MAX_RESULTS
    projection: tuple[str, ...] | None = None  # top-level keys of ``SELECT a, b``
    text: str = field(default="", compare=False)

    def filter_key(self) -> tuple[Any, ...]:
        """What the matched rows depend on (paging excluded): the cache key of a result set."""
        return (
            self.entity,
            tuple(sorted(c.key() for c in self.where)),
            tuple((p.name, d) for p, d in self.order),
        )


# -- tokenizer -----------------------------------------------------------------------------------

KEYWORDS = frozenset(
    {
        "SELECT",
        "FROM",
        "WHERE",
        "AND",
        "OR",
        "NOT",
        "ORDER",
        "ORDERBY",
        "BY",
        "ASC",
        "DESC",
        "STARTPOSITION",
        "MAXRESULTS",
        "IN",
        "LIKE",
        "COUNT",
        "TRUE",
        "FALSE",
    }
)


@dataclass(frozen=True)
class Token:
    kind: str  # word, keyword, string, number, op, ( ) , * eof
    text: str
    line: int
    col: int
    value: Any = None  # unescaped text of a string; Decimal of a number; upper keyword
    like: str | None = None  # regex source of a string used as a LIKE pattern

    def describe(self) -> str:
        """JavaCC's rendering: ``" <OR> "OR ""`` (node-quickbooks#56)."""
        if self.kind == "eof":
            return '"<EOF>"'
        label = {
            "keyword": f"<{self.value}>",
            "word": "<IDENTIFIER>",
            "string": "<STRING_LITERAL>",
            "number": "<INTEGER_LITERAL>",
        }.get(self.kind, f'"{self.text}"')
        return f'" {label} "{self.text} ""'


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_OPS = ("<=", ">=", "=", "<", ">")


def _parser_error(detail: str) -> QBOFault:
    return QBOFault(4000, f"QueryParserError: {detail}")


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        line, col = _position(text, i)
        if ch == "'":
            j = i + 1
            value: list[str] = []
            like: list[str] = []
            while j < n and text[j] != "'":
                if text[j] == "\\" and j + 1 < n:
                    value.append(text[j + 1])
                    like.append(re.escape(text[j + 1]))  # an escaped % is literal (UNVERIFIED)
                    j += 2
                    continue
                value.append(text[j])
                like.append(".*" if text[j] == "%" else re.escape(text[j]))
                j += 1
            if j >= n:
                raise _parser_error(
                    f"Invalid content. Lexical error at line {line}, column {col}.  "
                    f'Encountered: <EOF> after : "{text[i:]}"'
                )
            tokens.append(
                Token("string", text[i : j + 1], line, col, "".join(value), "".join(like))
            )
            i = j + 1
            continue
        m = _NUMBER.match(text, i)
        if m and (ch != "-" or not tokens or tokens[-1].kind in ("op", "(", ",")):
            tokens.append(Token("number", m.group(), line, col, Decimal(m.group())))
            i = m.end()
            continue
        m = _WORD.match(text, i)
        if m:
            word = m.group()
            upper = word.upper()
            if upper in KEYWORDS:
                tokens.append(Token("keyword", word, line, col, upper))
            else:
                tokens.append(Token("word", word, line, col, word))
            i = m.end()
            continue
        op = next((o for o in _OPS if text.startswith(o, i)), None)
        if op is not None:
            tokens.append(Token("op", op, line, col, op))
            i += len(op)
            continue
        if ch in "(),*":
            tokens.append(Token(ch, ch, line, col, ch))
            i += 1
            continue
        raise _parser_error(
            f"Invalid content. Lexical error at line {line}, column {col}.  "
            f'Encountered: "{ch}" ({ord(ch)}), after : ""'
        )
    line, col = _position(text, n)
    tokens.append(Token("eof", "", line, col))
    return tokens


# -- parser --------------------------------------------------------------------------------------


@dataclass
class _RawCondition:
    prop: Token
    op: str
    values: list[Token]


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def fail(self, tok: Token | None = None) -> QBOFault:
        tok = tok or self.tok
        return _parser_error(
            f"Encountered {tok.describe()} at line {tok.line}, column {tok.col}.\n"
            "Was expecting one of:\n    ..."
        )

    def is_kw(self, *words: str) -> bool:
        return self.tok.kind == "keyword" and self.tok.value in words

    def expect_kw(self, word: str) -> Token:
        if not self.is_kw(word):
            raise self.fail()
        return self.take()

    def expect(self, kind: str) -> Token:
        if self.tok.kind != kind:
            raise self.fail()
        return self.take()

    def name(self) -> Token:
        # A property or entity name; keywords are reserved.
        return self.expect("word")

    def integer(self) -> int:
        tok = self.expect("number")
        value = tok.value
        if not isinstance(value, Decimal) or value != value.to_integral_value():
            raise self.fail(tok)
        return int(value)

    def value(self) -> Token:
        if self.tok.kind in ("string", "number") or self.is_kw("TRUE", "FALSE"):
            return self.take()
        raise self.fail()

    def parse(self) -> tuple[Any, ...]:
        self.expect_kw("SELECT")
        count = False
        projection: list[Token] | None = None
        if self.tok.kind == "*":
            self.take()
            while self.tok.kind == ",":  # ``SELECT *, Sku`` (python-quickbooks Item.all)
                self.take()
                self.name()
        elif self.is_kw("COUNT"):
            self.take()
            self.expect("(")
            self.expect("*")
            self.expect(")")
            count = True
        else:
            projection = [self.name()]
            while self.tok.kind == ",":
                self.take()
                projection.append(self.name())
        self.expect_kw("FROM")
        entity = self.name()
        conditions: list[_RawCondition] = []
        if self.is_kw("WHERE"):
            self.take()
            conditions.append(self.condition())
            while self.is_kw("AND"):
                self.take()
                conditions.append(self.condition())
            if self.is_kw("OR"):  # no OR in QBO (research §1.3)
                raise self.fail()
        order: list[tuple[Token, bool]] = []
        if self.is_kw("ORDERBY") or self.is_kw("ORDER"):
            if self.take().value == "ORDER":
                self.expect_kw("BY")
            order.append(self.order_item())
            while self.tok.kind == ",":
                self.take()
                order.append(self.order_item())
        start: int | None = None
        max_results: int | None = None
        while self.is_kw("STARTPOSITION", "MAXRESULTS"):
            word = self.take().value
            if word == "STARTPOSITION" and start is None:
                start = self.integer()
            elif word == "MAXRESULTS" and max_results is None:
                max_results = self.integer()
            else:
                raise self.fail(self.tokens[self.i - 1])
        if self.tok.kind != "eof":
            raise self.fail()
        return count, projection, entity, conditions, order, start, max_results

    def condition(self) -> _RawCondition:
        prop = self.name()
        if self.tok.kind == "op":
            return _RawCondition(prop, self.take().text, [self.value()])
        if self.is_kw("IN"):
            self.take()
            self.expect("(")
            values = [self.value()]
            while self.tok.kind == ",":
                self.take()
                values.append(self.value())
            self.expect(")")
            return _RawCondition(prop, "IN", values)
        if self.is_kw("LIKE"):
            self.take()
            return _RawCondition(prop, "LIKE", [self.expect("string")])
        raise self.fail()

    def order_item(self) -> tuple[Token, bool]:
        prop = self.name()
        descending = False
        if self.is_kw("ASC", "DESC"):
            descending = self.take().value == "DESC"
        return prop, descending


def _invalid(detail: str, element: str = "") -> QBOFault:
    return QBOFault(4001, f"QueryValidationError: {detail}", element=element)


def _coerce(prop: Prop, tok: Token, tz: dt.tzinfo) -> Any:
    """A literal as a value comparable with the prop's row values (see ``row_value``)."""
    raw = tok.value
    text = raw if isinstance(raw, str) else tok.text
    kind = prop.kind
    if kind is Kind.STR:
        return text.casefold()
    if kind is Kind.BOOL:
        lowered = text.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
    elif kind is Kind.NUM:
        try:
            return float(Decimal(text))  # "Balance > '0.0'" is accepted (DotNET-SDK#111)
        except InvalidOperation:
            pass
    elif kind is Kind.DATETIME:
        if tok.kind == "string":
            instant = parse_instant(text, tz)
            if instant is not None:
                return instant
    elif kind is Kind.DATE:
        if tok.kind == "string" and parse_instant(text, tz) is not None:
            return text.strip()[:10]
    elif kind is Kind.REF:
        return text
    elif kind is Kind.ID:
        return int(text) if text.isdigit() else text
    raise _invalid(f"invalid value {tok.text} for property {prop.name}", prop.name)


def parse(text: str, schemas: Mapping[str, EntitySchema], tz: dt.tzinfo) -> Query:
    """Parse and validate a statement; raises ``QBOFault`` 4000 (syntax) or 4001 (semantics)."""
    if not text.strip():
        raise _parser_error("The query provided was empty")  # QuickBooks-V3-PHP-SDK#8
    count, projection, entity_tok, conditions, order, start, max_results = _Parser(text).parse()
    schema = schemas.get(entity_tok.text)
    if schema is None:
        raise _invalid(f"Unknown entity: {entity_tok.text}", entity_tok.text)
    where: list[Condition] = []
    for raw in conditions:
        prop = schema.prop(raw.prop.text)
        if raw.op == "LIKE":
            if prop.kind is not Kind.STR:
                raise _invalid(f"LIKE is not supported for property {prop.name}", prop.name)
            pattern = re.compile(f"^{raw.values[0].like}$", re.IGNORECASE | re.DOTALL)
            where.append(Condition(prop, "LIKE", (pattern,)))
            continue
        if raw.op not in ("=", "IN") and prop.kind in (Kind.BOOL, Kind.REF):
            raise _invalid(f"operator {raw.op} is not supported for {prop.name}", prop.name)
        values = tuple(_coerce(prop, tok, tz) for tok in raw.values)
        where.append(Condition(prop, raw.op, values))
    if schema.name_list and not any(c.prop.name == "Active" for c in where):
        where.append(Condition(schema.prop("Active"), "=", (True,)))
    limit = DEFAULT_MAX_RESULTS if max_results is None else max_results
    if limit > MAX_RESULTS_LIMIT:
        # research §1.3: max 1000 (wording of the detail UNVERIFIED)
        raise _invalid(
            f"value {limit} is too large. Max allowed value is {MAX_RESULTS_LIMIT}", "MAXRESULTS"
        )
    if limit < 1:
        raise _invalid(f"MAXRESULTS {limit} must be at least 1", "MAXRESULTS")
    return Query(
        entity=schema.name,
        count=count,
        where=tuple(where),
        order=tuple((schema.prop(tok.text), desc) for tok, desc in order),
        start=max(start if start is not None else 1, 1),  # STARTPOSITION 0 → 1 (UNVERIFIED)
        max_results=limit,
        projection=(
            tuple(dict.fromkeys(schema.prop(t.text).path[0] for t in projection))
            if projection
            else None
        ),
        text=text,
    )


# -- evaluation ----------------------------------------------------------------------------------


def row_value(row: Row, prop: Prop, tz: dt.tzinfo) -> Any:
    """The comparable value of ``prop`` in ``row`` (None when absent)."""
    value: Any = row
    for key in prop.path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
        if value is None:
            return None
    kind = prop.kind
    if kind is Kind.STR:
        return str(value).casefold()
    if kind is Kind.NUM:
        return float(value)
    if kind is Kind.DATETIME:
        return parse_instant(str(value), tz)
    if kind is Kind.ID:
        text = str(value)
        return int(text) if text.isdigit() else text
    if kind is Kind.BOOL:
        return bool(value)
    return str(value)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: bool(a == b),
    "<": lambda a, b: bool(a < b),
    ">": lambda a, b: bool(a > b),
    "<=": lambda a, b: bool(a <= b),
    ">=": lambda a, b: bool(a >= b),
}


def predicate(query: Query, tz: dt.tzinfo) -> Callable[[Row], bool]:
    """A function telling whether a row matches every condition (AND)."""
    tests: list[Callable[[Row], bool]] = []
    for cond in query.where:
        prop = cond.prop
        if cond.op == "LIKE":
            pattern: re.Pattern[str] = cond.values[0]

            def like(row: Row, prop: Prop = prop, pattern: re.Pattern[str] = pattern) -> bool:
                value = row_value(row, prop, tz)
                return value is not None and pattern.match(value) is not None

            tests.append(like)
        elif cond.op == "IN":
            options = frozenset(cond.values)

            def member(row: Row, prop: Prop = prop, options: frozenset[Any] = options) -> bool:
                return row_value(row, prop, tz) in options

            tests.append(member)
        else:
            compare = _COMPARE[cond.op]
            target = cond.values[0]

            def check(
                row: Row,
                prop: Prop = prop,
                compare: Callable[[Any, Any], bool] = compare,
                target: Any = target,
            ) -> bool:
                value = row_value(row, prop, tz)
                if value is None:
                    return False
                try:
                    return compare(value, target)
                except TypeError:  # e.g. a non-numeric Id against a number
                    return False

            tests.append(check)
    if not tests:
        return lambda row: True
    if len(tests) == 1:
        return tests[0]
    return lambda row: all(test(row) for test in tests)


def sort_rows(rows: list[Row], order: Sequence[tuple[Prop, bool]], tz: dt.tzinfo) -> list[Row]:
    """Rows in ORDERBY order, ties (and no ORDERBY) by numeric Id ascending (emulator choice:
    Intuit documents no default order, UNVERIFIED). Absent values sort first."""

    def by_id(row: Row) -> tuple[int, str]:
        rid = str(row.get("Id", ""))
        return (int(rid), "") if rid.isdigit() else (0, rid)

    out = sorted(rows, key=by_id)
    for prop, descending in reversed(order):

        def key(row: Row, prop: Prop = prop) -> tuple[bool, Any]:
            value = row_value(row, prop, tz)
            if value is None:
                return (False, (0, 0))
            if prop.kind in (Kind.REF, Kind.ID):  # numeric ids first, by number; others by text
                text = str(value)
                return (True, (0, int(text), "") if text.isdigit() else (1, 0, text))
            return (True, (0, value))

        out.sort(key=key, reverse=descending)
    return out


__all__ = [
    "DEFAULT_MAX_RESULTS",
    "MAX_RESULTS_LIMIT",
    "Condition",
    "EntitySchema",
    "Kind",
    "Prop",
    "Query",
    "Token",
    "parse",
    "predicate",
    "row_value",
    "sort_rows",
    "tokenize",
]
