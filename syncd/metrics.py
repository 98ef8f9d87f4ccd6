"""Prometheus metrics of the process, served by the HTTP app at ``GET /metrics``.

Two kinds, chosen by where the truth lives:

* **Counters of work done by this process** (``Metrics``), fed where the work happens: one call
  when a pull ends (``observe_pull``), one per HTTP attempt and per rate-limit wait (the HTTP
  client), one per push outcome (``observe_push``, for the payments pusher). They start at zero
  with the process, as Prometheus counters should; ``rate()`` absorbs restarts.
* **Gauges of the store** (``StoreCollector``): lag and last success per connection and stream,
  and the items that need a person. They are read from the store at scrape time, so they are
  right after a restart and include the work of other workers sharing a PostgreSQL store.

The observe functions never raise: a metrics bug must not fail a sync or a request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

import structlog
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from syncd import __version__
from syncd.clock import Clock, SystemClock
from syncd.store.reports import last_successes, open_counts

if TYPE_CHECKING:
    from syncd.sync.engine import PullResult

RECORD_OUTCOMES = ("created", "updated", "unchanged", "voided", "deleted", "quarantined")
RATE_LIMIT_SOURCES = ("client", "server")  # our own limiter / the vendor's Retry-After

_log = structlog.get_logger("syncd.metrics")


def status_class(status: int | None) -> str:
    """``2xx`` … ``5xx`` for an HTTP status; ``error`` when no response came (timeout, reset)."""
    if status is None or not 100 <= status <= 599:
        return "error"
    return f"{status // 100}xx"


class Metrics:
    """The process's counters in their own registry (not prometheus_client's global one, so a test
    can build a fresh ``Metrics`` and nothing a library registers leaks into ``/metrics``)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.runs = Counter(
            "syncd_sync_runs",
            "Pull runs finished, by connection, stream and status (succeeded|failed).",
            ["connection", "stream", "status"],
            registry=self.registry,
        )
        self.records = Counter(
            "syncd_sync_records",
            "Records handled by pulls, by connection, stream and outcome "
            "(created|updated|unchanged|voided|deleted|quarantined).",
            ["connection", "stream", "outcome"],
            registry=self.registry,
        )
        self.http_requests = Counter(
            "syncd_http_requests",
            "HTTP attempts to vendor APIs, retries included, by vendor and status class "
            "(2xx..5xx, or error when no response came).",
            ["vendor", "status_class"],
            registry=self.registry,
        )
        self.rate_limit_wait = Counter(
            "syncd_rate_limit_wait_seconds",
            "Seconds spent waiting before vendor requests, by vendor and source (client: our "
            "rate limiter; server: a 429's Retry-After).",
            ["vendor", "source"],
            registry=self.registry,
        )
        self.pushes = Counter(
            "syncd_payment_pushes",
            "Payment push attempts by target connection and outcome (as the pusher records it).",
            ["connection", "status"],
            registry=self.registry,
        )
        Info("syncd_build", "The running syncd version.", registry=self.registry).info(
            {"version": __version__}
        )

    def observe_pull(self, result: PullResult) -> None:
        """Count one finished pull (called once, at the end of every pull of a stream)."""
        labels = (result.connection, result.stream)
        self.runs.labels(*labels, result.status).inc()
        for outcome in RECORD_OUTCOMES:
            count = getattr(result, outcome)
            if count:
                self.records.labels(*labels, outcome).inc(count)

    def observe_http(self, vendor: str, status: int | None) -> None:
        self.http_requests.labels(vendor, status_class(status)).inc()

    def observe_rate_limit_wait(self, vendor: str, seconds: float, source: str = "client") -> None:
        if seconds > 0:
            self.rate_limit_wait.labels(vendor, source).inc(seconds)

    def observe_push(self, connection: str, status: str) -> None:
        """For the payments pusher: one call per push attempt outcome (e.g. done, retry, dead)."""
        self.pushes.labels(connection, status).inc()


def _process_metrics() -> Metrics:
    metrics = Metrics()
    ProcessCollector(registry=metrics.registry)  # process_cpu_seconds_total, memory, open fds
    PlatformCollector(registry=metrics.registry)  # python_info
    return metrics


METRICS = _process_metrics()


def observe_pull(result: PullResult) -> None:
    _safely(METRICS.observe_pull, result)


def observe_http(vendor: str, status: int | None) -> None:
    _safely(METRICS.observe_http, vendor, status)


def observe_rate_limit_wait(vendor: str, seconds: float, source: str = "client") -> None:
    _safely(METRICS.observe_rate_limit_wait, vendor, seconds, source)


def observe_push(connection: str, status: str) -> None:
    _safely(METRICS.observe_push, connection, status)


def _safely(observe: Callable[..., None], *args: object) -> None:
    try:
        observe(*args)
    except Exception:  # a metrics bug must never fail the work it counts
        _log.warning("metrics_observe_failed", metric=getattr(observe, "__name__", "?"))


class StoreCollector(Collector):
    """Gauges read from the store at scrape time: lag, last success, items needing a person.

    If the store does not answer, ``syncd_store_up`` is 0 and the other gauges are absent for that
    scrape (``/readyz`` says why); the scrape itself still succeeds.
    """

    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock: Clock = clock or SystemClock()

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("syncd_store_up", "1 when the store answered this scrape, else 0.")
        try:
            with self.engine.connect() as conn:
                successes = last_successes(conn)
                counts = open_counts(conn)
        except SQLAlchemyError as exc:
            _log.warning("metrics_store_unavailable", error=type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _store_gauges(successes, counts, self.clock.now())


def _store_gauges(
    successes: dict[tuple[str, str], dt.datetime | None], counts: dict[str, int], now: dt.datetime
) -> Iterable[Metric]:
    lag = GaugeMetricFamily(
        "syncd_sync_lag_seconds",
        "Seconds since the last successful run, by connection and stream (sweeps as "
        "<stream>:sweep); absent until a first success.",
        labels=["connection", "stream"],
    )
    last = GaugeMetricFamily(
        "syncd_sync_last_success_timestamp_seconds",
        "Unix time of the last successful run, by connection and stream.",
        labels=["connection", "stream"],
    )
    for (connection, stream), when in sorted(successes.items()):
        if when is not None:
            lag.add_metric([connection, stream], max((now - when).total_seconds(), 0.0))
            last.add_metric([connection, stream], when.timestamp())
    attention = GaugeMetricFamily(
        "syncd_attention_items",
        "Items waiting for a person or the pusher, by kind (quarantined, review_items, "
        "unapplied_payments, pushes_pending, pushes_dead).",
        labels=["kind"],
    )
    for kind, count in counts.items():
        attention.add_metric([kind], count)
    return (lag, last, attention)


__all__ = [
    "METRICS",
    "RECORD_OUTCOMES",
    "Metrics",
    "StoreCollector",
    "observe_http",
    "observe_pull",
    "observe_push",
    "observe_rate_limit_wait",
    "status_class",
]
