"""What the CLI and the daemon call: a pusher built from the settings, one pass of it, and the
payments side of the end of a sync."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Engine

from syncd.clock import Clock, SystemClock
from syncd.config.models import Settings
from syncd.connector import PushAccounts
from syncd.payments.ledger import payment_targets
from syncd.payments.outbox import Policy
from syncd.payments.pusher import PassResult, Pusher
from syncd.payments.verify import AfterPull, after_sync
from syncd.sync.factory import build_connector


def build_pusher(
    settings: Settings, engine: Engine, *, clock: Clock | None = None
) -> Pusher | None:
    """A pusher over the enabled connections with ``receives_payments``; None when there are
    none."""
    targets = {
        name: PushAccounts(c.deposit_account, c.payment_method, c.fee_account)
        for name, c in settings.connections.items()
        if c.receives_payments and c.enabled
    }
    if not targets:
        return None
    p = settings.payments
    return Pusher(
        engine,
        targets=targets,
        connector_for=lambda name: build_connector(
            settings, settings.connection(name), clock=clock, engine=engine
        ),
        clock=clock or SystemClock(),
        policy=Policy(
            max_attempts=p.max_attempts,
            lease=dt.timedelta(seconds=p.lease),
            retry_base=dt.timedelta(seconds=p.retry_base),
            retry_cap=dt.timedelta(seconds=p.retry_cap),
            settle_after=dt.timedelta(seconds=p.settle_after),
        ),
        deposits=p.deposits,
    )


def push_job(settings: Settings, engine: Engine) -> PassResult | None:
    """One push pass (the daemon schedules it, e.g. every minute, ``max_instances=1``)."""
    pusher = build_pusher(settings, engine)
    return None if pusher is None else pusher.run_pass()


def after_sync_job(
    settings: Settings, engine: Engine, results: Sequence[Any], *, clock: Clock | None = None
) -> list[AfterPull]:
    """Call with a sync's ``PullResult``s: applies held payments, queues waiting pushes and
    verifies pushed payments against the pulled balances."""
    now = (clock or SystemClock()).now()
    return after_sync(engine, payment_targets(settings), results, now=now)


__all__ = ["after_sync_job", "build_pusher", "push_job"]
