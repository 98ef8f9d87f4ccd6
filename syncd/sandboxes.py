"""Find the sandbox emulator a connector ships (its ``sandbox = "module:attribute"`` attribute)."""

from __future__ import annotations

import importlib
from typing import Any

from syncd.errors import SyncdError
from syncd.registry import Registry, default_registry
from syncd.sandbox import Sandbox


def sandbox_for(
    connector: str, *, seed: int = 7, registry: Registry | None = None, **sizes: Any
) -> Sandbox:
    """An unstarted sandbox for ``connector``; raises a clear error when it ships none."""
    cls = (registry or default_registry()).load(connector)
    target = getattr(cls, "sandbox", None)
    if not isinstance(target, str) or ":" not in target:
        raise SyncdError(f"connector {connector!r} ships no sandbox emulator")
    module_name, _, attribute = target.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise SyncdError(
            f"connector {connector!r}: sandbox {target!r} cannot be loaded: {exc}"
        ) from None
    sandbox = factory(seed=seed, **sizes)
    if not isinstance(sandbox, Sandbox):
        raise SyncdError(f"connector {connector!r}: {target!r} did not build a Sandbox")
    return sandbox


def sandbox_names(registry: Registry | None = None) -> list[str]:
    """Installed connectors that ship a sandbox."""
    good, _ = (registry or default_registry()).load_all()
    return sorted(
        name for name, cls in good.items() if isinstance(getattr(cls, "sandbox", None), str)
    )
