"""Structured logging with structlog: JSON lines for machines, readable lines for people.

Logs go to stderr, so ``syncd export`` can write data to stdout; the format follows whether stderr
is a terminal (``logging.format = "auto"``). Every event passes through the redactor, so a secret
registered by the config loader or the token vault is masked in any field of any line.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from syncd.redact import REDACTOR, Redactor

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_LEVELS["error"] = logging.ERROR


def redaction_processor(redactor: Redactor) -> structlog.types.Processor:
    """A structlog processor that masks every registered secret in every value of an event."""

    def redact(
        _logger: Any, _name: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if not redactor.secrets:
            return event
        return {key: redactor.redact(value) for key, value in event.items()}

    return redact


def _exception_text(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    # Turn exc_info into text *before* redaction, so secrets in exception messages are masked too.
    exc_info = event.pop("exc_info", None)
    if exc_info:
        if exc_info is True:
            exc_info = sys.exc_info()
        if isinstance(exc_info, BaseException):
            exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
        event["exception"] = structlog.processors.format_exc_info(
            _logger, _name, {"exc_info": exc_info}
        ).get("exception", "")
    return event


def configure_logging(
    level: str = "info",
    fmt: str = "auto",
    *,
    stream: TextIO | None = None,
    redactor: Redactor = REDACTOR,
) -> None:
    """Set up structlog for the whole process; call once at start (tests may call it again)."""
    out = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if use_json
        else structlog.dev.ConsoleRenderer(
            colors=out.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _exception_text,
            redaction_processor(redactor),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = "syncd", **bound: Any) -> Any:
    """A logger with ``bound`` keys on every line (e.g. connection and run_id)."""
    return structlog.get_logger(name).bind(**bound)
