"""Batches: fresh pushes go out together, each is settled by its own result, and a batch whose
outcome is unknown is never sent again: each of its pushes is searched for, then sent alone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from syncd.connector import PushAccounts
from syncd.errors import RetriableError, SkippableError, UncertainWrite
from syncd.payments.ledger import NewPayment, Recorded, record_payment
from syncd.payments.outbox import claim_batch, claim_next
from syncd.payments.pusher import Pusher
from syncd.store.tables import payment_pushes
from syncd.testing import FakeClock

from .conftest import POLICY, FakeBatches

AddInvoice = Callable[..., None]


@pytest.fixture
def target() -> FakeBatches:  # type: ignore[override]
    return FakeBatches()


@pytest.fixture
def make(engine: Engine, clock: FakeClock, target: FakeBatches) -> Callable[..., Pusher]:
    def build(**kwargs: Any) -> Pusher:
        return Pusher(
            engine,
            targets={"qb": PushAccounts()},
            connector_for=lambda _: target,
            clock=clock,
            policy=POLICY,
            **kwargs,
        )

    return build


@pytest.fixture
def paid(engine: Engine, clock: FakeClock, add_invoice: AddInvoice) -> Callable[[int], None]:
    def pay(count: int) -> None:
        for n in range(count):
            add_invoice("qb", f"Q{n}", f"{2000 + n}", customer="QC9")
            done = record_payment(
                engine,
                NewPayment(
                    amount=Decimal("5.00"), received_at=clock.now(), invoice_number=f"{2000 + n}"
                ),
                ["qb"],
                now=clock.now(),
            )
            assert isinstance(done, Recorded)

    return pay


def rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(payment_pushes).order_by(payment_pushes.c.id)))


def exactly_once(target: FakeBatches, engine: Engine) -> bool:
    return all(target.landed(r.marker) == 1 for r in rows(engine))


def test_fresh_pushes_go_out_thirty_at_a_time(
    engine: Engine, paid: Callable[[int], None], make: Callable[..., Pusher], target: FakeBatches
) -> None:
    paid(65)
    result = make().run_pass()
    assert result.ok and result.counts["done"] == 65
    assert [len(b) for b in target.batches] == [30, 30, 5]
    assert not [c for c, _ in target.calls if c == "push"]  # no single sends
    assert exactly_once(target, engine)
    assert all(r.status == "done" and r.settled_by == "send" for r in rows(engine))


def test_batch_size_one_sends_each_alone(
    engine: Engine, paid: Callable[[int], None], make: Callable[..., Pusher], target: FakeBatches
) -> None:
    paid(3)
    assert make(batch_size=1).run_pass().counts["done"] == 3
    assert target.batches == [] and exactly_once(target, engine)


def test_a_lone_push_is_sent_alone(
    engine: Engine, paid: Callable[[int], None], make: Callable[..., Pusher], target: FakeBatches
) -> None:
    paid(1)
    assert make().run_pass().counts["done"] == 1
    assert target.batches == [] and [c for c, _ in target.calls] == ["push"]


def test_each_item_is_settled_by_its_own_result(
    engine: Engine,
    paid: Callable[[int], None],
    make: Callable[..., Pusher],
    target: FakeBatches,
    clock: FakeClock,
) -> None:
    paid(4)
    target.batch_script = [
        ["ok", SkippableError("6000 over balance"), RetriableError("5010"), UncertainWrite("?")]
    ]
    result = make().run_pass()
    assert (result.counts["done"], result.counts["dead"]) == (1, 1)
    assert (result.counts["retrying"], result.counts["uncertain"]) == (1, 1)
    assert [r.status for r in rows(engine)] == ["done", "dead", "queued", "uncertain"]
    clock.advance(61)
    again = make().run_pass()
    assert again.counts["done"] == 2 and target.batches[1:] == []  # never batched again
    calls = [c for c, _ in target.calls if c != "batch"]
    assert sorted(calls) == ["find", "push", "push"]  # the uncertain one searched first
    assert [target.landed(r.marker) for r in rows(engine)] == [1, 0, 1, 1]


@pytest.mark.parametrize("step", ["lost", "drop"])
def test_a_batch_with_no_answer_leaves_every_item_uncertain_and_is_never_resent(
    engine: Engine,
    paid: Callable[[int], None],
    make: Callable[..., Pusher],
    target: FakeBatches,
    clock: FakeClock,
    step: str,
) -> None:
    paid(6)
    target.batch_script = [step]
    first = make().run_pass()
    assert first.counts["uncertain"] == 6 and not first.ok
    assert {r.status for r in rows(engine)} == {"uncertain"}
    clock.advance(61)
    second = make().run_pass()
    assert second.counts["settled" if step == "lost" else "done"] == 6
    assert len(target.batches) == 1 and exactly_once(target, engine)
    singles = [c for c, _ in target.calls if c == "push"]
    assert len(singles) == (0 if step == "lost" else 6)


def test_a_crash_during_a_batch_is_settled_by_marker(
    engine: Engine,
    paid: Callable[[int], None],
    make: Callable[..., Pusher],
    target: FakeBatches,
    clock: FakeClock,
) -> None:
    paid(5)

    def dies(pushes: Any) -> Any:  # the batch lands, then the worker breaks before committing
        FakeBatches.push_payments(target, pushes)
        raise RuntimeError("a bug between the send and the commit")

    target.push_payments = dies  # type: ignore[method-assign]
    assert make().run_pass().counts["error"] == 5
    assert {r.status for r in rows(engine)} == {"in_flight"}
    del target.push_payments
    clock.advance(301)
    assert make().run_pass().counts["settled"] == 5
    assert exactly_once(target, engine) and len(target.batches) == 1


def test_only_fresh_queued_pushes_join_a_batch(
    engine: Engine, paid: Callable[[int], None], clock: FakeClock
) -> None:
    paid(4)
    lease = dt.timedelta(minutes=5)
    with engine.begin() as conn:  # one push failed before, one was retried by a person
        conn.execute(payment_pushes.update().where(payment_pushes.c.id == 2).values(attempts=1))
        conn.execute(
            payment_pushes.update().where(payment_pushes.c.id == 3).values(last_error="503")
        )
    first = claim_next(engine, owner="w", now=clock.now(), lease=lease, connections={"qb"})
    assert first is not None and first.fresh
    more = claim_batch(
        engine, owner="w", now=clock.now(), lease=lease, connection="qb", limit=29, skip={1}
    )
    assert [c.id for c in more] == [4] and all(c.fresh for c in more)
    assert {r.id: r.status for r in rows(engine)} == {
        1: "in_flight",
        2: "queued",
        3: "queued",
        4: "in_flight",
    }
