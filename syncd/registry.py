"""Connector discovery through the ``syncd.connectors`` entry-point group.

Lazy: a connector's module is imported only when a config names it or ``connectors list`` asks.
Type-checked: what an entry point loads must look like a ``Connector`` class. Contained: a plugin
that fails to import is reported with its reason and skipped, never taking the daemon down.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from pydantic import BaseModel

from syncd.connector import Capability, Connector
from syncd.errors import SyncdError

GROUP = "syncd.connectors"
_METHODS = ("check", "pull", "push_payment", "find_payment", "close")


class UnknownConnector(SyncdError, LookupError):
    """No installed connector has this name."""


class BrokenConnector(SyncdError):
    """A connector's entry point exists but cannot be imported or is not a connector."""


@dataclass(frozen=True)
class LoadFailure:
    name: str
    reason: str


class Registry:
    """The installed connectors, by name."""

    def __init__(self, eps: Iterable[EntryPoint] | None = None) -> None:
        found = entry_points(group=GROUP) if eps is None else eps
        self._entry_points = {ep.name: ep for ep in found}
        self._loaded: dict[str, type[Connector]] = {}

    def names(self) -> list[str]:
        return sorted(self._entry_points)

    def load(self, name: str) -> type[Connector]:
        """The connector class registered as ``name``; raises with the known names if none is."""
        if name in self._loaded:
            return self._loaded[name]
        try:
            ep = self._entry_points[name]
        except KeyError:
            known = ", ".join(self.names()) or "none installed"
            raise UnknownConnector(f"unknown connector {name!r} (known: {known})") from None
        try:
            obj = ep.load()
        except Exception as exc:  # any import-time failure of a plugin is contained here
            raise BrokenConnector(
                f"connector {name!r} ({ep.value}) failed to import: {type(exc).__name__}: {exc}"
            ) from exc
        problem = contract_problem(obj)
        if problem:
            raise BrokenConnector(f"connector {name!r} ({ep.value}) {problem}")
        connector: type[Connector] = obj
        self._loaded[name] = connector
        return connector

    def load_all(self) -> tuple[dict[str, type[Connector]], list[LoadFailure]]:
        """Every connector that loads, and the reasons of those that do not."""
        good: dict[str, type[Connector]] = {}
        bad: list[LoadFailure] = []
        for name in self.names():
            try:
                good[name] = self.load(name)
            except BrokenConnector as exc:
                bad.append(LoadFailure(name, str(exc)))
        return good, bad


def contract_problem(obj: object) -> str | None:
    """Why ``obj`` is not a connector class, or None when it is one."""
    if not inspect.isclass(obj):
        return f"is {type(obj).__name__}, not a class"
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        return "has no 'name' string"
    settings_model = getattr(obj, "settings_model", None)
    if not (inspect.isclass(settings_model) and issubclass(settings_model, BaseModel)):
        return "has no 'settings_model' pydantic model"
    capabilities = getattr(obj, "capabilities", None)
    if not isinstance(capabilities, frozenset) or not all(
        isinstance(c, Capability) for c in capabilities
    ):
        return "has no 'capabilities' frozenset of Capability"
    missing = [m for m in _METHODS if not callable(getattr(obj, m, None))]
    if missing:
        return f"lacks {', '.join(missing)}"
    return None


_DEFAULT: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry of installed connectors (built on first use)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Registry()
    return _DEFAULT
