"""What every benchmark shares: sizes, stores, connectors built from a sandbox snippet, an HTTP tap.

The measured sync runs exactly as the daemon runs it: ``syncd.sync.pull_stream`` on a store opened
by ``syncd.store.open_store``, a connector built by ``syncd.sync.factory.build_connector`` from the
sandbox's config snippet, the system clock, and production logging (JSON at level info) written
to a stream that drops it, so that formatting log lines is paid for but nothing is printed.
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from bench.sources import Source
from syncd.config import ConnectionSettings, Settings, settings_from_tree
from syncd.connector import Connector
from syncd.logs import configure_logging
from syncd.ratelimit import REGISTRY
from syncd.registry import default_registry
from syncd.store import open_store
from syncd.sync.factory import build_connector

ROOT: Final = Path(__file__).resolve().parent.parent  # the repository, where ``-m bench`` runs
CONNECTION: Final = "bench"
PG_ENV: Final = "SYNCD_TEST_DATABASE_URL"
STORES: Final = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Size:
    """How big each benchmark runs: ``full`` is the issue's figures, ``smoke`` keeps tests fast."""

    name: str
    customers: int  # companies / customers in the backfill sandbox
    invoices: int  # invoices in the backfill sandbox
    backfill_reps: int  # interleaved sync/baseline pairs; the medians are reported
    apply_reps: int
    changes: int  # invoices changed before each incremental pull
    incremental_reps: int
    memory_records: tuple[int, int]  # invoices at the small and the large size (customers: 1/10)


SIZES: Final = {
    "full": Size("full", 10_000, 100_000, 5, 1, 100, 5, (10_000, 100_000)),
    "smoke": Size("smoke", 200, 2_000, 1, 1, 20, 2, (1_000, 2_000)),
}


def child_process() -> dict[str, Any]:
    """``subprocess`` arguments that let a child run ``python -m bench.…`` from anywhere."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return {"cwd": ROOT, "env": env}


# -- logging -------------------------------------------------------------------------------------


class _Discard(io.StringIO):
    """A text stream that drops what it is given (after it has been formatted)."""

    def write(self, text: str) -> int:
        return len(text)


def production_logging() -> None:
    """The daemon's logging (JSON lines, level info, redaction), written to nowhere."""
    configure_logging("info", "json", stream=_Discard())


# -- stores --------------------------------------------------------------------------------------


@dataclass
class Store:
    """A fresh, migrated store of one kind; ``close()`` disposes it and drops what it made."""

    kind: str
    url: str
    engine: Engine
    _cleanup: Callable[[], None] = field(repr=False)

    def close(self) -> None:
        self.engine.dispose()
        self._cleanup()


class Stores:
    """Makes fresh stores: a new SQLite file under ``workdir``, or a new PostgreSQL schema."""

    def __init__(self, workdir: Path, pg_url: str | None) -> None:
        self.workdir = workdir
        self.pg_url = pg_url

    def available(self, kind: str) -> bool:
        return kind == "sqlite" or self.pg_url is not None

    def fresh_url(self, kind: str) -> tuple[str, Callable[[], None]]:
        """A URL to an empty database of ``kind`` (not yet migrated) and how to remove it."""
        if kind == "sqlite":
            path = self.workdir / f"store-{uuid.uuid4().hex[:8]}.db"

            def remove() -> None:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)

            return f"sqlite:///{path}", remove
        if self.pg_url is None:
            raise RuntimeError("no PostgreSQL URL (set SYNCD_TEST_DATABASE_URL or --pg-url)")
        # Like tests/conftest.py's pg_url: a fresh schema, reached through search_path.
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        base = make_url(self.pg_url).set(drivername="postgresql+psycopg")
        admin = create_engine(base)
        try:
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        finally:
            admin.dispose()
        url = base.update_query_dict({"options": f"-csearch_path={schema}"})

        def drop() -> None:
            engine = create_engine(base)
            try:
                with engine.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            finally:
                engine.dispose()

        return url.render_as_string(hide_password=False), drop

    def fresh(self, kind: str) -> Store:
        url, cleanup = self.fresh_url(kind)
        try:
            engine = open_store(url)  # migrations run here, outside every timed section
        except BaseException:
            cleanup()
            raise
        return Store(kind, url, engine, cleanup)


def pg_version(pg_url: str | None) -> str | None:
    if pg_url is None:
        return None
    engine = create_engine(make_url(pg_url).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar_one())
    finally:
        engine.dispose()


# -- connections ---------------------------------------------------------------------------------


def settings_for(snippet: str, spec: Source, workdir: Path) -> Settings:
    """Settings of connection ``bench`` from a sandbox's config snippet (as the contract tests
    build them), with the source's own setting overrides."""
    tree: dict[str, Any] = tomllib.loads(snippet)
    tree["connections"][CONNECTION].update(spec.settings)
    return settings_from_tree(
        tree, label="bench", base_dir=workdir, env={}, registry=default_registry()
    )


def connection_of(settings: Settings) -> ConnectionSettings:
    return settings.connection(CONNECTION)


def connector_for(settings: Settings, spec: Source, store: Store) -> Connector:
    """A fresh connector, as a daemon job builds one. The process-wide rate-limiter registry is
    emptied first: a benchmark runs many passes a minute, and a pass must not wait on the budget
    its predecessors spent (each single pass stays far below the connector's own limits)."""
    REGISTRY.clear()
    if spec.prepare_store is not None:
        spec.prepare_store(store.engine, settings, CONNECTION)
    return build_connector(settings, connection_of(settings), engine=store.engine)


# -- the HTTP tap --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One HTTP exchange of a measured pull, as ``requests`` sent it."""

    label: str  # which stream was being pulled
    method: str
    url: str
    headers: dict[str, str]
    seconds: float  # inside ``requests.Session.send``: connect, send, wait, read the body
    nbytes: int


class HttpTap:
    """Records every request ``requests`` sends in this process, with the time spent inside
    ``Session.send`` (the whole exchange: the body is read there, unless streamed). Parsing the
    body happens after ``send`` returns, so it counts as local work."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []
        self.label = ""
        self._original: Any = None

    def __enter__(self) -> HttpTap:
        original = requests.Session.send
        self._original = original
        tap = self

        def send(session: requests.Session, request: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            response = original(session, request, **kwargs)
            spent = time.perf_counter() - started
            tap.exchanges.append(
                Exchange(
                    tap.label,
                    str(request.method),
                    str(request.url),
                    dict(request.headers),
                    spent,
                    len(response.content) if not kwargs.get("stream") else 0,
                )
            )
            return response

        requests.Session.send = send  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc_info: object) -> None:
        requests.Session.send = self._original  # type: ignore[method-assign]

    def seconds(self, label: str | None = None) -> float:
        return sum(e.seconds for e in self.exchanges if label is None or e.label == label)

    def of(self, label: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.label == label]


# -- numbers -------------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")


@contextlib.contextmanager
def stopwatch() -> Iterator[list[float]]:
    """``with stopwatch() as spent: ...`` then ``spent[0]`` is the wall time in seconds."""
    spent: list[float] = []
    started = time.perf_counter()
    try:
        yield spent
    finally:
        spent.append(time.perf_counter() - started)


__all__ = [
    "CONNECTION",
    "PG_ENV",
    "ROOT",
    "SIZES",
    "STORES",
    "Exchange",
    "HttpTap",
    "Size",
    "Store",
    "Stores",
    "child_process",
    "connection_of",
    "connector_for",
    "median",
    "pg_version",
    "production_logging",
    "ratio",
    "settings_for",
    "stopwatch",
]
