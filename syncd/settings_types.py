"""Field types that connector settings models share, so each validates one way everywhere."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator


def http_url(value: str) -> str:
    """``value`` if it is an http(s) URL with a host; ValueError otherwise."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL, e.g. https://api.example.com")
    return value


# An http(s) URL with a host: API roots, token endpoints, on-premise servers, sandboxes.
HttpUrlText = Annotated[str, AfterValidator(http_url)]
