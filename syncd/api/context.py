"""What every endpoint reads: settings, store, scheduler state, clock, metrics registry.

``create_app`` puts one ``ApiContext`` on ``app.state``; endpoints (including routers plugged in
later, such as the payments API) take it as the ``Context`` dependency instead of importing
globals, so tests build an app around a fake scheduler and a fake clock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, Request
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import Engine

from syncd.clock import Clock
from syncd.config.models import Settings


class SchedulerState(Protocol):
    """What ``/readyz`` needs to know of the daemon's scheduler (``syncd.daemon.SchedulerStatus``
    implements it) without handing the HTTP app the scheduler itself."""

    @property
    def running(self) -> bool:
        """True while jobs are being scheduled: started, not paused, not stopping."""
        ...

    @property
    def started_at(self) -> dt.datetime | None:
        """When the scheduler started (None before): a never-run connection is not stuck until
        ``stuck_after`` past this instant."""
        ...

    def job_count(self) -> int: ...


@dataclass(frozen=True)
class ApiContext:
    settings: Settings
    engine: Engine
    scheduler: SchedulerState
    clock: Clock
    registry: CollectorRegistry  # what /metrics serves: process counters + store gauges


def api_context(request: Request) -> ApiContext:
    context = request.app.state.context
    assert isinstance(context, ApiContext)
    return context


Context = Annotated[ApiContext, Depends(api_context)]
