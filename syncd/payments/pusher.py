"""The pusher: one pass over the due pushes, each taken through its state machine.

::

    waiting ──(target invoice syncs in)──► queued
    queued ──claim──► in_flight (committed before the vendor is called)
    in_flight ──push ok──► done (vendor id, settled_by=send)
              ──UncertainWrite──► uncertain (settled after ``settle_after``)
              ──RetriableError / FatalError──► queued with backoff │ dead after max_attempts
              ──SkippableError (the vendor refused it)──► dead + review item
              ──AuthError──► queued, attempt not counted, connection flagged for this pass
    in_flight (lease expired: its worker died) │ uncertain ──claim──► find_payment(marker)
              found ──► done (settled_by=marker)   not found ──► send as above
              search failed ──► uncertain again, with backoff; never dead, never re-sent

Only a definite "not found" lets a possibly-sent push be sent again. ``dead`` therefore always
means the vendor has nothing: a refusal, or transient failures before anything was sent.
A ``reverse`` push undoes a done push (``ReversesPayments``); it waits while its original is
unsettled, and is settled the same way (the original's marker gone ⇒ reversed).

**Batches** (``PushesInBatches``): a claimed payment push never attempted before takes up to
``batch_size - 1`` more such pushes of its target (``claim_batch``: each leased and committed
``in_flight`` first), sent in one request; each is settled by its own result, and one without a
definite result is ``uncertain`` like any single push: searched by its marker, then sent alone.
A batch is never re-sent, so its ``requestid`` is only ever replayed to its own retries.

**Deposits** (``BooksDeposits``, ``payouts``): at the start of a pass and whenever nothing else
is due, ``prepare_deposits`` makes and queues the deposit pushes of payouts whose payments are
all pushed; a ``deposit`` push follows the same machine (``find_deposit`` settles it), and
re-reads its payout before sending, so a reversal or a cancelled payment push stops it.

``SYNCD_CRASH_AT`` is for tests only: naming a step (``after_claim_commit``,
``after_find_before_commit``, ``after_send_before_commit``, ``after_done_commit``) makes this
process SIGKILL itself there, so tests prove that a crash at any step pushes nothing twice.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import and_, select
from sqlalchemy.engine import Engine

from syncd.clock import Clock
from syncd.connector import (
    BooksDeposits,
    Capability,
    Connector,
    PaymentPush,
    PushAccounts,
    PushesInBatches,
    PushReceipt,
    ReversesPayments,
)
from syncd.errors import (
    AuthError,
    ConnectorError,
    FatalError,
    RateLimited,
    SkippableError,
    SyncdError,
    UncertainWrite,
)
from syncd.model import PaymentMethod, PaymentStatus
from syncd.payments._db import open_review, writing
from syncd.payments.outbox import (
    Claim,
    Policy,
    backoff,
    claim_batch,
    claim_next,
    finish,
    finish_many,
    finish_with_review,
    promote_waiting,
    renew,
)
from syncd.payments.payouts import (
    PER_PAYMENT,
    dead_deposit,
    deposit_memo,
    deposit_plan,
    prepare_deposits,
)
from syncd.redact import REDACTOR
from syncd.store.tables import invoices, payment_allocations, payment_pushes, payments, payouts

CRASH_ENV = "SYNCD_CRASH_AT"
BATCH_SIZE = 30  # QuickBooks' recommended maximum per batch request (research 1.8)
MAX_DEPOSIT_ROUNDS = 3  # payments done → their deposits queued → sent, within one pass
log = structlog.get_logger("syncd.payments")


def crash_point(step: str) -> None:
    """Test-only: SIGKILL this process at ``step`` when ``SYNCD_CRASH_AT`` names it."""
    if os.environ.get(CRASH_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class PassResult:
    """What one pass did, per outcome: done, settled (found by marker), uncertain, retrying,
    dead, cancelled, deferred (a reversal waiting for its push), lost (lease taken over)."""

    counts: Counter[str] = field(default_factory=Counter)
    flagged: dict[str, str] = field(default_factory=dict)  # connection → why it was skipped

    @property
    def ok(self) -> bool:
        failed = ("uncertain", "retrying", "dead", "lost", "error")
        return not self.flagged and not any(self.counts[k] for k in failed)

    def summary(self) -> str:
        order = ("done", "settled", "cancelled", "uncertain", "retrying", "dead", "deferred")
        parts = [f"{self.counts[k]} {k}" for k in order if self.counts[k]]
        parts += [f"{self.counts[k]} {k}" for k in ("lost", "error") if self.counts[k]]
        return ", ".join(parts) or "nothing due"


def worker_id() -> str:
    """This worker's lease owner name: host, process and a random part (a restarted process
    with a recycled pid is still someone else)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Pusher:
    """Pushes due payments to their target connections. One instance per pass or per daemon."""

    def __init__(
        self,
        engine: Engine,
        *,
        targets: Mapping[str, PushAccounts],
        connector_for: Callable[[str], Connector],
        clock: Clock,
        policy: Policy | None = None,
        owner: str | None = None,
        rng: random.Random | None = None,
        batch_size: int = BATCH_SIZE,
        deposits: str = PER_PAYMENT,
    ) -> None:
        self.engine = engine
        self.targets = dict(targets)
        self.connector_for = connector_for
        self.clock = clock
        self.policy = policy or Policy()
        self.owner = owner or worker_id()
        self.rng = rng or random.Random()
        self.batch_size = batch_size  # 1: one request per payment, even where batches exist
        self.deposits = deposits  # per_payment | per_payout (``payouts.prepare_deposits``)

    def run_pass(self, *, limit: int | None = None) -> PassResult:
        """Queue what stopped waiting, then handle each due push once (at most ``limit``)."""
        result = PassResult()
        promote_waiting(self.engine, now=self.clock.now())
        handled: set[int] = set()
        connectors: dict[str, Connector] = {}
        rounds = 0  # deposits made ready by this pass's own pushes: at most a few more rounds
        try:
            self._prepare_deposits(connectors, result)
            while limit is None or len(handled) < limit:
                claim = claim_next(
                    self.engine,
                    owner=self.owner,
                    now=self.clock.now(),
                    lease=self.policy.lease,
                    connections=set(self.targets) - set(result.flagged),
                    skip=handled,
                )
                if claim is None:
                    # Payments pushed in this pass may have made their deposits ready.
                    rounds += 1
                    if rounds <= MAX_DEPOSIT_ROUNDS and self._prepare_deposits(connectors, result):
                        continue
                    break
                handled.add(claim.id)
                crash_point("after_claim_commit")
                room = None if limit is None else limit - len(handled)
                batch = self._claim_batch(claim, connectors, handled, room)
                if batch:
                    handled.update(c.id for c in batch)
                    for outcome in self._handle_batch([claim, *batch], connectors, result):
                        result.counts[outcome] += 1
                    continue
                with structlog.contextvars.bound_contextvars(
                    push_id=claim.id, payment_id=claim.payment_id, connection=claim.connection
                ):
                    outcome = self._handle(claim, connectors, result)
                result.counts[outcome] += 1
        finally:
            for connector in connectors.values():
                connector.close()
        return result

    def _connector(self, name: str, connectors: dict[str, Connector]) -> Connector:
        """This pass's connector of ``name`` (built once); raises ``SyncdError`` if it cannot be
        built."""
        connector = connectors.get(name)
        if connector is None:
            connector = self.connector_for(name)
            connectors[name] = connector
        return connector

    def _prepare_deposits(self, connectors: dict[str, Connector], result: PassResult) -> int:
        """Make and queue the deposits due in the targets that book deposits; how many queued."""
        booking = []
        for name in sorted(set(self.targets) - set(result.flagged)):
            try:
                connector = self._connector(name, connectors)
            except SyncdError:
                continue  # the push path reports it when it claims a push of this target
            if isinstance(connector, BooksDeposits) and connector.deposits_enabled():
                booking.append(name)
        return prepare_deposits(self.engine, booking, mode=self.deposits, now=self.clock.now())

    # -- one push --------------------------------------------------------------------------------

    def _handle(self, claim: Claim, connectors: dict[str, Connector], result: PassResult) -> str:
        try:
            connector = self._connector(claim.connection, connectors)
        except SyncdError as exc:
            self._release(claim, _text(exc), counted=False)  # nothing was sent
            self._flag(result, claim.connection, _text(exc))
            return "error"
        if Capability.PAYMENTS_WRITE not in connector.capabilities:
            self._release(claim, "the connector cannot write payments", counted=False)
            self._flag(result, claim.connection, "its connector cannot write payments")
            return "deferred"
        try:
            if claim.kind == "reverse":
                return self._reverse(claim, connector, result)
            if claim.kind == "deposit":
                return self._deposit(claim, connector, result)
            return self._push(claim, connector, result)
        except Exception as exc:
            # A bug, or the store failing after a send: the request may have gone out, so the
            # push keeps its lease and, once it expires, is settled by marker like any crash.
            log.exception("push_interrupted", error_kind=type(exc).__name__)
            self._flag(result, claim.connection, f"interrupted by {type(exc).__name__}")
            return "error"

    # -- batches ---------------------------------------------------------------------------------

    def _claim_batch(
        self,
        claim: Claim,
        connectors: dict[str, Connector],
        handled: Collection[int],
        room: int | None,
    ) -> list[Claim]:
        """More fresh pushes of ``claim``'s target to send with it in one batch; [] to send it
        alone (not fresh, no batch endpoint, or nothing else due)."""
        if self.batch_size < 2 or not claim.fresh:
            return []
        try:
            connector = self._connector(claim.connection, connectors)
        except SyncdError:
            return []  # ``_handle`` reports it
        if (
            not isinstance(connector, PushesInBatches)
            or Capability.PAYMENTS_WRITE not in connector.capabilities
        ):
            return []
        wanted = self.batch_size - 1 if room is None else min(self.batch_size - 1, room)
        return claim_batch(
            self.engine,
            owner=self.owner,
            now=self.clock.now(),
            lease=self.policy.lease,
            connection=claim.connection,
            limit=wanted,
            skip=handled,
        )

    def _handle_batch(
        self, claims: list[Claim], connectors: dict[str, Connector], result: PassResult
    ) -> list[str]:
        connector = connectors[claims[0].connection]
        assert isinstance(connector, PushesInBatches)
        with structlog.contextvars.bound_contextvars(
            connection=claims[0].connection, batch=[c.id for c in claims]
        ):
            try:
                return self._push_batch(claims, connector, result)
            except Exception as exc:
                # As for one push: every claim keeps its lease and is settled by marker later.
                log.exception("push_interrupted", error_kind=type(exc).__name__)
                self._flag(result, claims[0].connection, f"interrupted by {type(exc).__name__}")
                return ["error"] * len(claims)

    def _push_batch(
        self, claims: list[Claim], connector: PushesInBatches, result: PassResult
    ) -> list[str]:
        outcomes: dict[int, str] = {}
        sendable: list[tuple[Claim, PaymentPush]] = []
        for claim in claims:
            push, reversed_ = self._load(claim)
            if reversed_:
                self._finish(
                    claim,
                    status="cancelled",
                    last_error=f"payment reversed before it reached {claim.connection}",
                )
                outcomes[claim.id] = "cancelled"
            else:
                sendable.append((claim, push))
        answers: Sequence[PushReceipt | ConnectorError] = []
        try:
            if sendable:
                answers = connector.push_payments([push for _, push in sendable])
        except ConnectorError as exc:  # the request as a whole: every item has this outcome
            answers = [exc] * len(sendable)
        crash_point("after_send_before_commit")
        done: list[tuple[Claim, Mapping[str, Any]]] = []
        now = self.clock.now()
        for index, (claim, push) in enumerate(sendable):
            answer = answers[index] if index < len(answers) else None
            if isinstance(answer, PushReceipt):
                done.append((claim, _done_values(answer.external_id, "send", now)))
                outcomes[claim.id] = "done"
                log.info("payment_pushed", vendor_id=answer.external_id, marker=push.marker)
                continue
            error = answer or UncertainWrite("the batch answer has no result for this push")
            outcomes[claim.id] = self._failed(claim, error, result)
        if done and finish_many(self.engine, done, self.owner, now) != len(done):
            log.warning("push_lease_lost", wanted="done")
        crash_point("after_done_commit")
        return [outcomes[claim.id] for claim in claims]

    def _push(self, claim: Claim, connector: Connector, result: PassResult) -> str:
        push, reversed_ = self._load(claim)
        if claim.must_settle:
            settled = self._settle(claim, connector, push, result)
            if settled is not None:
                return settled
        if reversed_:
            self._finish(
                claim,
                status="cancelled",
                settled_by="marker" if claim.must_settle else None,
                last_error=f"payment reversed before it reached {claim.connection}",
            )
            return "cancelled"
        try:
            receipt = connector.push_payment(push)
        except ConnectorError as exc:
            return self._failed(claim, exc, result)
        crash_point("after_send_before_commit")
        self._done(claim, receipt.external_id, "send")
        log.info("payment_pushed", vendor_id=receipt.external_id, marker=claim.marker)
        return "done"

    def _reverse(self, claim: Claim, connector: Connector, result: PassResult) -> str:
        original = self._original(claim)
        if original is None or original.status in ("cancelled", "dead"):
            self._finish(
                claim,
                status="cancelled",
                last_error=f"nothing to reverse: the payment never reached {claim.connection}",
            )
            return "cancelled"
        if original.status != "done":
            self._release(claim, f"waiting for push {original.id} to settle", counted=False)
            return "deferred"
        if not isinstance(connector, ReversesPayments):
            self._dead(
                claim,
                f"{claim.connection} cannot reverse payments through its API: remove payment "
                f"{original.external_id} (marker {original.marker}) there by hand, then "
                f"`syncd push cancel {claim.id}`",
            )
            return "dead"
        push, _ = self._load(claim, original_id=original.id)
        receipt = PushReceipt(external_id=str(original.external_id))
        if claim.must_settle:
            found = self._find(claim, connector, push, result)
            if isinstance(found, str):
                return found
            if found is None:
                self._done(claim, receipt.external_id, "marker")
                return "settled"
            receipt = found
            if not self._renew(claim):
                return "lost"
        try:
            connector.reverse_payment(push, receipt)
        except ConnectorError as exc:
            return self._failed(claim, exc, result)
        crash_point("after_send_before_commit")
        self._done(claim, receipt.external_id, "send")
        log.info("payment_reversed", vendor_id=receipt.external_id, marker=push.marker)
        return "done"

    def _deposit(self, claim: Claim, connector: Connector, result: PassResult) -> str:
        """Book a payout's deposit: settle by marker first when it may be there, re-read the
        payout (a reversal or a cancelled payment push stops it), then send it once."""
        assert claim.payout_id is not None
        if not isinstance(connector, BooksDeposits):
            self._dead(claim, f"{claim.connection} does not book deposits")
            return "dead"
        with self.engine.connect() as conn:
            payout = conn.execute(select(payouts).where(payouts.c.id == claim.payout_id)).one()
            created = conn.execute(
                select(payment_pushes.c.created_at).where(payment_pushes.c.id == claim.id)
            ).scalar_one()
        since = min(payout.paid_at, created)
        if claim.must_settle:
            try:
                found = connector.find_deposit(claim.marker, since)
            except ConnectorError as exc:
                if isinstance(exc, AuthError | FatalError):
                    self._flag(result, claim.connection, _text(exc))
                return self._unsettled(claim, exc)
            crash_point("after_find_before_commit")
            if found is not None:
                self._done(claim, found.external_id, "marker")
                log.info("deposit_found_by_marker", vendor_id=found.external_id)
                return "settled"
            log.info("deposit_not_found_by_marker", marker=claim.marker)
            if not self._renew(claim):
                return "lost"
        if not connector.deposits_enabled():
            self._dead(claim, f"deposits are off in {claim.connection} (its configuration)")
            return "dead"
        with self.engine.connect() as conn:
            plan = deposit_plan(conn, claim.payout_id, claim.connection)
            memo = deposit_memo(conn, claim.payout_id)
        if plan.blocked:
            self._dead(claim, plan.blocked)
            return "dead"
        if not plan.ready:
            self._finish(
                claim,
                status="waiting",
                attempts=claim.attempts - 1,
                next_attempt_at=None,
                last_error=plan.waiting,
            )
            return "deferred"
        accounts = self.targets.get(claim.connection, PushAccounts())
        if payout.fee and not accounts.fee_account:
            self._dead(
                claim,
                f"set fee_account on connection {claim.connection} (the expense account of card "
                "fees)",
            )
            return "dead"
        try:
            receipt = connector.book_deposit(
                claim.key,
                claim.marker,
                plan.lines,
                payout.fee,
                fee_account=accounts.fee_account,
                deposited_at=payout.paid_at,
                memo=memo,
            )
        except ConnectorError as exc:
            return self._failed(claim, exc, result)
        crash_point("after_send_before_commit")
        self._done(claim, receipt.external_id, "send")
        log.info("deposit_booked", vendor_id=receipt.external_id, marker=claim.marker)
        return "done"

    def _settle(
        self, claim: Claim, connector: Connector, push: PaymentPush, result: PassResult
    ) -> str | None:
        """Search for the marker; an outcome when that decides the push, None to send it."""
        found = self._find(claim, connector, push, result)
        if isinstance(found, str):
            return found
        if found is not None:
            self._done(claim, found.external_id, "marker")
            log.info("payment_found_by_marker", vendor_id=found.external_id, marker=push.marker)
            return "settled"
        log.info("payment_not_found_by_marker", marker=push.marker)
        return None if self._renew(claim) else "lost"

    def _find(
        self, claim: Claim, connector: Connector, push: PaymentPush, result: PassResult
    ) -> PushReceipt | str | None:
        """The marker search: a receipt, None (definitely not there), or an outcome when the
        search itself failed (the push stays uncertain)."""
        try:
            found = connector.find_payment(push)
        except ConnectorError as exc:
            if isinstance(exc, AuthError | FatalError):
                self._flag(result, claim.connection, _text(exc))
            return self._unsettled(claim, exc)
        crash_point("after_find_before_commit")
        return found

    # -- outcomes --------------------------------------------------------------------------------

    def _failed(self, claim: Claim, exc: ConnectorError, result: PassResult) -> str:
        message = _text(exc)
        if isinstance(exc, UncertainWrite):
            when = self.clock.now() + self.policy.settle_after
            self._finish(claim, status="uncertain", next_attempt_at=when, last_error=message)
            log.warning("push_uncertain", error=message)
            return "uncertain"
        if isinstance(exc, AuthError):
            self._release(claim, message, counted=False)
            self._flag(result, claim.connection, message)
            return "retrying"
        if isinstance(exc, SkippableError):
            self._dead(claim, f"{claim.connection} refused it: {message}")
            return "dead"
        if isinstance(exc, FatalError):
            self._flag(result, claim.connection, message)
        if claim.attempts >= self.policy.max_attempts:
            self._dead(claim, f"gave up after {claim.attempts} attempts: {message}")
            return "dead"
        self._finish(
            claim, status="queued", next_attempt_at=self._next(claim, exc), last_error=message
        )
        log.warning("push_retrying", error=message, attempts=claim.attempts)
        return "retrying"

    def _unsettled(self, claim: Claim, exc: ConnectorError) -> str:
        """The marker search failed: stay uncertain, try again later, never send meanwhile."""
        message = f"marker search failed: {_text(exc)}"
        attempts = claim.attempts - 1 if isinstance(exc, AuthError) else claim.attempts
        values: dict[str, Any] = {
            "status": "uncertain",
            "attempts": attempts,
            "next_attempt_at": self._next(claim, exc),
            "last_error": message,
        }
        log.warning("push_unsettled", error=message, attempts=attempts)
        if attempts >= self.policy.max_attempts:
            what = (
                f"the deposit of payout {claim.payout_id}"
                if claim.kind == "deposit"
                else f"payment {claim.payment_id}"
            )
            review = {
                "kind": "payment_push_unsettled",
                "subject": f"push {claim.id}",
                "reason": f"cannot tell whether {what} reached "
                f"{claim.connection} (marker {claim.marker}): {message}",
                "detail": {"push_id": claim.id, "marker": claim.marker},
            }
            finish_with_review(self.engine, claim, self.owner, self.clock.now(), review, **values)
        else:
            finish(self.engine, claim, self.owner, self.clock.now(), **values)
        return "uncertain"

    def _next(self, claim: Claim, exc: ConnectorError) -> dt.datetime:
        wait = backoff(claim.attempts, self.policy, self.rng)
        if isinstance(exc, RateLimited) and exc.retry_after:
            wait = max(wait, dt.timedelta(seconds=exc.retry_after))
        return self.clock.now() + wait

    def _done(self, claim: Claim, external_id: str, settled_by: str) -> None:
        self._finish(claim, **_done_values(external_id, settled_by, self.clock.now()))
        crash_point("after_done_commit")

    def _dead(self, claim: Claim, reason: str) -> None:
        review = {
            "kind": "payment_push_dead",
            "subject": f"push {claim.id}",
            "reason": f"payment {claim.payment_id} was not pushed to {claim.connection}: {reason}",
            "detail": {"push_id": claim.id, "payment_id": claim.payment_id},
        }
        if claim.kind == "deposit":
            review = dead_deposit(_DepositRow(claim.id, claim.payout_id, claim.connection), reason)
        now = self.clock.now()
        if not finish_with_review(
            self.engine, claim, self.owner, now, review, status="dead", last_error=reason
        ):
            log.warning("push_lease_lost")
        log.warning("push_dead", reason=reason)

    def _release(self, claim: Claim, reason: str, *, counted: bool) -> None:
        """Put a claimed push back, untouched by the vendor: due again after ``settle_after``."""
        previous = "uncertain" if claim.must_settle else "queued"
        self._finish(
            claim,
            status=previous,
            attempts=claim.attempts if counted else claim.attempts - 1,
            next_attempt_at=self.clock.now() + self.policy.settle_after,
            last_error=reason,
        )

    def _finish(self, claim: Claim, **values: Any) -> None:
        if not finish(self.engine, claim, self.owner, self.clock.now(), **values):
            log.warning("push_lease_lost", wanted=values.get("status"))

    def _renew(self, claim: Claim) -> bool:
        return renew(self.engine, claim, self.owner, self.clock.now(), self.policy.lease)

    def _flag(self, result: PassResult, connection: str, why: str) -> None:
        """Push nothing more to ``connection`` this pass; an auth failure also asks a person."""
        if connection in result.flagged:
            return
        result.flagged[connection] = why
        with writing(self.engine) as conn:
            open_review(
                conn,
                kind="payment_connection",
                subject=f"connection {connection}",
                reason=f"payments to {connection} are held: {why}",
                now=self.clock.now(),
                connection=connection,
            )

    # -- reading what a push needs ---------------------------------------------------------------

    def _load(self, claim: Claim, original_id: int | None = None) -> tuple[PaymentPush, bool]:
        """The ``PaymentPush`` of a claim (of its original push for a reversal), and whether the
        payment has been reversed since."""
        with self.engine.connect() as conn:
            push_row = conn.execute(
                select(payment_pushes).where(payment_pushes.c.id == (original_id or claim.id))
            ).one()
            payment = conn.execute(select(payments).where(payments.c.id == claim.payment_id)).one()
            allocation = conn.execute(
                select(payment_allocations).where(payment_allocations.c.id == claim.allocation_id)
            ).one()
            first_allocation = conn.execute(
                select(payment_allocations.c.id)
                .where(payment_allocations.c.payment_id == claim.payment_id)
                .order_by(payment_allocations.c.id)
                .limit(1)
            ).scalar()
            customer = conn.execute(
                select(invoices.c.customer_external_id).where(
                    and_(
                        invoices.c.connection == claim.connection,
                        invoices.c.external_id == push_row.invoice_external_id,
                    )
                )
            ).scalar()
        push = PaymentPush(
            key=push_row.idempotency_key,
            marker=push_row.marker,
            invoice_external_id=push_row.invoice_external_id,
            customer_external_id=customer or "",
            amount=allocation.amount,
            # A processor fee is booked once per payment and target: with its first allocation.
            fee=payment.fee if allocation.id == first_allocation else Decimal(0),
            currency=payment.currency,
            method=PaymentMethod(payment.method),
            received_at=payment.received_at,
            reference=payment.reference,
            memo=payment.memo,
            accounts=self.targets.get(claim.connection, PushAccounts()),
        )
        return push, payment.status == PaymentStatus.REVERSED.value

    def _original(self, claim: Claim) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(
                select(payment_pushes).where(
                    and_(
                        payment_pushes.c.payment_id == claim.payment_id,
                        payment_pushes.c.connection == claim.connection,
                        payment_pushes.c.allocation_id == claim.allocation_id,
                        payment_pushes.c.kind == "push",
                    )
                )
            ).first()


def _text(exc: BaseException) -> str:
    return str(REDACTOR.redact(str(exc)))


def _done_values(external_id: str, settled_by: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "status": "done",
        "external_id": external_id,
        "settled_by": settled_by,
        "done_at": now,
        "next_attempt_at": None,
        "last_error": None,
    }


@dataclass(frozen=True)
class _DepositRow:
    """What ``payouts.dead_deposit`` reads of a deposit push."""

    id: int
    payout_id: int | None
    connection: str


__all__ = ["BATCH_SIZE", "CRASH_ENV", "PassResult", "Pusher", "crash_point", "worker_id"]
