"""Requests, responses and the router that vendor emulators register their handlers on.

A handler is a plain function ``(Request) -> Response``. It may also raise ``HTTPError`` carrying
a ready response (a vendor-style error body), which is often shorter than returning early from
deep inside a helper.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

JSON_TYPE = "application/json; charset=utf-8"


@dataclass
class Request:
    """One HTTP request as a handler sees it.

    ``query`` holds the first value of each query parameter, ``query_all`` every value.
    ``headers`` keys are lower-case (HTTP header names are case-insensitive). ``params`` holds the
    path parameters the matching route captured. ``base_url`` is the server's own absolute URL,
    for handlers that build links (RFC 5988 ``Link`` headers, ``next`` URLs).
    """

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    query_all: dict[str, list[str]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)
    base_url: str = ""
    raw_query: str = ""

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        """The body parsed as JSON; raises ``HTTPError`` (400) when it is not JSON."""
        try:
            return json.loads(self.body.decode("utf-8")) if self.body else None
        except (UnicodeDecodeError, ValueError) as exc:
            raise HTTPError(
                Response.json_body({"message": f"request body is not valid JSON: {exc}"}, 400)
            ) from None

    @property
    def url(self) -> str:
        return self.base_url + self.path + (f"?{self.raw_query}" if self.raw_query else "")


@dataclass
class Response:
    """What a handler returns: a status, raw body bytes and headers."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json_body(
        cls, data: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return cls(status, body, {"Content-Type": JSON_TYPE, **(headers or {})})

    @classmethod
    def text(
        cls, text: str, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        body = text.encode("utf-8")
        return cls(status, body, {"Content-Type": "text/plain; charset=utf-8", **(headers or {})})

    @classmethod
    def empty(cls, status: int = 204, headers: Mapping[str, str] | None = None) -> Response:
        return cls(status, b"", dict(headers or {}))

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


class HTTPError(Exception):
    """Raised by a handler to answer with ``response`` at once."""

    def __init__(self, response: Response) -> None:
        self.response = response
        super().__init__(f"HTTP {response.status}")


Handler = Callable[[Request], Response]

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::(int|path))?\}")


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """``/a/{id:int}/{name}`` → a regex; a pattern starting with ``^`` is taken as a regex as is.

    ``{name}`` matches one path segment, ``{name:int}`` digits only, ``{name:path}`` the rest of
    the path (slashes included).
    """
    if pattern.startswith("^"):
        return re.compile(pattern)
    parts: list[str] = []
    last = 0
    for m in _PARAM.finditer(pattern):
        parts.append(re.escape(pattern[last : m.start()]))
        kind = m.group(2)
        body = {"int": r"\d+", "path": r".+"}.get(kind or "", r"[^/]+")
        parts.append(f"(?P<{m.group(1)}>{body})")
        last = m.end()
    parts.append(re.escape(pattern[last:]))
    return re.compile("^" + "".join(parts) + "$")


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    regex: re.Pattern[str]
    handler: Handler

    @property
    def key(self) -> str:
        """``"GET /company/companies"``: the name faults and logs use for this route."""
        return f"{self.method} {self.pattern}"


@dataclass(frozen=True)
class Match:
    route: Route
    params: dict[str, str]


class Router:
    """Handlers by method and path pattern; the first registered route that matches wins."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str, pattern: str, handler: Handler) -> Route:
        route = Route(method.upper(), pattern, compile_pattern(pattern), handler)
        self._routes.append(route)
        return route

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        """Decorator form of ``add``."""

        def register(handler: Handler) -> Handler:
            self.add(method, pattern, handler)
            return handler

        return register

    @property
    def routes(self) -> tuple[Route, ...]:
        return tuple(self._routes)

    def match(self, method: str, path: str) -> Match | None:
        for route in self._routes:
            if route.method not in (method.upper(), "*"):
                continue
            m = route.regex.match(path)
            if m:
                return Match(route, {k: v for k, v in m.groupdict().items() if v is not None})
        return None

    def allowed(self, path: str) -> list[str]:
        """Methods that some route accepts at ``path`` (for a 405 answer)."""
        return sorted({r.method for r in self._routes if r.regex.match(path)})


def not_found(request: Request) -> Response:
    return Response.json_body(
        {"code": "NotFound", "message": f"no route for {request.method} {request.path}"}, 404
    )


__all__ = [
    "JSON_TYPE",
    "HTTPError",
    "Handler",
    "Match",
    "Request",
    "Response",
    "Route",
    "Router",
    "compile_pattern",
    "not_found",
]
