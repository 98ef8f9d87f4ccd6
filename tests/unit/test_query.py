"""The query-literal functions: examples per dialect, and read-back properties.

Each dialect gets a tiny reference parser of its string literal, written from the grammar in the
research notes rather than from the implementation, so ``parse(escape(s)) == s`` checks the
escaping and the "ends exactly at the last character" check proves no value can close the literal
early and smuggle in query text.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd import query as q

AWKWARD = [
    'O\'Brien & Sons "Best" \\ Co',
    "100% Café",
    "🧾 Invoices & 💸",
    "",
    "'",
    "\\'",
    "' OR 1=1 --",
    '" or id > 0 or name = "',
    "a\\",
    "''",
    "Straße, Zürich",
]


# --- reference parsers --------------------------------------------------------------------------


def parse_backslash_literal(literal: str, quote: str) -> tuple[str, int]:
    """Read a ``quote``-delimited literal with backslash escapes; return (text, end index)."""
    assert literal[0] == quote
    out: list[str] = []
    i = 1
    while i < len(literal):
        char = literal[i]
        if char == "\\":
            assert i + 1 < len(literal), "dangling backslash"
            out.append(literal[i + 1])
            i += 2
        elif char == quote:
            return "".join(out), i
        else:
            out.append(char)
            i += 1
    raise AssertionError("unterminated literal")


def parse_odata_literal(literal: str) -> tuple[str, int]:
    """Read an OData ``'…'`` literal where ``''`` stands for one quote."""
    assert literal[0] == "'"
    out: list[str] = []
    i = 1
    while i < len(literal):
        if literal[i] == "'":
            if literal[i + 1 : i + 2] == "'":
                out.append("'")
                i += 2
                continue
            return "".join(out), i
        out.append(literal[i])
        i += 1
    raise AssertionError("unterminated literal")


def alphabet(dialect: str) -> st.SearchStrategy[str]:
    return st.text(
        st.characters(exclude_categories=["Cs"], exclude_characters=q.REFUSED_CHARACTERS[dialect])
    )


# --- QuickBooks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", AWKWARD)
def test_qbo_string_reads_back(text: str) -> None:
    literal = q.qbo_string(text)
    parsed, end = parse_backslash_literal(literal, "'")
    assert (parsed, end) == (text, len(literal) - 1)


def test_qbo_string_examples() -> None:
    assert q.qbo_string("O'Brien") == r"'O\'Brien'"
    assert q.qbo_string("a\\b") == r"'a\\b'"
    assert q.qbo_string("100% Café") == "'100% Café'"


@given(alphabet(q.QBO))
def test_qbo_string_round_trips(text: str) -> None:
    literal = q.qbo_string(text)
    assert parse_backslash_literal(literal, "'") == (text, len(literal) - 1)


def test_qbo_datetime_is_utc_with_offset_to_the_second() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    moment = dt.datetime(2024, 5, 1, 14, 0, 0, 999_999, tzinfo=plus_two)
    assert q.qbo_datetime(moment) == "'2024-05-01T12:00:00+00:00'"
    assert q.qbo_date(dt.date(2024, 5, 1)) == "'2024-05-01'"


def test_qbo_select_builds_an_incremental_query() -> None:
    since = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    text = q.qbo_select(
        "Customer",
        where=[
            ("MetaData.LastUpdatedTime", ">=", since),
            ("Active", "in", (True, False)),
            ("DisplayName", "LIKE", q.qbo_like_pattern("O'Brien", "prefix")),
            ("Balance", ">", Decimal("0.00")),
        ],
        order_by="MetaData.LastUpdatedTime asc",
        start_position=1,
        max_results=1000,
    )
    assert text == (
        "SELECT * FROM Customer WHERE MetaData.LastUpdatedTime >= '2024-01-01T00:00:00+00:00' "
        "AND Active IN (true, false) AND DisplayName LIKE 'O\\'Brien%' AND Balance > 0.00 "
        "ORDERBY MetaData.LastUpdatedTime ASC STARTPOSITION 1 MAXRESULTS 1000"
    )
    assert q.qbo_select("Invoice", count=True) == "SELECT COUNT(*) FROM Invoice"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"entity": "Invoice; DROP"}, "'Invoice; DROP'"),
        ({"entity": "Invoice", "where": [("Id = '1' OR Id", "=", "2")]}, "\"Id = '1' OR Id\""),
        ({"entity": "Invoice", "where": [("Id", "OR", "2")]}, "unknown operator"),
        ({"entity": "Invoice", "where": [("Id", "IN", ())]}, "at least one"),
        ({"entity": "Invoice", "order_by": "TxnDate SIDEWAYS"}, "ASC or DESC"),
        ({"entity": "Invoice", "order_by": "Txn-Date"}, "'Txn-Date'"),
        ({"entity": "Invoice", "max_results": 1001}, "1..1000"),
        ({"entity": "Invoice", "start_position": 0}, "1-based"),
        ({"entity": "1Invoice"}, "'1Invoice'"),
        ({"entity": "Meta..Data"}, "'Meta..Data'"),
    ],
)
def test_qbo_select_refuses(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        q.qbo_select(**kwargs)  # type: ignore[arg-type]


def test_qbo_refusals() -> None:
    with pytest.raises(ValueError, match="QuickBooks query: value contains NUL"):
        q.qbo_string("a\x00b")
    with pytest.raises(ValueError, match=r"control character \(U\+000A\) at offset 1"):
        q.qbo_string("a\nb")
    with pytest.raises(ValueError, match="naive datetime"):
        q.qbo_datetime(dt.datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="not a finite number"):
        q.qbo_value(Decimal("NaN"))
    with pytest.raises(TypeError, match="float"):
        q.qbo_value(1.5)
    with pytest.raises(TypeError, match="cannot express NoneType"):
        q.qbo_value(None)
    with pytest.raises(ValueError, match="'%'"):
        q.qbo_like_pattern("100%")
    with pytest.raises(ValueError, match="lone surrogate"):
        q.qbo_string("a\ud800")


# --- ConnectWise --------------------------------------------------------------------------------


@pytest.mark.parametrize("text", AWKWARD)
def test_cw_string_reads_back(text: str) -> None:
    literal = q.cw_string(text)
    assert parse_backslash_literal(literal, '"') == (text, len(literal) - 1)


@given(alphabet(q.CW))
def test_cw_string_round_trips(text: str) -> None:
    literal = q.cw_string(text)
    assert parse_backslash_literal(literal, '"') == (text, len(literal) - 1)


def test_cw_examples() -> None:
    assert q.cw_string('say "hi" \\o/') == r'"say \"hi\" \\o/"'
    assert q.cw_string("O'Brien") == '"O\'Brien"'  # apostrophes need no escape here
    eastern = dt.timezone(dt.timedelta(hours=-5))
    moment = dt.datetime(2015, 12, 23, 0, 53, 27, 500_000, tzinfo=eastern)
    assert q.cw_datetime(moment) == "[2015-12-23T05:53:27Z]"
    assert q.cw_value(True) == "true"
    assert q.cw_value(None) == "null"
    assert q.cw_value(42) == "42"
    assert q.cw_value(Decimal("1E+2")) == "100"
    assert q.cw_value("x") == '"x"'
    assert q.cw_condition("_info/lastUpdated", ">", moment) == (
        "_info/lastUpdated > [2015-12-23T05:53:27Z]"
    )
    assert q.cw_condition("status/id", "NOT  IN", [1, 2]) == "status/id not in (1,2)"
    assert q.cw_condition("name", "like", "Fred%") == 'name like "Fred%"'


AWARE = st.datetimes(
    min_value=dt.datetime(2, 1, 1),  # naive bounds: hypothesis attaches the zones
    max_value=dt.datetime(9998, 12, 31),
    timezones=st.timezones(),
)


@given(AWARE)
def test_datetimes_read_back_in_every_dialect(moment: dt.datetime) -> None:
    utc = moment.astimezone(dt.UTC)
    floored = utc.replace(microsecond=0)
    cw = dt.datetime.strptime(q.cw_datetime(moment), "[%Y-%m-%dT%H:%M:%SZ]")
    assert cw.replace(tzinfo=dt.UTC) == floored
    qbo, _ = parse_backslash_literal(q.qbo_datetime(moment), "'")
    assert dt.datetime.fromisoformat(qbo) == floored
    assert dt.datetime.fromisoformat(q.odata_datetime(moment)) == utc
    at = q.at_filter("lastActivityDate", "gt", moment)["value"]
    assert isinstance(at, str)
    assert dt.datetime.fromisoformat(at) == utc


def test_datetimes_out_of_range_in_utc_are_refused() -> None:
    east = dt.timezone(dt.timedelta(hours=5))
    with pytest.raises(ValueError, match="out of range in UTC"):
        q.cw_datetime(dt.datetime(1, 1, 1, tzinfo=east))


def test_cw_refusals() -> None:
    with pytest.raises(ValueError, match="ConnectWise conditions: value contains NUL"):
        q.cw_string("\x00")
    with pytest.raises(ValueError, match="control character"):
        q.cw_string("line\r\nbreak")
    with pytest.raises(ValueError, match="naive datetime"):
        q.cw_value(dt.datetime(2024, 1, 1))
    with pytest.raises(TypeError, match="not a date"):
        q.cw_value(dt.date(2024, 1, 1))
    with pytest.raises(ValueError, match="not a finite number"):
        q.cw_value(Decimal("Infinity"))
    with pytest.raises(TypeError, match="float"):
        q.cw_value(0.1)
    for bad in ("status//id", "/id", "name or 1", "id)", 'a"b', ""):
        with pytest.raises(ValueError, match="not a valid identifier"):
            q.cw_field(bad)
    with pytest.raises(ValueError, match="unknown operator"):
        q.cw_condition("id", "==", 1)


# --- Autotask -----------------------------------------------------------------------------------


def test_at_query_shape() -> None:
    since = dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)
    body = q.at_query(
        [
            q.at_filter("id", "gt", 123),
            q.at_or(
                q.at_filter("companyName", "beginsWith", 'O\'Brien "Best"'),
                q.at_filter("lastActivityDate", "gte", since),
            ),
            q.at_filter("Accounting ID", "exist", udf=True),
            q.at_filter("companyType", "in", [1, 3]),
        ],
        max_records=500,
        include_fields=["companyName"],
    )
    assert body == {
        "filter": [
            {"op": "gt", "field": "id", "value": 123},
            {
                "op": "or",
                "items": [
                    {"op": "beginsWith", "field": "companyName", "value": 'O\'Brien "Best"'},
                    {
                        "op": "gte",
                        "field": "lastActivityDate",
                        "value": "2024-01-01T12:00:00.000000Z",
                    },
                ],
            },
            {"op": "exist", "field": "Accounting ID", "udf": True},
            {"op": "in", "field": "companyType", "value": [1, 3]},
        ],
        "MaxRecords": 500,
        "IncludeFields": ["id", "companyName"],
    }
    assert json.loads(json.dumps(body)) == body


def test_at_decimal_values_are_exact_json_numbers() -> None:
    assert q.at_filter("invoiceTotal", "gt", Decimal("100.00"))["value"] == 100
    assert q.at_filter("invoiceTotal", "gt", Decimal("0.1"))["value"] == 0.1
    with pytest.raises(ValueError, match="more digits"):
        q.at_filter("invoiceTotal", "gt", Decimal("0.12345678901234567890123"))


@given(alphabet(q.AT))
def test_at_string_values_round_trip_through_json(text: str) -> None:
    body = q.at_query([q.at_filter("companyName", "eq", text)])
    wire = json.dumps(body)
    assert json.loads(wire)["filter"][0]["value"] == text


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: q.at_filter("companyName", "equals", "x"), "unknown op 'equals'"),
        (lambda: q.at_filter("company Name", "eq", "x"), "not a valid identifier"),
        (lambda: q.at_filter("isActive", "eq", None), "notExist"),
        (lambda: q.at_filter("id", "exist", 1), "takes no value"),
        (lambda: q.at_filter("id", "eq"), "needs a value"),
        (lambda: q.at_filter("id", "in", []), "at least one"),
        (lambda: q.at_filter("companyName", "eq", "a\x00"), "Autotask filter: value contains NUL"),
        (lambda: q.at_filter("d", "gt", dt.datetime(2024, 1, 1)), "naive"),
        (lambda: q.at_filter("x", "eq", Decimal("NaN")), "not a finite number"),
        (lambda: q.at_or(), "at least one item"),
        (lambda: q.at_or(*[q.at_filter("id", "eq", i) for i in range(501)]), "allows 500"),
        (lambda: q.at_query([]), "at least one filter"),
        (lambda: q.at_query([{"op": "eq", "field": "id; drop", "value": 1}]), "identifier"),
        (lambda: q.at_query([q.at_filter("id", "gt", 0)], max_records=501), "1..500"),
        (
            lambda: q.at_query(
                [q.at_filter("A", "eq", "1", udf=True), q.at_filter("B", "eq", "2", udf=True)]
            ),
            "2 UDFs in one query",
        ),
    ],
)
def test_at_refusals(build: object, message: str) -> None:
    assert callable(build)
    with pytest.raises((ValueError, TypeError), match=re.escape(message)):
        build()


def test_at_filter_keeps_control_characters_json_can_carry() -> None:
    assert q.at_filter("companyName", "eq", "tab\there")["value"] == "tab\there"


# --- OData (Business Central) -------------------------------------------------------------------


@pytest.mark.parametrize("text", AWKWARD)
def test_odata_string_reads_back(text: str) -> None:
    literal = q.odata_string(text)
    assert parse_odata_literal(literal) == (text, len(literal) - 1)


@given(alphabet(q.ODATA))
def test_odata_string_round_trips(text: str) -> None:
    literal = q.odata_string(text)
    assert parse_odata_literal(literal) == (text, len(literal) - 1)


def test_odata_examples() -> None:
    assert q.odata_string("O'Brien") == "'O''Brien'"
    assert q.odata_datetime(dt.datetime(2025, 1, 1, tzinfo=dt.UTC)) == "2025-01-01T00:00:00Z"
    cet = dt.timezone(dt.timedelta(hours=1))
    assert q.odata_datetime(dt.datetime(2025, 1, 1, 1, 0, 0, 250_000, tzinfo=cet)) == (
        "2025-01-01T00:00:00.250000Z"
    )
    assert q.odata_value(Decimal("1000.00")) == "1000.00"
    assert q.odata_value(None) == "null"
    assert q.odata_value(False) == "false"
    assert q.odata_value(dt.date(2025, 1, 31)) == "2025-01-31"
    ident = uuid.UUID("5d115c9c-44e3-ea11-bb43-000d3a2feca1")
    assert q.odata_value(ident) == "5d115c9c-44e3-ea11-bb43-000d3a2feca1"
    assert q.odata_condition("status", "eq", "Open") == "status eq 'Open'"
    assert q.odata_value("line\nbreak") == "'line\nbreak'"  # percent-encoding carries it


def test_odata_refusals() -> None:
    with pytest.raises(ValueError, match=r"OData \$filter: value contains NUL"):
        q.odata_string("\x00")
    with pytest.raises(ValueError, match="naive"):
        q.odata_value(dt.datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="unknown operator"):
        q.odata_condition("status", "==", "Open")
    with pytest.raises(ValueError, match="not a valid identifier"):
        q.odata_condition("status eq 'x' or 1", "eq", "Open")
    with pytest.raises(TypeError, match="expected str"):
        q.odata_string(1)  # type: ignore[arg-type]
