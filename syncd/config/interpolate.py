"""Resolve ``${ENV_VAR}`` references and ``*_file`` secrets in a parsed TOML tree.

Both are resolved before validation, so the models only ever see final values. Every problem is
collected with its key path; nothing is raised half-way, so a user fixes a config in one pass.
Values that came from a ``*_file`` or from an environment variable named in a secret key are
reported back so the logging redactor can mask them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_KEY = re.compile(r"(secret|password|passwd|token|private_key|api_key|credential)", re.I)


@dataclass
class Resolution:
    value: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    # Dotted keys whose ``*_file`` failed: their "missing" would only repeat the same problem.
    unresolved: set[str] = field(default_factory=set)


def is_secret_key(key: str) -> bool:
    """True for keys whose values must never be logged (by name; models may add more)."""
    return bool(_SECRET_KEY.search(key))


def resolve(tree: Mapping[str, Any], *, base_dir: Path, env: Mapping[str, str]) -> Resolution:
    """Return a copy of ``tree`` with variables and files resolved, plus problems and secrets."""
    result = Resolution(value={})
    result.value = _resolve_table(tree, (), base_dir, env, result)
    return result


def _resolve_table(
    table: Mapping[str, Any],
    path: tuple[str, ...],
    base_dir: Path,
    env: Mapping[str, str],
    out: Resolution,
) -> dict[str, Any]:
    resolved: dict[str, Any] = {}
    for key, value in table.items():
        resolved[key] = _resolve_value(value, (*path, key), base_dir, env, out)
    for key in [k for k in resolved if k.endswith("_file") and len(k) > len("_file")]:
        target = key[: -len("_file")]
        dotted = ".".join((*path, key))
        if target in resolved:
            out.problems.append(f"{dotted}: both {target!r} and {key!r} are set; keep one of them")
            continue
        source = resolved.pop(key)
        if not isinstance(source, str):
            out.problems.append(f"{dotted}: expected a file path string")
            continue
        secret = _read_secret_file(base_dir / os.path.expanduser(source), dotted, out)
        if secret is None:
            out.unresolved.add(".".join((*path, target)))
        else:
            resolved[target] = secret
            out.secrets.add(secret)
    return resolved


def _read_secret_file(file: Path, dotted: str, out: Resolution) -> str | None:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        out.problems.append(f"{dotted}: file {str(file)!r} does not exist")
    except PermissionError:
        out.problems.append(f"{dotted}: file {str(file)!r} is not readable (permission denied)")
    except IsADirectoryError:
        out.problems.append(f"{dotted}: {str(file)!r} is a directory, expected a file")
    except UnicodeDecodeError:
        out.problems.append(f"{dotted}: file {str(file)!r} is not UTF-8 text")
    except OSError as exc:
        out.problems.append(f"{dotted}: cannot read {str(file)!r}: {type(exc).__name__}")
    else:
        value = text.rstrip("\r\n")
        if not value:
            out.problems.append(f"{dotted}: file {str(file)!r} is empty")
            return None
        return value
    return None


def _resolve_value(
    value: Any, path: tuple[str, ...], base_dir: Path, env: Mapping[str, str], out: Resolution
) -> Any:
    if isinstance(value, dict):
        return _resolve_table(value, path, base_dir, env, out)
    if isinstance(value, list):
        return [_resolve_value(v, (*path, str(i)), base_dir, env, out) for i, v in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        if name not in env:
            out.problems.append(f"{'.'.join(path)}: environment variable ${{{name}}} is not set")
            return ""
        if is_secret_key(path[-1]):
            out.secrets.add(env[name])
        return env[name]

    return _VAR.sub(substitute, value)
