"""Metrics: the names Prometheus sees, fed by a real pull and HTTP client, read at /metrics."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import responses
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from syncd.config.models import ConnectionSettings
from syncd.connector import ConnectorContext, Stream
from syncd.errors import RetriableError
from syncd.http import HttpClient
from syncd.metrics import METRICS, Metrics, status_class
from syncd.model import Customer
from syncd.ratelimit import Limits, RateLimiter
from syncd.redact import Redactor
from syncd.store import create_store_engine
from syncd.store.state import finish_run, start_run
from syncd.sync import pull_stream
from syncd.sync.engine import PullResult
from syncd.testing import FakeClock, FakeConnector, FakeSettings

T0 = dt.datetime(2026, 5, 1, 9, tzinfo=dt.UTC)
Serve = Callable[..., str]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    response = requests.get(f"{url}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(name: str, **labels: str) -> float:
    return METRICS.registry.get_sample_value(name, labels) or 0.0


def customer(ext: int) -> Customer:
    return Customer(
        connection="metered",
        external_id=str(ext),
        source_updated_at=T0,
        name=f"Customer {ext}",
        raw={"id": ext},
    )


def test_a_pull_counts_its_run_and_records(store: Engine, clock: FakeClock) -> None:
    fake = FakeConnector(
        FakeSettings(token="secret-token", page_size=2),
        ConnectorContext(connection="metered", clock=clock),
    )
    fake.records[Stream.CUSTOMERS] = [customer(i) for i in range(3)]
    settings = ConnectionSettings(name="metered", connector="fake")
    labels = {"connection": "metered", "stream": "customers"}
    runs_before = value("syncd_sync_runs_total", **labels, status="succeeded")
    created_before = value("syncd_sync_records_total", **labels, outcome="created")
    unchanged_before = value("syncd_sync_records_total", **labels, outcome="unchanged")

    pull_stream(store, settings, fake, Stream.CUSTOMERS, clock=clock)
    pull_stream(store, settings, fake, Stream.CUSTOMERS, clock=clock)
    fake.fail_after_pages = 0
    pull_stream(store, settings, fake, Stream.CUSTOMERS, clock=clock)

    assert value("syncd_sync_runs_total", **labels, status="succeeded") == runs_before + 2
    assert value("syncd_sync_runs_total", **labels, status="failed") >= 1
    assert value("syncd_sync_records_total", **labels, outcome="created") == created_before + 3
    assert value("syncd_sync_records_total", **labels, outcome="unchanged") == (
        unchanged_before + 3
    )


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def test_http_attempts_and_rate_limit_waits_are_counted(
    rsps: responses.RequestsMock, clock: FakeClock
) -> None:
    base = "https://api.metered.example"
    rsps.add("GET", f"{base}/a", json={})
    rsps.add("GET", f"{base}/b", status=429, headers={"Retry-After": "7"})
    rsps.add("GET", f"{base}/b", status=503)
    rsps.add("GET", f"{base}/b", json={})
    rsps.add("GET", f"{base}/c", body=requests.ConnectionError("reset"))
    limiter = RateLimiter(Limits.per(second=1), clock=clock)
    client = HttpClient(
        base,
        connection="metered",
        vendor="meteredvendor",
        clock=clock,
        limiter=limiter,
        redactor=Redactor(),
        max_attempts=3,
    )
    before = {
        key: value("syncd_http_requests_total", vendor="meteredvendor", status_class=key)
        for key in ("2xx", "4xx", "5xx", "error")
    }
    client.get_json("/a")
    client.get_json("/b")  # 429, then 503, then 200
    with pytest.raises(RetriableError):
        client.get_json("/c")  # a dropped read: retried, 3 attempts, no status
    after = {
        key: value("syncd_http_requests_total", vendor="meteredvendor", status_class=key)
        for key in before
    }
    assert {key: after[key] - before[key] for key in before} == {
        "2xx": 2,
        "4xx": 1,
        "5xx": 1,
        "error": 3,
    }
    assert (
        value("syncd_rate_limit_wait_seconds_total", vendor="meteredvendor", source="server") == 7
    )
    client_wait = value(
        "syncd_rate_limit_wait_seconds_total", vendor="meteredvendor", source="client"
    )
    assert client_wait == pytest.approx(limiter.waited_seconds) and client_wait > 0


def test_status_class() -> None:
    assert [status_class(s) for s in (200, 302, 404, 429, 503, None, 0)] == [
        "2xx",
        "3xx",
        "4xx",
        "4xx",
        "5xx",
        "error",
        "error",
    ]


def test_metrics_endpoint_serves_counters_and_store_gauges(
    serve: Serve, store: Engine, clock: FakeClock
) -> None:
    metrics = Metrics()
    metrics.observe_pull(
        PullResult("acme", "invoices", "r1", "succeeded", pages=1, created=3, quarantined=1)
    )
    metrics.observe_push("books", "done")
    metrics.observe_http("quickbooks", 429)
    metrics.observe_rate_limit_wait("quickbooks", 1.5)
    with store.begin() as tx:
        row = start_run(tx, "r1", "acme", "invoices", T0 - dt.timedelta(minutes=11))
        finish_run(tx, row, "succeeded", T0 - dt.timedelta(minutes=10))
        start_run(tx, "r2", "acme", "customers", T0)  # running, never succeeded: no lag yet

    samples = scrape(serve(metrics=metrics))

    def at(name: str, **labels: str) -> float | None:
        return samples.get((name, tuple(sorted(labels.items()))))

    acme = {"connection": "acme", "stream": "invoices"}
    assert at("syncd_sync_runs_total", **acme, status="succeeded") == 1
    assert at("syncd_sync_records_total", **acme, outcome="created") == 3
    assert at("syncd_sync_records_total", **acme, outcome="quarantined") == 1
    assert at("syncd_sync_records_total", **acme, outcome="updated") is None  # zero: not sent
    assert at("syncd_payment_pushes_total", connection="books", status="done") == 1
    assert at("syncd_http_requests_total", vendor="quickbooks", status_class="4xx") == 1
    assert at("syncd_rate_limit_wait_seconds_total", vendor="quickbooks", source="client") == 1.5
    assert at("syncd_sync_lag_seconds", **acme) == 600
    assert at("syncd_sync_last_success_timestamp_seconds", **acme) == (
        (T0 - dt.timedelta(minutes=10)).timestamp()
    )
    assert at("syncd_sync_lag_seconds", connection="acme", stream="customers") is None
    assert at("syncd_attention_items", kind="quarantined") == 0
    assert at("syncd_attention_items", kind="pushes_dead") == 0
    assert at("syncd_store_up") == 1
    assert any(name == "syncd_build_info" for name, _ in samples)

    clock.advance(60)
    assert (
        scrape(serve(metrics=metrics))[("syncd_sync_lag_seconds", tuple(sorted(acme.items())))]
        == 660
    )


def test_a_scrape_succeeds_when_the_store_does_not_answer(serve: Serve, tmp_path: Path) -> None:
    folder = tmp_path / "gone"
    folder.mkdir()
    engine = create_store_engine(f"sqlite:///{folder / 'x.db'}")
    folder.rmdir()
    try:
        samples = scrape(serve(engine=engine))
    finally:
        engine.dispose()
    assert samples[("syncd_store_up", ())] == 0
    assert not any(name.startswith("syncd_attention") for name, _ in samples)
