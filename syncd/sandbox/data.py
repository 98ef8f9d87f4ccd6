"""Deterministic seeded data for emulators: same seed, same records, on every machine.

Everything draws from one ``random.Random(seed)``; nothing reads the wall clock. Names include the
awkward cases that break naive query escaping and matching: double quotes, apostrophes, ampersands,
backslashes, ``%``/``_`` (LIKE wildcards), commas, and non-ASCII text.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import unicodedata
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import TypeVar

T = TypeVar("T")

AWKWARD_NAMES: tuple[str, ...] = (
    'The "Quoted" Company',
    "O'Brien & Sons",
    "Back\\Slash Systems",
    "Café Zürich GmbH",
    "Smith, Jones & Partners",
    "100% Uptime_Services",
    "Ünïcødé ☃ IT Ltd",
    "株式会社テスト",
    'Trailing Quote "',
    "Plus+Hash#Semi;Colon",
    "Emoji 🚀 Networks",
    "Angle <b>Brackets</b> & Co",
    'Escape \\" Mix',
    'Ma & Pa\'s "Corner" Shop',
)
"""Names that a client must escape correctly; emulators place them deterministically."""

AWKWARD_PEOPLE: tuple[tuple[str, str], ...] = (
    ("Seán", "O'Neil"),
    ("Zoë", "Ångström"),
    ('Bob "Bobby"', "Tables"),
    ("José", "Nuñez\\Garcia"),
)

_ADJECTIVES = (
    "Blue", "Rapid", "Summit", "Northern", "Bright", "Granite", "Harbor", "Keystone", "Liberty",
    "Maple", "Pioneer", "Redwood", "Silver", "Tidewater", "Vertex", "Western", "Cedar", "Atlas",
)  # fmt: skip
_NOUNS = (
    "Dental", "Logistics", "Legal", "Medical", "Realty", "Foods", "Builders", "Accounting",
    "Insurance", "Studios", "Motors", "Labs", "Manufacturing", "Clinic", "Partners", "Outfitters",
)  # fmt: skip
_SUFFIXES = ("LLC", "Inc.", "Ltd", "Group", "Co.", "PLLC", "Corp", "")
_FIRST = (
    "Alice", "Ben", "Carla", "Dev", "Elena", "Femi", "Grace", "Hiro", "Ines", "Jamal", "Kofi",
    "Lena", "Marco", "Nadia", "Owen", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Victor",
)  # fmt: skip
_LAST = (
    "Anders", "Baker", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jones",
    "Khan", "Lopez", "Morgan", "Novak", "Okafor", "Patel", "Reyes", "Singh", "Turner", "Walsh",
)  # fmt: skip


def iso_z(value: dt.datetime) -> str:
    """``yyyy-MM-ddTHH:mm:ssZ`` in UTC (the format most PSA APIs use)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ascii_slug(text: str, sep: str = "") -> str:
    """Letters and digits only (accents folded), joined by ``sep``."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.findall(r"[A-Za-z0-9]+", folded)
    return sep.join(words)


class SeededData:
    """Random but reproducible values. ``SeededData(7).company_name()`` is the same everywhere."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)

    def choice(self, items: Sequence[T]) -> T:
        return self.rng.choice(items)

    def chance(self, probability: float) -> bool:
        return self.rng.random() < probability

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def company_name(self) -> str:
        parts = [self.choice(_ADJECTIVES), self.choice(_NOUNS), self.choice(_SUFFIXES)]
        return " ".join(p for p in parts if p)

    @staticmethod
    def awkward_name(index: int) -> str:
        return AWKWARD_NAMES[index % len(AWKWARD_NAMES)]

    def person(self, awkward: bool = False) -> tuple[str, str]:
        if awkward:
            return self.choice(AWKWARD_PEOPLE)
        return self.choice(_FIRST), self.choice(_LAST)

    @staticmethod
    def email(local: str, domain: str) -> str:
        name = ascii_slug(local, ".").lower() or "billing"
        host = ascii_slug(domain, "").lower() or "example"
        return f"{name}@{host[:30]}.example"

    @staticmethod
    def identifier(name: str, taken: set[str], max_length: int = 25) -> str:
        """A short unique code derived from ``name`` (letters and digits), recorded in ``taken``."""
        base = (ascii_slug(name) or "Company")[: max_length - 3]
        candidate, n = base, 1
        while candidate.lower() in taken:
            n += 1
            candidate = f"{base}{n}"
        taken.add(candidate.lower())
        return candidate

    def money(self, low: float, high: float, places: int = 2) -> Decimal:
        quantum = Decimal(1).scaleb(-places)
        return Decimal(str(self.rng.uniform(low, high))).quantize(quantum, rounding=ROUND_HALF_UP)

    def datetime_between(self, start: dt.datetime, end: dt.datetime) -> dt.datetime:
        """A whole-second instant in [start, end]."""
        span = int((end - start).total_seconds())
        return start + dt.timedelta(seconds=self.rng.randint(0, max(span, 0)))

    def token(self, length: int = 32) -> str:
        alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        return "".join(self.rng.choice(alphabet) for _ in range(length))


__all__ = ["AWKWARD_NAMES", "AWKWARD_PEOPLE", "SeededData", "ascii_slug", "iso_z"]
