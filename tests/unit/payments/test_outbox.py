"""The outbox on a real store: each push claimed once, leases, takeover, retry and cancel."""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Callable
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from syncd.payments.ledger import NewPayment, record_payment
from syncd.payments.outbox import (
    Policy,
    PushRefused,
    backoff,
    cancel_push,
    claim_next,
    finish,
    promote_waiting,
    retry_push,
)
from syncd.store.tables import payment_pushes, review_items

T0 = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(minutes=5)
AddInvoice = Callable[..., None]


def record(
    engine: Engine, amount: str = "1.00", number: str = "1001", targets: tuple[str, ...] = ("qb",)
) -> None:
    payment = NewPayment(amount=Decimal(amount), received_at=T0, invoice_number=number)
    record_payment(engine, payment, targets, now=T0)


def status_of(engine: Engine, push_id: int) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                select(payment_pushes.c.status).where(payment_pushes.c.id == push_id)
            ).scalar_one()
        )


def test_concurrent_workers_claim_each_push_exactly_once(
    engine: Engine, add_invoice: AddInvoice
) -> None:
    add_invoice("qb", "Q1", "1001", "100.00")
    for _ in range(30):
        record(engine)
    claimed: list[tuple[str, int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def worker(name: str) -> None:
        barrier.wait()
        while True:
            claim = claim_next(engine, owner=name, now=T0, lease=LEASE, connections={"qb"})
            if claim is None:
                return
            with lock:
                claimed.append((name, claim.id))

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [push_id for _, push_id in claimed]
    assert sorted(ids) == list(range(1, 31))  # all 30, none twice


def test_an_expired_lease_is_taken_over_and_must_be_settled(
    engine: Engine, add_invoice: AddInvoice
) -> None:
    add_invoice("qb", "Q1", "1001")
    record(engine)
    first = claim_next(engine, owner="a", now=T0, lease=LEASE, connections={"qb"})
    assert first is not None and not first.must_settle and first.attempts == 1
    soon = T0 + dt.timedelta(minutes=4)
    assert claim_next(engine, owner="b", now=soon, lease=LEASE, connections={"qb"}) is None
    later = T0 + dt.timedelta(minutes=6)
    second = claim_next(engine, owner="b", now=later, lease=LEASE, connections={"qb"})
    assert second is not None and second.id == first.id
    assert second.previous == "in_flight" and second.must_settle
    # the first worker comes back from its stall: it may not write anything any more
    assert not finish(engine, first, "a", later, status="done", external_id="x")
    assert finish(engine, second, "b", later, status="done", external_id="y")
    assert status_of(engine, first.id) == "done"


def test_claims_respect_the_next_attempt_time_and_the_connections(
    engine: Engine, add_invoice: AddInvoice
) -> None:
    add_invoice("qb", "Q1", "1001")
    add_invoice("cw", "C1", "1001")
    record(engine, targets=("cw", "qb"))
    with engine.begin() as conn:
        conn.execute(
            update(payment_pushes)
            .where(payment_pushes.c.connection == "qb")
            .values(next_attempt_at=T0 + dt.timedelta(minutes=1))
        )
    assert claim_next(engine, owner="a", now=T0, lease=LEASE, connections={"qb"}) is None
    cw = claim_next(engine, owner="a", now=T0, lease=LEASE, connections={"cw", "qb"})
    assert cw is not None and cw.connection == "cw"
    later = T0 + dt.timedelta(minutes=1)
    assert claim_next(engine, owner="a", now=later, lease=LEASE, connections={"qb"}) is not None


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    policy = Policy(retry_base=dt.timedelta(seconds=30), retry_cap=dt.timedelta(minutes=10))
    rng = random.Random(1)
    waits = [backoff(n, policy, rng).total_seconds() for n in range(1, 9)]
    for n, wait in enumerate(waits, start=1):
        full = min(30 * 2 ** (n - 1), 600)
        assert full / 2 <= wait <= full
    assert max(waits) <= 600


def test_waiting_pushes_queue_when_the_invoice_syncs_in(
    engine: Engine, add_invoice: AddInvoice
) -> None:
    add_invoice("cw", "C1", "1001")
    add_invoice("cw", "C2", "1002")
    record(engine, targets=("qb",))
    record(engine, number="1002", targets=("qb",))
    assert status_of(engine, 1) == status_of(engine, 2) == "waiting"
    assert promote_waiting(engine, now=T0) == 0
    add_invoice("qb", "Q1", "1001")
    add_invoice("qb", "Q2", "1002", status="void")
    assert promote_waiting(engine, now=T0) == 1
    assert (status_of(engine, 1), status_of(engine, 2)) == ("queued", "dead")
    with engine.connect() as conn:
        [item] = conn.execute(select(review_items)).all()
    assert item.kind == "payment_push_dead" and "is void" in item.detail["reason"]


def test_a_person_retries_and_cancels(engine: Engine, add_invoice: AddInvoice) -> None:
    add_invoice("qb", "Q1", "1001")
    record(engine)
    record(engine)
    with engine.begin() as conn:
        conn.execute(update(payment_pushes).where(payment_pushes.c.id == 1).values(status="dead"))
    assert retry_push(engine, 1, now=T0) == "uncertain"  # a marker search comes first
    with pytest.raises(PushRefused, match="may have reached qb"):
        cancel_push(engine, 1, now=T0, reason="no")
    cancel_push(engine, 2, now=T0, reason="paid by hand in qb")
    assert status_of(engine, 2) == "cancelled"
    with pytest.raises(PushRefused, match="nothing to retry"):
        retry_push(engine, 2, now=T0)
    with pytest.raises(PushRefused, match="no push 99"):
        retry_push(engine, 99, now=T0)
