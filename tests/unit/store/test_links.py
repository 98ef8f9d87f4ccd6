"""Links in the store: idempotent passes, and people's decisions that no pass overrides."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from syncd.connector import Stream
from syncd.linking import LinkResult, connection_pairs, link_all, link_connections
from syncd.model import Customer, Invoice, InvoiceStatus
from syncd.reconcile.link import Kind
from syncd.reconcile.plan import plan_page
from syncd.store.links import (
    LinkRefused,
    ReviewRow,
    link_records,
    list_reviews,
    resolve_review,
    unlink_records,
)
from syncd.store.records import apply_plan
from syncd.store.tables import links, review_items
from syncd.testing import FakeClock

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def customer(connection: str, ext: str, name: str, **more: str) -> Customer:
    return Customer(connection=connection, external_id=ext, name=name, source_updated_at=T0, **more)


def invoice(
    connection: str, ext: str, number: str, customer_id: str, total: str = "100"
) -> Invoice:
    return Invoice(
        connection=connection,
        external_id=ext,
        number=number,
        customer_external_id=customer_id,
        currency="USD",
        total=Decimal(total),
        balance=Decimal(total),
        status=InvoiceStatus.OPEN,
        issued_on=dt.date(2026, 2, 1),
        source_updated_at=T0,
    )


def seed(engine: Engine, records: Sequence[Customer | Invoice]) -> None:
    with engine.begin() as tx:
        for record in records:
            stream = Stream.CUSTOMERS if isinstance(record, Customer) else Stream.INVOICES
            plan = plan_page({}, [record])
            apply_plan(tx, stream, record.connection, plan, now=T0, run_id="seed")


def stored_links(engine: Engine) -> set[tuple[str, str, str, str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(links)).all()
    return {
        (
            r.kind,
            r.left_connection,
            r.left_external_id,
            r.right_connection,
            r.right_external_id,
            r.method,
        )
        for r in rows
    }


def open_reviews(engine: Engine) -> list[ReviewRow]:
    with engine.connect() as conn:
        return list_reviews(conn)


def run(engine: Engine, clock: FakeClock) -> LinkResult:
    return link_connections(engine, "qbo", "cw", clock=clock)  # any order: cw is left


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    seed(
        engine,
        [
            customer("cw", "1", "Acme Widgets, Inc.", xref="Q1"),
            customer("cw", "2", "Globex"),
            customer("cw", "3", "Globex"),
            customer("cw", "4", "Initech LLC", tax_id="12-3456789"),
            customer("qbo", "Q1", "Acme Holdings"),
            customer("qbo", "Q2", "GLOBEX INC."),
            customer("qbo", "Q4", "Initech Software", tax_id="123456789"),
            invoice("cw", "i1", "INV-0042", "1"),
            invoice("cw", "i2", "1001", "1", "250"),
            invoice("qbo", "x1", "42", "Q1"),
            invoice("qbo", "x2", "PSA-77", "Q1", "250"),
        ],
    )
    return engine


def test_a_pass_links_asks_and_a_second_pass_changes_nothing(
    seeded: Engine, clock: FakeClock
) -> None:
    first = run(seeded, clock)
    assert (first.left, first.right) == ("cw", "qbo")
    assert first.customers == {"xref": 1, "exact": 1}
    assert first.invoices == {"fuzzy": 1}  # INV-0042 = 42 by digits, same customer and total
    assert first.reviews_opened == 2  # two customers named Globex; a renumbered invoice
    assert stored_links(seeded) == {
        ("customer", "cw", "1", "qbo", "Q1", "xref"),
        ("customer", "cw", "4", "qbo", "Q4", "exact"),
        ("invoice", "cw", "i1", "qbo", "x1", "fuzzy"),
    }
    subjects = {r.subject: r for r in open_reviews(seeded)}
    assert set(subjects) == {"customer qbo:Q2 ~ cw", "invoice cw:i2 ~ qbo"}
    assert subjects["invoice cw:i2 ~ qbo"].detail["reason"].startswith("renumbered?")

    clock.advance(3600)
    second = run(seeded, clock)
    assert second == LinkResult("cw", "qbo")
    assert len(stored_links(seeded)) == 3 and len(open_reviews(seeded)) == 2


def test_resolving_with_a_link_is_manual_and_survives_later_passes(
    seeded: Engine, clock: FakeClock
) -> None:
    run(seeded, clock)
    (globex,) = [r for r in open_reviews(seeded) if r.kind == "customer_match"]
    with seeded.begin() as conn:
        done = resolve_review(conn, globex.id, "link", now=clock.now(), pair=("3", "Q2"))
    assert (done.status, done.resolution) == ("resolved", "linked")
    assert ("customer", "cw", "3", "qbo", "Q2", "manual") in stored_links(seeded)
    again = run(seeded, clock)
    assert again.customers == {} and again.reviews_opened == 0
    assert ("customer", "cw", "3", "qbo", "Q2", "manual") in stored_links(seeded)


def test_distinct_is_never_asked_again_nor_linked(seeded: Engine, clock: FakeClock) -> None:
    run(seeded, clock)
    (globex,) = [r for r in open_reviews(seeded) if r.kind == "customer_match"]
    with seeded.begin() as conn:
        resolve_review(conn, globex.id, "distinct", now=clock.now())
    run(seeded, clock)
    assert [r.subject for r in open_reviews(seeded)] == ["invoice cw:i2 ~ qbo"]
    assert not any(link[2] in ("2", "3") for link in stored_links(seeded))


def test_dismissed_returns_only_with_a_new_candidate(seeded: Engine, clock: FakeClock) -> None:
    run(seeded, clock)
    (globex,) = [r for r in open_reviews(seeded) if r.kind == "customer_match"]
    with seeded.begin() as conn:
        resolve_review(conn, globex.id, "dismissed", now=clock.now())
    run(seeded, clock)
    assert [r.subject for r in open_reviews(seeded)] == ["invoice cw:i2 ~ qbo"]
    seed(seeded, [customer("cw", "5", "Globex Inc")])
    run(seeded, clock)
    (asked,) = [r for r in open_reviews(seeded) if r.kind == "customer_match"]
    assert asked.subject == globex.subject and asked.id != globex.id
    assert len(asked.detail["candidates"]) == 3


def test_unlink_records_a_decision_the_next_pass_respects(seeded: Engine, clock: FakeClock) -> None:
    run(seeded, clock)
    with seeded.begin() as conn:
        was = unlink_records(conn, Kind.CUSTOMER, ("qbo", "Q4"), ("cw", "4"), now=clock.now())
    assert was.method == "exact"
    run(seeded, clock)
    assert not any(link[2] == "4" for link in stored_links(seeded))
    with seeded.begin() as conn, pytest.raises(LinkRefused, match="are not linked"):
        unlink_records(conn, Kind.CUSTOMER, ("cw", "4"), ("qbo", "Q4"), now=clock.now())


def test_a_manual_link_is_never_overwritten(engine: Engine, clock: FakeClock) -> None:
    seed(engine, [customer("cw", "1", "Acme"), customer("qbo", "A", "Acme")])
    seed(engine, [customer("cw", "2", "Zeta"), customer("qbo", "B", "Zeta")])
    with engine.begin() as conn:  # a person says cw:1 is qbo:B, against the names
        link_records(conn, Kind.CUSTOMER, ("cw", "1"), ("qbo", "B"), now=clock.now())
    result = run(engine, clock)
    assert result.customers == {}
    assert stored_links(engine) == {("customer", "cw", "1", "qbo", "B", "manual")}


def test_confirming_an_automatic_link_makes_it_manual(engine: Engine, clock: FakeClock) -> None:
    seed(engine, [customer("cw", "1", "Acme"), customer("qbo", "A", "Acme")])
    run(engine, clock)
    with engine.begin() as conn:
        link_records(conn, Kind.CUSTOMER, ("qbo", "A"), ("cw", "1"), now=clock.now())
    assert stored_links(engine) == {("customer", "cw", "1", "qbo", "A", "manual")}


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (("cw", "1"), ("qbo", "B"), "cw:1 is linked to qbo:A .* run `syncd unlink customer"),
        (("cw", "9"), ("qbo", "B"), "no customer cw:9 in the store"),
        (("cw", "1"), ("cw", "2"), "both records are in cw"),
    ],
)
def test_link_refusals_say_why(
    engine: Engine, clock: FakeClock, a: tuple[str, str], b: tuple[str, str], message: str
) -> None:
    seed(engine, [customer("cw", "1", "Acme"), customer("cw", "2", "Zeta")])
    seed(engine, [customer("qbo", "A", "Acme"), customer("qbo", "B", "Beta")])
    run(engine, clock)
    with engine.begin() as conn, pytest.raises(LinkRefused, match=message):
        link_records(conn, Kind.CUSTOMER, a, b, now=clock.now())


def test_a_resolved_item_cannot_be_resolved_twice(seeded: Engine, clock: FakeClock) -> None:
    run(seeded, clock)
    item = open_reviews(seeded)[0]
    with seeded.begin() as conn:
        resolve_review(conn, item.id, "dismissed", now=clock.now())
    with seeded.begin() as conn, pytest.raises(LinkRefused, match="already resolved"):
        resolve_review(conn, item.id, "distinct", now=clock.now())
    with seeded.begin() as conn, pytest.raises(LinkRefused, match="no review item 999"):
        resolve_review(conn, 999, "distinct", now=clock.now())


def test_a_question_that_no_longer_arises_is_closed(seeded: Engine, clock: FakeClock) -> None:
    run(seeded, clock)
    with seeded.begin() as conn:  # a person links the Globex of qbo by hand: question answered
        link_records(conn, Kind.CUSTOMER, ("cw", "2"), ("qbo", "Q2"), now=clock.now())
    assert [r.subject for r in open_reviews(seeded)] == ["invoice cw:i2 ~ qbo"]
    seed(seeded, [invoice("qbo", "x3", "1001", "Q1", "250")])  # the invoice shows up unrenamed
    result = run(seeded, clock)
    assert result.invoices == {"exact": 1} and result.reviews_closed == 1
    assert open_reviews(seeded) == []
    with seeded.connect() as conn:
        resolutions = conn.execute(
            select(review_items.c.resolution, func.count()).group_by(review_items.c.resolution)
        ).all()
    assert dict(resolutions) == {"superseded": 1, "obsolete": 1}


def test_three_connections_are_linked_pairwise(engine: Engine, clock: FakeClock) -> None:
    assert connection_pairs(["xero", "cw", "qbo", "cw"]) == [
        ("cw", "qbo"),
        ("cw", "xero"),
        ("qbo", "xero"),
    ]
    seed(engine, [customer(c, "1", "Acme") for c in ("cw", "qbo", "xero")])
    results = link_all(engine, ["xero", "qbo", "cw"], clock=clock)
    assert [r.customers for r in results] == [{"exact": 1}] * 3
    assert {(link[1], link[3]) for link in stored_links(engine)} == {
        ("cw", "qbo"),
        ("cw", "xero"),
        ("qbo", "xero"),
    }
