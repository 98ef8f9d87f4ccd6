"""The ConnectWise Manage ``conditions`` query language, as the sandbox emulator understands it.

Grammar (CW developer guide example, reproduced in christaylorcodes/ConnectWiseManageAPI
``Docs/Get-CWMCompany.md``: ``(contact/name like "Fred%" and closedFlag = false) and
dateEntered > [2015-12-23T05:53:27Z] or summary contains "test" AND summary != "Some Summary"``)::

    expr       := and_expr ( OR and_expr )*              -- AND binds tighter than OR
    and_expr   := primary ( AND primary )*
    primary    := "(" expr ")" | comparison
    comparison := path op value
                | path [NOT] IN "(" value ("," value)* ")"
                | path [NOT] (LIKE | CONTAINS) string
    op         := "=" | "!=" | "<" | "<=" | ">" | ">="
    path       := name ("/" name)*                        -- e.g. company/id, _info/lastUpdated
    value      := "double-quoted string" | [ISO-8601 datetime] | int | decimal
                | true | false | null                    -- keywords case-insensitive

Facts and their sources (research/psa-apis.md 1.4):

- strings in double quotes, datetimes in square brackets, ints/bools/null bare: pyconnectwise
  ``utils/experimental/condition.py``; django-connectwise ``sync.py`` (``parentTicketId=null``,
  ``status/id not in (…)``, ``lastUpdated>[…]``).
- escaping inside strings: ``\\"`` and ``\\\\`` ([secondary]; no official page found); any other
  backslash is kept literally.
- unknown field → 400 ``{"code": "ApiFindCondition", "message": "<name> is not a recognized
  name."}`` (LabtechConsulting/ConnectWise-Manage-Powershell issue #4), echoing the name as sent.

Emulator choices where no source says (marked [unverified] in the report):

- field names are matched case-sensitively; keywords case-insensitively;
- string comparisons are case-insensitive (SQL Server's default collation);
- ``like`` treats only ``%`` as a wildcard;
- comparisons with a missing/null value are false (SQL three-valued logic) except ``= null`` and
  ``!= null``;
- a datetime without an offset is taken as UTC; fractional seconds compare exactly against the
  whole-second values the API stores;
- a malformed expression → 400 ``ApiFindCondition`` with a message naming the position.

``compile_conditions`` parses once and returns a predicate built from closures, so filtering
100,000 records re-parses nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

Record = Mapping[str, Any]
Predicate = Callable[[Record], bool]
Getter = Callable[[Record], Any]


class ConditionError(ValueError):
    """A ``conditions``/``orderBy`` value the API would answer with 400 ``ApiFindCondition``."""

    code = "ApiFindCondition"


# -- tokens -----------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<op>!=|<=|>=|=|<|>)
  | (?P<string>")
  | (?P<datetime>\[[^\]]*\])
  | (?P<number>-?\d+(?:\.\d+)?(?![A-Za-z_]))
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*)
    """,
    re.VERBOSE,
)

_KEYWORDS = frozenset({"and", "or", "not", "in", "like", "contains", "true", "false", "null"})


@dataclass(frozen=True)
class Token:
    kind: str  # lparen rparen comma op string datetime number name keyword end
    text: str
    pos: int
    value: Any = None


def _read_string(text: str, start: int) -> tuple[str, int]:
    """The string starting at the quote at ``start``; returns (value, index after the quote)."""
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in '"\\':
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise ConditionError(f"Unterminated string starting at position {start}.")


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if not m or m.lastgroup is None:
            raise ConditionError(f"Unexpected character {text[i]!r} at position {i}.")
        kind = m.lastgroup
        if kind == "ws":
            i = m.end()
            continue
        if kind == "string":
            value, end = _read_string(text, i)
            tokens.append(Token("string", text[i:end], i, value))
            i = end
            continue
        word = m.group()
        if kind == "name" and word.lower() in _KEYWORDS:
            tokens.append(Token("keyword", word, i, word.lower()))
        elif kind == "datetime":
            tokens.append(Token("datetime", word, i, _parse_datetime(word[1:-1], i)))
        elif kind == "number":
            tokens.append(Token("number", word, i, Decimal(word)))
        else:
            tokens.append(Token(kind, word, i, word))
        i = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def _parse_datetime(body: str, pos: int) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(body.strip())
    except ValueError:
        raise ConditionError(f"[{body}] at position {pos} is not a valid datetime.") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


# -- AST --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    kind: str  # string number bool null datetime
    value: Any


@dataclass(frozen=True)
class Compare:
    field: str
    op: str  # = != < <= > >= like contains
    value: Literal
    negate: bool = False


@dataclass(frozen=True)
class InList:
    field: str
    values: tuple[Literal, ...]
    negate: bool = False


@dataclass(frozen=True)
class BoolOp:
    op: str  # and | or
    items: tuple[Node, ...]


Node = Compare | InList | BoolOp


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def is_keyword(self, *words: str) -> bool:
        return self.tok.kind == "keyword" and self.tok.value in words

    def fail(self, expected: str) -> ConditionError:
        tok = self.tok
        found = "end of conditions" if tok.kind == "end" else repr(tok.text)
        return ConditionError(f"Expected {expected} at position {tok.pos}, found {found}.")

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise ConditionError("Conditions are empty.")
        node = self.expr()
        if self.tok.kind != "end":
            raise self.fail("'and', 'or' or the end of conditions")
        return node

    def expr(self) -> Node:
        items = [self.and_expr()]
        while self.is_keyword("or"):
            self.advance()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def and_expr(self) -> Node:
        items = [self.primary()]
        while self.is_keyword("and"):
            self.advance()
            items.append(self.primary())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def primary(self) -> Node:
        if self.tok.kind == "lparen":
            self.advance()
            node = self.expr()
            if self.tok.kind != "rparen":
                raise self.fail("')'")
            self.advance()
            return node
        if self.tok.kind != "name":
            raise self.fail("a field name")
        field = self.advance().text
        negate = False
        if self.is_keyword("not"):
            self.advance()
            negate = True
            if not self.is_keyword("in", "like", "contains"):
                raise self.fail("'in', 'like' or 'contains' after 'not'")
        if self.is_keyword("in"):
            self.advance()
            return InList(field, self.value_list(), negate)
        if self.is_keyword("like", "contains"):
            op = self.advance().value
            value = self.value()
            if value.kind != "string":
                raise ConditionError(f"'{op}' needs a quoted string (field {field}).")
            return Compare(field, op, value, negate)
        if self.tok.kind != "op":
            raise self.fail("an operator")
        op = self.advance().text
        return Compare(field, op, self.value())

    def value_list(self) -> tuple[Literal, ...]:
        if self.tok.kind != "lparen":
            raise self.fail("'(' after 'in'")
        self.advance()
        values = [self.value()]
        while self.tok.kind == "comma":
            self.advance()
            values.append(self.value())
        if self.tok.kind != "rparen":
            raise self.fail("',' or ')'")
        self.advance()
        return tuple(values)

    def value(self) -> Literal:
        tok = self.tok
        if tok.kind == "string":
            self.advance()
            return Literal("string", tok.value)
        if tok.kind == "number":
            self.advance()
            return Literal("number", tok.value)
        if tok.kind == "datetime":
            self.advance()
            return Literal("datetime", tok.value)
        if tok.kind == "keyword" and tok.value in ("true", "false"):
            self.advance()
            return Literal("bool", tok.value == "true")
        if tok.kind == "keyword" and tok.value == "null":
            self.advance()
            return Literal("null", None)
        raise self.fail("a value")


def parse(text: str) -> Node:
    """Parse ``conditions`` text into an AST; raises ``ConditionError``."""
    return _Parser(text).parse()


# -- compilation ------------------------------------------------------------------------------


class Schema:
    """The names a resource accepts in conditions and orderBy, each resolved to a path.

    ``paths`` are the record's comparable (scalar) paths, e.g. ``("company", "id")``; ``aliases``
    map extra names to a path (``lastUpdated`` → ``_info/lastUpdated``).
    """

    def __init__(
        self, paths: Sequence[tuple[str, ...]], aliases: Mapping[str, tuple[str, ...]] | None = None
    ) -> None:
        self.names: dict[str, tuple[str, ...]] = {"/".join(p): tuple(p) for p in paths}
        for alias, path in (aliases or {}).items():
            self.names[alias] = tuple(path)

    @classmethod
    def from_record(
        cls, template: Mapping[str, Any], aliases: Mapping[str, tuple[str, ...]] | None = None
    ) -> Schema:
        """Every scalar path of ``template`` (nested dicts walked; lists are not comparable)."""
        paths: list[tuple[str, ...]] = []

        def walk(obj: Mapping[str, Any], prefix: tuple[str, ...]) -> None:
            for key, value in obj.items():
                if isinstance(value, Mapping):
                    walk(value, (*prefix, key))
                elif not isinstance(value, list):
                    paths.append((*prefix, key))

        walk(template, ())
        return cls(paths, aliases)

    def resolve(self, name: str) -> tuple[str, ...]:
        path = self.names.get(name)
        if path is None:
            raise ConditionError(f"{name} is not a recognized name.")
        return path


def getter(path: tuple[str, ...]) -> Getter:
    if len(path) == 1:
        (key,) = path
        return lambda r: r.get(key)
    if len(path) == 2:
        first, second = path

        def get2(r: Record) -> Any:
            inner = r.get(first)
            return inner.get(second) if isinstance(inner, Mapping) else None

        return get2

    def get_n(r: Record) -> Any:
        value: Any = r
        for key in path:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
        return value

    return get_n


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
    "=": lambda a, b: bool(a == b),
    "!=": lambda a, b: bool(a != b),
}


def _iso(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _compare_datetime(get: Getter, op: str, value: dt.datetime) -> Predicate:
    """Stored datetimes are ``yyyy-MM-ddTHH:mm:ssZ`` strings: compare as strings, exactly."""
    whole = _iso(value)
    if value.microsecond:
        # A stored whole second s vs. whole+f (0<f<1): s > x ⟺ s > whole; s < x ⟺ s <= whole.
        if op == "=":
            return lambda r: False
        if op == "!=":
            return lambda r: isinstance(get(r), str)
        op = ">" if op in (">", ">=") else "<="
    cmp = _ORDER[op]

    def pred(r: Record) -> bool:
        v = get(r)
        return isinstance(v, str) and cmp(v, whole)

    return pred


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, str):
        try:
            return float(Decimal(value.strip()))
        except (InvalidOperation, ValueError):
            return None
    return None


def _compare_scalar(get: Getter, op: str, lit: Literal) -> Predicate:
    cmp = _ORDER[op]
    if lit.kind == "null":
        if op == "=":
            return lambda r: get(r) is None
        if op == "!=":
            return lambda r: get(r) is not None
        raise ConditionError(f"Operator {op} cannot be used with null.")
    if lit.kind == "bool":
        if op not in ("=", "!="):
            raise ConditionError(f"Operator {op} cannot be used with true/false.")
        want: bool = lit.value

        def pred_bool(r: Record) -> bool:
            v = get(r)
            return isinstance(v, bool) and cmp(v, want)

        return pred_bool
    if lit.kind == "datetime":
        return _compare_datetime(get, op, lit.value)
    if lit.kind == "number":
        num = float(lit.value)
        text = str(lit.value).casefold()

        def pred_num(r: Record) -> bool:
            v = get(r)
            if v is None or isinstance(v, bool):
                return False
            if isinstance(v, str):
                n = _as_number(v)
                return cmp(n, num) if n is not None else cmp(v.casefold(), text)
            return isinstance(v, int | float) and cmp(float(v), num)

        return pred_num
    # string literal
    folded = str(lit.value).casefold()
    as_num = _as_number(lit.value)
    as_bool = {"true": True, "false": False}.get(folded)

    def pred_str(r: Record) -> bool:
        v = get(r)
        if isinstance(v, str):
            return cmp(v.casefold(), folded)
        if v is None:
            return False
        if isinstance(v, bool):
            return as_bool is not None and op in ("=", "!=") and cmp(v, as_bool)
        if isinstance(v, int | float):
            return as_num is not None and cmp(float(v), as_num)
        return False

    return pred_str


def _like_regex(pattern: str) -> re.Pattern[str]:
    parts = [".*" if p == "%" else re.escape(p) for p in re.split(r"(%)", pattern.casefold()) if p]
    return re.compile("".join(parts), re.DOTALL)


def _compile_node(node: Node, schema: Schema) -> Predicate:
    if isinstance(node, BoolOp):
        preds = tuple(_compile_node(n, schema) for n in node.items)
        if node.op == "and":
            return lambda r: all(p(r) for p in preds)
        return lambda r: any(p(r) for p in preds)
    get = getter(schema.resolve(node.field))
    if isinstance(node, InList):
        members = [_compare_scalar(get, "=", lit) for lit in node.values]
        strings = {str(lit.value).casefold() for lit in node.values if lit.kind == "string"}
        numbers = {float(lit.value) for lit in node.values if lit.kind == "number"}
        simple = len(strings) + len(numbers) == len(node.values)

        def pred_in(r: Record) -> bool:
            v = get(r)
            if v is None:
                return False
            if simple and isinstance(v, str) and not numbers:
                found = v.casefold() in strings
            elif simple and isinstance(v, int | float) and not isinstance(v, bool) and not strings:
                found = float(v) in numbers
            else:
                found = any(m(r) for m in members)
            return found != node.negate

        return pred_in
    if node.op in ("like", "contains"):
        needle = str(node.value.value).casefold()
        if node.op == "like":
            regex = _like_regex(needle)

            def match(s: str) -> bool:
                return regex.fullmatch(s) is not None

        else:

            def match(s: str) -> bool:
                return needle in s

        negate = node.negate

        def pred_text(r: Record) -> bool:
            v = get(r)
            if not isinstance(v, str):
                return False
            return match(v.casefold()) != negate

        return pred_text
    return _compare_scalar(get, node.op, node.value)


def compile_conditions(text: str, schema: Schema) -> Predicate:
    """Parse and compile ``conditions`` against ``schema``; raises ``ConditionError``."""
    return _compile_node(parse(text), schema)


# -- orderBy ----------------------------------------------------------------------------------

_ORDER_ITEM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_/]*)\s*(?:\s(asc|desc))?\s*$", re.IGNORECASE)


def parse_order_by(text: str, schema: Schema) -> list[tuple[Getter, bool]]:
    """``"name asc, _info/lastUpdated desc"`` → [(getter, descending)]."""
    keys: list[tuple[Getter, bool]] = []
    for part in text.split(","):
        m = _ORDER_ITEM.match(part)
        if not m:
            raise ConditionError(f"orderBy item {part.strip()!r} is not valid.")
        path = schema.resolve(m.group(1))
        keys.append((getter(path), (m.group(2) or "asc").lower() == "desc"))
    return keys


def sort_key(get: Getter) -> Callable[[Record], tuple[int, Any]]:
    """Nulls first; strings compared case-insensitively."""

    def key(r: Record) -> tuple[int, Any]:
        v = get(r)
        if v is None:
            return (0, 0)
        if isinstance(v, str):
            return (2, v.casefold())
        if isinstance(v, bool):
            return (1, int(v))
        return (1, v)

    return key


__all__ = [
    "BoolOp",
    "Compare",
    "ConditionError",
    "InList",
    "Literal",
    "Node",
    "Predicate",
    "Schema",
    "compile_conditions",
    "getter",
    "parse",
    "parse_order_by",
    "sort_key",
    "tokenize",
]
