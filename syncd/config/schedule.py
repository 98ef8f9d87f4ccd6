"""Schedules: a duration ("30s", "5m", "1h", "1d", "1h30m") or a five-field cron string."""

from __future__ import annotations

import re
from dataclasses import dataclass

from apscheduler.triggers.cron import CronTrigger

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_UNIT_SECONDS = (86400, 3600, 60, 1)


def parse_duration(text: str) -> int:
    """Seconds in a duration like "90s", "5m", "1h30m" or "2d"; ValueError otherwise."""
    match = _DURATION.match(text.strip().lower())
    if not text.strip() or match is None or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration (use e.g. 30s, 5m, 1h, 1d)")
    return sum(int(g or 0) * unit for g, unit in zip(match.groups(), _UNIT_SECONDS, strict=True))


@dataclass(frozen=True)
class Schedule:
    """When a connection syncs: every ``seconds``, or on a ``cron`` expression (UTC)."""

    text: str
    seconds: int | None = None
    cron: str | None = None

    @classmethod
    def parse(cls, text: str) -> Schedule:
        try:
            seconds = parse_duration(text)
        except ValueError:
            pass
        else:
            if seconds < 1:
                raise ValueError(f"{text!r} is zero; a schedule needs a positive interval")
            return cls(text=text, seconds=seconds)
        try:
            CronTrigger.from_crontab(text, timezone="UTC")
        except ValueError:
            raise ValueError(
                f"{text!r} is not a duration or cron expression "
                '(use e.g. "5m", "1h" or "*/15 * * * *")'
            ) from None
        return cls(text=text, cron=text)

    def __str__(self) -> str:
        return self.text
