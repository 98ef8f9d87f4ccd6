"""API fixtures: a store, a fake scheduler, and an app served by uvicorn on a free loopback port.

Tests take what they need as fixtures (``--import-mode=importlib``: a conftest is not importable).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import APIRouter
from sqlalchemy.engine import Engine

from syncd.api import ApiServer, create_app
from syncd.config.models import ConnectionSettings, DaemonSettings, Settings
from syncd.metrics import Metrics
from syncd.store import open_store
from syncd.testing import FakeClock

T0 = dt.datetime(2026, 5, 1, 9, tzinfo=dt.UTC)  # the fake clock's start and the daemon's


@dataclass
class FakeScheduler:
    running: bool = True
    started_at: dt.datetime | None = T0
    jobs: int = 2

    def job_count(self) -> int:
        return self.jobs


MakeSettings = Callable[..., Settings]


def _make_settings(token: str | None = None, **daemon: object) -> Settings:
    """Two connections: ``acme`` every 15 minutes, and ``off`` (disabled)."""
    return Settings(
        daemon=DaemonSettings.model_validate({"api_token": token, **daemon}),
        connections={
            "acme": ConnectionSettings(name="acme", connector="fake", schedule="15m"),
            "off": ConnectionSettings(name="off", connector="fake", enabled=False),
        },
    )


@pytest.fixture
def make_settings() -> MakeSettings:
    return _make_settings


@pytest.fixture
def scheduler() -> FakeScheduler:
    return FakeScheduler()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Engine]:
    engine = open_store(f"sqlite:///{tmp_path / 'syncd.db'}")
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


Serve = Callable[..., str]


@pytest.fixture
def serve(store: Engine, clock: FakeClock, scheduler: FakeScheduler) -> Iterator[Serve]:
    """``serve(settings, routers=…, metrics=…, engine=…)`` -> the base URL of a running app
    (the ``scheduler`` fixture is its scheduler: set ``running = False`` to stop it)."""
    servers: list[ApiServer] = []

    def start(
        settings: Settings | None = None,
        *,
        routers: Sequence[APIRouter] = (),
        metrics: Metrics | None = None,
        engine: Engine | None = None,
    ) -> str:
        app = create_app(
            settings or _make_settings(),
            engine or store,
            scheduler,
            routers=routers,
            clock=clock,
            metrics=metrics or Metrics(),
        )
        server = ApiServer.bind("127.0.0.1", 0)
        servers.append(server)
        server.start(app)
        return server.url

    try:
        yield start
    finally:
        for server in servers:
            server.stop()
