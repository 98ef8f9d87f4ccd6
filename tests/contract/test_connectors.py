"""The contract every registered connector must pass against its own sandbox, over real HTTP.

Parametrized over the installed connectors that ship a sandbox, so a new connector is held to
the same bar the day it registers: a clear verdict from check() on good and bad credentials,
pagination that ends and delivers every record exactly once, cursors that never go back, records
that are valid canonical models, faults survived, and a request count of at most
``ceil(records / page size) * requests_per_page + a small constant``.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr
from sqlalchemy.engine import Engine

from syncd.config import Settings, settings_from_tree
from syncd.connector import Capability, Connector, Cursor, Stream
from syncd.model import Customer, Invoice
from syncd.registry import default_registry
from syncd.sandbox import Fault, Sandbox
from syncd.sandboxes import sandbox_for, sandbox_names
from syncd.store import open_store
from syncd.store.state import load_state
from syncd.sync import pull_stream
from syncd.sync.factory import build_connector
from syncd.testing import FakeClock

CONSTANT_REQUESTS = 3  # discovery, auth, a final empty page
STREAMS = [Stream.CUSTOMERS, Stream.INVOICES]
# Sizes that need several pages even at a 1,000-record page size. The QuickBooks emulator's
# throttle runs on real time, which the connectors' FakeClock sleeps cannot satisfy; the
# throttle is exercised by the connector's own integration tests.
SIZES = {
    "connectwise": {"companies": 1100, "invoices": 2300},
    "quickbooks_online": {"customers": 1100, "invoices": 2300, "throttle": False},
}


@dataclass
class Harness:
    name: str
    sandbox: Sandbox
    settings: Settings
    store: Engine  # where OAuth connectors keep their tokens

    def connector(self, settings: Settings | None = None) -> Connector:
        chosen = settings or self.settings
        return build_connector(
            chosen, chosen.connection("subject"), clock=FakeClock(), engine=self.store
        )


def _settings(snippet: str, folder: Path) -> Settings:
    tree = tomllib.loads(snippet)
    tree["connections"]["subject"]["lookback"] = "0s"
    return settings_from_tree(
        tree, label="contract", base_dir=folder, env={}, registry=default_registry()
    )


@pytest.fixture(params=sandbox_names())
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    name: str = request.param
    store = open_store(f"sqlite:///{tmp_path / 'harness.db'}")
    try:
        with sandbox_for(name, seed=11, **SIZES.get(name, {})) as sandbox:
            settings = _settings(sandbox.config_snippet("subject"), tmp_path)
            yield Harness(name, sandbox, settings, store)
    finally:
        store.dispose()


def full_pull(connector: Connector, stream: Stream) -> tuple[list[str], list[str]]:
    records: list[str] = []
    rejected: list[str] = []
    for page in connector.pull(stream, Cursor()):
        for record in page.records:
            assert isinstance(record, Customer if stream is Stream.CUSTOMERS else Invoice)
            assert record.source_updated_at.tzinfo is not None
            records.append(record.external_id)
        rejected += [r.external_id or "?" for r in page.rejected]
    return records, rejected


def test_check_passes_with_good_credentials(harness: Harness) -> None:
    connector = harness.connector()
    try:
        verdict = connector.check()
    finally:
        connector.close()
    assert verdict.ok, verdict.detail


def test_check_fails_clearly_with_bad_credentials(harness: Harness, tmp_path: Path) -> None:
    tree = tomllib.loads(harness.sandbox.config_snippet("subject"))
    table = tree["connections"]["subject"]
    model: type[BaseModel] = default_registry().load(harness.name).settings_model
    secret_keys = [
        key for key, field in model.model_fields.items() if field.annotation is SecretStr
    ]
    assert secret_keys, f"{harness.name} declares no secret setting"
    for key in secret_keys:
        table[key] = "wrong-" + str(table[key])
    settings = settings_from_tree(
        tree, label="contract", base_dir=tmp_path, env={}, registry=default_registry()
    )
    connector = harness.connector(settings)
    try:
        verdict = connector.check()
    finally:
        connector.close()
    assert not verdict.ok
    assert any(word in verdict.detail.lower() for word in ("credential", "key", "auth"))
    for key in secret_keys:
        assert str(table[key]) not in verdict.detail


@pytest.mark.parametrize("stream", STREAMS)
def test_full_pull_delivers_every_record_once_within_the_request_bound(
    harness: Harness, stream: Stream
) -> None:
    connector = harness.connector()
    if Capability(stream.value) not in connector.capabilities:
        pytest.skip(f"{harness.name} does not pull {stream.value}")
    expected = harness.sandbox.expected_ids(stream.value)
    harness.sandbox.log.clear()
    try:
        records, rejected = full_pull(connector, stream)
    finally:
        connector.close()
    delivered = records + rejected
    assert len(delivered) == len(set(delivered)), "a record was delivered twice"
    assert set(delivered) == expected
    page_size = getattr(connector, "max_page_size", 1000)
    per_page = getattr(connector, "requests_per_page", {}).get(stream, 1)
    bound = math.ceil(len(expected) / page_size) * per_page + CONSTANT_REQUESTS
    assert len(harness.sandbox.log.entries) <= bound


@pytest.mark.parametrize("stream", STREAMS)
def test_faults_are_survived(harness: Harness, stream: Stream) -> None:
    connector = harness.connector()
    expected = harness.sandbox.expected_ids(stream.value)
    kinds = [Fault.RATE_LIMIT, Fault.SERVER_ERROR, Fault.DROP, Fault.TRUNCATE]
    for kind in kinds:  # each kind at least once, on the first requests
        harness.sandbox.faults.inject(kind, route="GET", retry_after=0.01)
    harness.sandbox.faults.random(0.2, kinds, seed=5, route="GET", retry_after=0.01)
    try:
        records, rejected = full_pull(connector, stream)
    finally:
        harness.sandbox.faults.stop_random()
        connector.close()
    assert all(harness.sandbox.faults.count(kind) >= 1 for kind in kinds)
    assert sorted(records + rejected) == sorted(expected)


def test_cursors_never_go_backwards(harness: Harness, tmp_path: Path) -> None:
    engine: Engine = open_store(f"sqlite:///{tmp_path / 'contract.db'}")
    connection = harness.settings.connection("subject")
    clock = FakeClock()
    marks = []
    try:
        for _ in range(3):
            connector = harness.connector()
            try:
                for stream in STREAMS:
                    result = pull_stream(engine, connection, connector, stream, clock=clock)
                    assert result.ok, result.error
            finally:
                connector.close()
            with engine.connect() as conn:
                marks.append([load_state(conn, "subject", s.value).watermark for s in STREAMS])
    finally:
        engine.dispose()
    for before, after in itertools.pairwise(marks):
        for old, new in zip(before, after, strict=True):
            assert old is not None and new is not None and new >= old
