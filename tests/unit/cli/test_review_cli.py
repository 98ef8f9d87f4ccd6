"""``syncd review``, ``link``, ``unlink``, ``quarantine`` as a person meets them: real processes."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.engine import Engine

from syncd.cli.review_cmds import link, quarantine, review, unlink
from syncd.connector import Stream
from syncd.linking import link_all
from syncd.mapping import parse_mapping
from syncd.model import Customer
from syncd.reconcile.plan import Plan, plan_page
from syncd.store import open_store
from syncd.store.records import apply_plan
from syncd.store.tables import customers
from syncd.testing import FakeClock

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)

PLUGIN = '''\
from pathlib import Path

from syncd.testing import FakeConnector


class MappedConnector(FakeConnector):
    """The fake connector with a packaged default mapping, as real connectors have."""

    name = "mapped"
    default_mapping = Path(__file__).with_name("mapped.toml")
'''
DEFAULT_MAPPING = """\
[customers]
external_id = "id"
name = "name"
email = "email"
source_updated_at = "updated"
"""
CONFIG = """\
[store]
url = "sqlite:///./syncd.db"

[connections.cw]
connector = "mapped"
token = "${TOKEN}"

[connections.qbo]
connector = "mapped"
token = "${TOKEN}"
"""
# Until syncd.cli registers these groups, run them through the real CLI with them added.
BOOT = """\
import sys
from syncd.cli import cli, main
from syncd.cli import review_cmds as r
for command in (r.review, r.link, r.unlink, r.quarantine):
    cli.commands.setdefault(command.name, command)
sys.argv[0] = "syncd"
main()
"""


@dataclass
class Result:
    code: int
    out: str
    err: str


Run = Callable[..., Result]


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    """A dist-info registering a connector whose class names its default mapping file."""
    folder = tmp_path / "plugins"
    dist = folder / "syncd_review_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: syncd-review-plugin\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[syncd.connectors]\nmapped = syncd_review_plugin:MappedConnector\n"
    )
    (folder / "syncd_review_plugin.py").write_text(PLUGIN)
    (folder / "mapped.toml").write_text(DEFAULT_MAPPING)
    return folder


@pytest.fixture
def syncd(tmp_path: Path, plugin_dir: Path) -> Run:
    """Run the real CLI in ``tmp_path`` with the plugin on the path and a config in place."""
    from syncd.cli import cli

    wired = all(name in cli.commands for name in ("review", "link", "unlink", "quarantine"))
    entry = ["-m", "syncd"] if wired else ["-c", BOOT]
    (tmp_path / "config.toml").write_text(CONFIG)

    def run(*args: str) -> Result:
        env = {**os.environ, "PYTHONPATH": str(plugin_dir), "TOKEN": "tok-123456"}
        env.pop("SYNCD_CONFIG", None)
        done = subprocess.run(
            [sys.executable, *entry, *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return Result(done.returncode, done.stdout, done.stderr)

    return run


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Engine]:
    engine = open_store(f"sqlite:///{tmp_path / 'syncd.db'}")
    try:
        yield engine
    finally:
        engine.dispose()


def seed_customers(engine: Engine, *records: tuple[str, str, str]) -> None:
    with engine.begin() as tx:
        for connection, ext, name in records:
            record = Customer(
                connection=connection, external_id=ext, name=name, source_updated_at=T0
            )
            plan = plan_page({}, [record])
            apply_plan(tx, Stream.CUSTOMERS, connection, plan, now=T0, run_id="seed")


def quarantine_payloads(engine: Engine, *payloads: dict[str, object]) -> None:
    """Quarantine payloads the way a sync does: mapped with the default mapping, refused."""
    mapping = parse_mapping(DEFAULT_MAPPING, origin="mapped.toml")
    records, rejected = mapping.map_page("customers", list(payloads), "cw")
    assert records == ()
    with engine.begin() as tx:
        plan = Plan(quarantine=rejected)
        apply_plan(tx, Stream.CUSTOMERS, "cw", plan, now=T0, run_id="run-1")


@pytest.fixture
def asked(store: Engine) -> Engine:
    """Two customers named Globex in cw, one in qbo; Acme in both: one question, one link."""
    seed_customers(
        store,
        ("cw", "1", "Acme Inc."),
        ("cw", "2", "Globex"),
        ("cw", "3", "Globex, Inc."),
        ("qbo", "A", "ACME"),
        ("qbo", "B", "GLOBEX LLC"),
    )
    link_all(store, ["qbo", "cw"], clock=FakeClock(T0))
    return store


@pytest.mark.parametrize(
    "args",
    [
        ["review", "list"],
        ["review", "show"],
        ["review", "resolve"],
        ["link"],
        ["unlink"],
        ["quarantine", "list"],
        ["quarantine", "show"],
        ["quarantine", "retry"],
    ],
)
def test_every_new_command_has_help(args: list[str]) -> None:
    """In-process: help is text, not behaviour (every other test runs the real process)."""
    group = click.Group(commands=[review, link, unlink, quarantine])
    result = CliRunner().invoke(group, [*args, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
    assert len(result.output.splitlines()) > 3


def test_review_list_show_and_resolve_with_a_link(syncd: Run, asked: Engine) -> None:
    listed = syncd("review", "list")
    assert listed.code == 0, listed.err
    assert listed.out == "1: customer qbo:B ~ cw: several customers have this name (2 candidates)\n"
    (item,) = json.loads(syncd("review", "list", "--json").out)
    assert item["id"] == 1 and item["status"] == "open"
    assert [(c["left"], c["right"]) for c in item["candidates"]] == [("2", "B"), ("3", "B")]

    shown = syncd("review", "show", "1")
    assert shown.code == 0
    assert 'cw:2 ("Globex")  ~  qbo:B ("GLOBEX LLC")  [name 100.0]' in shown.out
    assert "syncd review resolve 1 --link 2 B" in shown.out

    resolved = syncd("review", "resolve", "1", "--link", "3", "B")
    assert resolved.code == 0, resolved.err
    assert resolved.out == "review item 1 resolved: linked cw:3 and qbo:B\n"
    assert syncd("review", "list").out == "no open review items\n"
    assert "[linked]" in syncd("review", "list", "--all").out


def test_resolve_needs_exactly_one_decision_and_a_known_item(syncd: Run, asked: Engine) -> None:
    both = syncd("review", "resolve", "1", "--distinct", "--dismiss")
    assert both.code == 2 and "give exactly one of" in both.err
    unknown = syncd("review", "show", "99")
    assert unknown.code == 1 and "no review item 99" in unknown.err


def test_link_and_unlink_by_hand(syncd: Run, asked: Engine) -> None:
    refused = syncd("link", "customer", "qbo:A", "cw:2")
    assert refused.code == 1
    assert "cw:1 is linked to qbo:A (exact); run `syncd unlink customer cw:1 qbo:A` first" in (
        refused.err
    )
    bad = syncd("link", "customer", "cw-2", "qbo:A")
    assert bad.code == 2 and "write CONNECTION:EXTERNAL_ID" in bad.err

    unlinked = syncd("unlink", "customer", "qbo:A", "cw:1")
    assert unlinked.code == 0, unlinked.err
    assert "unlinked customer cw:1 and qbo:A (was exact)" in unlinked.out
    linked = syncd("link", "customer", "qbo:A", "cw:2")
    assert linked.out == "linked customer cw:2 and qbo:A (manual)\n"


def test_quarantine_list_show_and_retry_after_fixing_the_mapping(
    syncd: Run, store: Engine, tmp_path: Path
) -> None:
    updated = "2026-03-01T00:00:00Z"
    quarantine_payloads(
        store,
        {"id": "c9", "company_name": "Zeta Ltd", "updated": updated},
        {"id": "c10", "company_name": "Broken", "updated": "last tuesday"},
    )
    listed = syncd("quarantine", "list")
    assert listed.out.splitlines() == [
        "1: cw/customers c9: mapped.toml: record c9: customers.name: missing required value",
        "2: cw/customers c10: mapped.toml: record c10: customers.name: missing required value; "
        "customers.source_updated_at: malformed datetime 'last tuesday' (expected ISO 8601)",
    ]
    rows = json.loads(syncd("quarantine", "list", "--json", "--connection", "cw").out)
    assert [(r["id"], r["external_id"], r["run_id"]) for r in rows] == [
        (1, "c9", "run-1"),
        (2, "c10", "run-1"),
    ]
    shown = syncd("quarantine", "show", "1")
    assert '"company_name": "Zeta Ltd"' in shown.out and "by run run-1" in shown.out

    unfixed = syncd("quarantine", "retry", "--all")
    assert unfixed.code == 1
    assert "quarantine 1: cw/customers c9: still fails: " in unfixed.out

    config = CONFIG + '\n[connections.cw.mapping_overrides.customers]\nname = "company_name"\n'
    (tmp_path / "config.toml").write_text(config)
    fixed = syncd("quarantine", "retry", "1", "2")
    assert fixed.code == 1  # c10's date is still wrong
    created, still = fixed.out.splitlines()
    assert created == "quarantine 1: cw/customers c9: created"
    assert still.startswith("quarantine 2: cw/customers c10: still fails: ")
    assert still.endswith(
        "plugins/mapped.toml: record c10: customers.source_updated_at: malformed datetime "
        "'last tuesday' (expected ISO 8601)"
    )  # the name is gone from the reasons: the override fixed it
    with store.connect() as conn:
        names = conn.execute(select(customers.c.external_id, customers.c.name)).all()
    assert [tuple(row) for row in names] == [("c9", "Zeta Ltd")]
    assert [line.split(":")[0] for line in syncd("quarantine", "list").out.splitlines()] == ["2"]
    assert (
        syncd("quarantine", "retry", "1").out == "quarantine 1: cw/customers c9: already resolved\n"
    )
    assert syncd("quarantine", "retry").code == 2


def test_quarantine_retry_uses_the_connections_own_mapping_file(
    syncd: Run, store: Engine, tmp_path: Path
) -> None:
    payload: dict[str, object] = {"id": "c9", "company_name": "Zeta", "updated": "2026-03-01Z"}
    quarantine_payloads(store, payload)
    quarantine_payloads(store, payload)  # the next pass met the same bad record: still one row
    (tmp_path / "mine.toml").write_text(
        DEFAULT_MAPPING.replace('name = "name"', 'name = "company_name"').replace(
            'source_updated_at = "updated"',
            'source_updated_at = { path = "updated", format = "%Y-%m-%dZ", assume_tz = "UTC" }',
        )
    )
    (tmp_path / "config.toml").write_text(
        CONFIG.replace("[connections.cw]\n", '[connections.cw]\nmapping = "mine.toml"\n')
    )
    result = syncd("quarantine", "retry", "--all")
    assert result.code == 0, result.out + result.err
    assert result.out.splitlines() == ["quarantine 1: cw/customers c9: created"]
    assert syncd("quarantine", "retry", "--all").out == "no quarantined records\n"
