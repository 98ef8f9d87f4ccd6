"""What monitoring reads: ``/healthz`` (liveness), ``/readyz`` (readiness), ``/metrics``.

Readiness rules (``/readyz`` answers 503 with every failing reason, 200 when none):

* the store answers ``SELECT 1``;
* the scheduler is running (not starting, paused or stopping);
* no enabled connection is *stuck*. Per pull stream with history (sweeps do not count: they run
  daily and a failed sweep is a review matter, not an outage), the first run that its schedule
  made due after the last success (``due_after``) must have succeeded within ``stuck_after``.
  Time the daemon was not running is not held against a connection: the clock starts no earlier
  than the scheduler's start, which is also where a connection that never succeeded starts.

Liveness says only that the process serves HTTP; restarting a daemon because a vendor is down
would not help, so everything else lives in readiness.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import structlog
from fastapi import APIRouter, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from syncd.api.context import ApiContext, Context
from syncd.config.models import Settings
from syncd.status import SWEEP_SUFFIX, Instant, due_after
from syncd.store.reports import last_successes

_log = structlog.get_logger("syncd.api")
router = APIRouter(tags=["monitoring"])


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class StreamReadiness(BaseModel):
    connection: str
    stream: str | None  # None: the connection has no run history yet
    last_success_at: Instant | None
    stuck_at: Instant  # when it counts as stuck unless a run succeeds before
    stuck: bool


class Readiness(BaseModel):
    ready: bool
    reasons: list[str]  # empty when ready
    store: bool
    scheduler_running: bool
    jobs: int
    connections: list[StreamReadiness]


@router.get("/healthz", summary="Liveness: the process serves HTTP")
async def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    summary="Readiness: store reachable, scheduler running, no connection stuck",
    responses={503: {"model": Readiness, "description": "Not ready; `reasons` says why."}},
)
def readyz(context: Context, response: Response) -> Readiness:
    readiness = check_readiness(context)
    if not readiness.ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return readiness


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Metrics."}},
)
def metrics(context: Context) -> Response:
    return Response(generate_latest(context.registry), media_type=CONTENT_TYPE_LATEST)


def check_readiness(context: ApiContext) -> Readiness:
    """Probe the store, then judge with ``evaluate_readiness``."""
    successes: dict[tuple[str, str], dt.datetime | None] | None
    try:
        with context.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            successes = last_successes(conn)
    except SQLAlchemyError as exc:
        _log.warning("readiness_store_unavailable", error=type(exc).__name__)
        successes = None
    scheduler = context.scheduler
    return evaluate_readiness(
        context.settings,
        successes,
        running=scheduler.running,
        started_at=scheduler.started_at,
        jobs=scheduler.job_count(),
        now=context.clock.now(),
    )


def evaluate_readiness(
    settings: Settings,
    successes: dict[tuple[str, str], dt.datetime | None] | None,
    *,
    running: bool,
    started_at: dt.datetime | None,
    jobs: int,
    now: dt.datetime,
) -> Readiness:
    """The readiness rules as a pure function; ``successes`` is None when the store is down."""
    reasons: list[str] = []
    if successes is None:
        reasons.append("store: does not answer")
    if not running:
        reasons.append("scheduler: not running (starting, paused or stopping)")
    streams: list[StreamReadiness] = []
    stuck_after = dt.timedelta(seconds=settings.daemon.stuck_after)
    base = started_at or now
    for name, connection in sorted(settings.connections.items()):
        if not connection.enabled or successes is None:
            continue
        pulled: list[tuple[str | None, dt.datetime | None]] = sorted(
            (stream, last)
            for (owner, stream), last in successes.items()
            if owner == name and not stream.endswith(SWEEP_SUFFIX)
        )
        for stream, last in pulled or [(None, None)]:
            due = base if last is None else max(due_after(connection.schedule, last), base)
            stuck_at = due + stuck_after
            stuck = now >= stuck_at
            streams.append(
                StreamReadiness(
                    connection=name,
                    stream=stream,
                    last_success_at=last,
                    stuck_at=stuck_at,
                    stuck=stuck,
                )
            )
            if stuck:
                label = name if stream is None else f"{name}/{stream}"
                since = "the daemon started" if last is None else last.isoformat()
                reasons.append(
                    f"{label}: no successful pull since {since}; a run was due at "
                    f"{due.isoformat()} (stuck_after {_duration(stuck_after)})"
                )
    return Readiness(
        ready=not reasons,
        reasons=reasons,
        store=successes is not None,
        scheduler_running=running,
        jobs=jobs,
        connections=streams,
    )


def _duration(span: dt.timedelta) -> str:
    seconds = int(span.total_seconds())
    parts = [(seconds // 86400, "d"), (seconds % 86400 // 3600, "h"), (seconds % 3600 // 60, "m")]
    shown = "".join(f"{n}{unit}" for n, unit in parts if n) + (
        f"{seconds % 60}s" if seconds % 60 else ""
    )
    return shown or "0s"
