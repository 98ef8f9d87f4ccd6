from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.config.schedule import Schedule, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h", 3600), ("1d", 86400), ("1h30m", 5400), ("2d4h", 187200)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds
    assert Schedule.parse(text).seconds == seconds


@pytest.mark.parametrize("text", ["", "5", "5 minutes", "m5", "1.5h", "-5m", "5x"])
def test_not_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["*/15 * * * *", "0 2 * * *", "0 9-17 * * mon-fri"])
def test_cron(text: str) -> None:
    assert Schedule.parse(text).cron == text


@pytest.mark.parametrize("text", ["5 minutes", "* * *", "61 * * * *", "0s"])
def test_neither(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a duration or cron|is zero"):
        Schedule.parse(text)


@given(st.integers(0, 99), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
def test_duration_parts_add_up(d: int, h: int, m: int, s: int) -> None:
    text = "".join(f"{v}{u}" for v, u in ((d, "d"), (h, "h"), (m, "m"), (s, "s")) if v)
    if text:
        assert parse_duration(text) == d * 86400 + h * 3600 + m * 60 + s
