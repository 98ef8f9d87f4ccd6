"""The daemon's HTTP app: monitoring, status and (plugged in) the payments API.

=====================  ==========================================  ===========================
endpoint               what                                        token
=====================  ==========================================  ===========================
``GET /healthz``       liveness: 200 while the process serves      never
``GET /readyz``        readiness (``syncd.api.health``); 503 + why  never
``GET /metrics``       Prometheus text format (``syncd.metrics``)  never
``GET /status``        ``syncd status --json``, same model         when one is configured
``routers=[…]``        e.g. the payments API                       always (403 with none set)
``GET /openapi.json``  the OpenAPI document; UI at ``/docs``       never
=====================  ==========================================  ===========================

Monitoring stays open because scrapers and probes rarely carry credentials and it reveals no
business data; the config refuses a non-loopback ``listen`` without a token, so an open
``/status`` is only ever reachable from the machine itself.

**Plugging in routers.** The payments package provides an ``APIRouter`` (``POST /payments``,
``GET /payments/{id}``) and adds it to ``protected_routers()``; the daemon passes that list to
``create_app(routers=...)``, which mounts every router behind ``require_token``, so a plugged-in
endpoint cannot forget authentication. Handlers take ``syncd.api.context.Context`` for the
settings, the store engine and the clock.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from fastapi import APIRouter, Depends, FastAPI
from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from syncd import __version__
from syncd.api import health, status
from syncd.api.auth import require_token
from syncd.api.context import ApiContext, SchedulerState
from syncd.api.requestlog import RequestLog
from syncd.clock import Clock, SystemClock
from syncd.config.models import Settings
from syncd.metrics import METRICS, Metrics, StoreCollector


def protected_routers() -> list[APIRouter]:
    """Routers the daemon mounts behind the bearer token."""
    from syncd.payments.api import router as payments

    return [payments]


def create_app(
    settings: Settings,
    engine: Engine,
    scheduler_state: SchedulerState,
    *,
    routers: Sequence[APIRouter] = (),
    clock: Clock | None = None,
    metrics: Metrics = METRICS,
) -> FastAPI:
    """The FastAPI app of one daemon; ``routers`` are mounted behind ``require_token``."""
    clock = clock or SystemClock()
    registry = CollectorRegistry()
    registry.register(_Forward(metrics.registry))
    registry.register(StoreCollector(engine, clock))
    app = FastAPI(
        title="syncd",
        version=__version__,
        summary="Health, metrics, sync status and the payments API of a syncd daemon.",
        redoc_url=None,
    )
    app.state.context = ApiContext(
        settings=settings,
        engine=engine,
        scheduler=scheduler_state,
        clock=clock,
        registry=registry,
    )
    app.add_middleware(RequestLog)
    app.include_router(health.router)
    app.include_router(status.router)
    for router in routers:
        app.include_router(router, dependencies=[Depends(require_token)])
    return app


class _Forward(Collector):
    """Serves another registry's metrics from this one (the process counters, per app)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self._registry.collect()
