"""``syncd payments …``, ``syncd payouts …`` and ``syncd push …``: the payments ledger, card
payouts (booked as deposits where a target does that) and the outbox.

A refused payment or payout exits with status 2 and one line saying why; nothing is stored.
Recording a processor reference (of a payment or a payout) twice exits 0 and says which record
has it. ``syncd push`` runs one pass and exits 1 when a push failed or is still uncertain, so
cron and scripts notice.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, NoReturn

import click
from sqlalchemy import select

from syncd.cli._context import AppContext
from syncd.clock import SystemClock
from syncd.model import PaymentMethod
from syncd.payments.csv_import import import_payouts, import_rows
from syncd.payments.inputs import (
    optional,
    parse_allocation,
    parse_amount,
    parse_when,
)
from syncd.payments.jobs import build_pusher
from syncd.payments.ledger import (
    Duplicate,
    NewPayment,
    PaymentRefused,
    Recorded,
    apply_held,
    payment_targets,
    record_payment,
    reverse_payment,
)
from syncd.payments.outbox import PushRefused, cancel_push, retry_push
from syncd.payments.payouts import NewPayout, PayoutDuplicate, PayoutRefused, record_payout
from syncd.payments.views import payment_json, payout_json, push_json
from syncd.store import store_lock
from syncd.store.tables import payment_pushes, payouts
from syncd.store.tables import payments as payments_table

EXIT_REFUSED = 2
PUSH_STATUSES = ("waiting", "queued", "in_flight", "uncertain", "done", "dead", "cancelled")


def _refused(exc: Exception) -> NoReturn:
    click.echo(f"syncd: payment refused: {exc}; nothing was stored", err=True)
    raise SystemExit(EXIT_REFUSED)


def _now() -> dt.datetime:
    return SystemClock().now()


@click.group()
def payments() -> None:
    """Record customer payments so syncd can push them, exactly once, to the systems that must
    know (the connections with `receives_payments = true`)."""


@payments.command("record")
@click.option("--invoice", "invoice_number", help="Number of the invoice the payment pays.")
@click.option(
    "--allocate",
    "allocations",
    multiple=True,
    metavar="NUMBER=AMOUNT",
    help="Split the payment over several invoices (repeatable), instead of --invoice.",
)
@click.option("--amount", required=True, help="Gross amount paid, e.g. 12.34.")
@click.option("--fee", default="0", show_default=True, help="Processing fee withheld (card).")
@click.option(
    "--method",
    type=click.Choice([m.value for m in PaymentMethod]),
    default="other",
    show_default=True,
)
@click.option("--reference", help="Processor reference; unique, so recording twice is a no-op.")
@click.option("--currency", help="ISO 4217 code (default: the invoice's).")
@click.option("--received-at", help="When the money arrived: ISO 8601 with a zone, or a date.")
@click.option("--memo", help="Free text kept with it; with it, an unknown invoice is held.")
@click.option("--customer", help="Who paid (name or id); checked against the invoice.")
@click.option(
    "--as-credit", is_flag=True, help="Keep what exceeds the open balance as customer credit."
)
@click.pass_obj
def record(
    app: AppContext,
    invoice_number: str | None,
    allocations: tuple[str, ...],
    amount: str,
    fee: str,
    method: str,
    reference: str | None,
    currency: str | None,
    received_at: str | None,
    memo: str | None,
    customer: str | None,
    as_credit: bool,
) -> None:
    """Record one payment and queue its pushes (one transaction).

    The amount may be part of the invoice's open balance; more is refused unless --as-credit.
    An invoice not synced yet is refused, or held as unapplied when --memo says what it is for;
    it is applied when the invoice syncs in. Exit status 2 when refused (nothing stored).
    """
    if invoice_number and allocations:
        raise click.UsageError("give --invoice or --allocate, not both")
    now = _now()
    try:
        new = NewPayment(
            amount=parse_amount(amount),
            fee=parse_amount(fee, "fee"),
            currency=currency.upper() if currency else None,
            method=PaymentMethod(method),
            reference=optional(reference),
            received_at=parse_when(received_at, now),
            invoice_number=optional(invoice_number),
            allocations=tuple(parse_allocation(a) for a in allocations),
            memo=optional(memo),
            customer=optional(customer),
            allow_credit=as_credit,
        )
        targets = payment_targets(app.settings)
        outcome = record_payment(app.engine, new, targets, now=now)
    except PaymentRefused as exc:
        _refused(exc)
    if isinstance(outcome, Duplicate):
        click.echo(
            f"already recorded as payment {outcome.payment_id} (reference {outcome.reference}); "
            "nothing changed"
        )
        return
    _print_recorded(outcome, new, targets)


def _print_recorded(outcome: Recorded, new: NewPayment, targets: list[str]) -> None:
    what = f"payment {outcome.payment_id}: {new.amount} {outcome.currency}"
    if outcome.status == "unapplied":
        click.echo(f"held {what} as unapplied ({outcome.held_because}); `syncd status` lists it")
        return
    to = ", ".join(f"invoice {n} ({a})" for n, a in outcome.lines) or "no invoice"
    click.echo(f"recorded {what} to {to}")
    if outcome.credit:
        click.echo(f"  {outcome.credit} {outcome.currency} kept as customer credit in syncd")
    if not targets:
        click.echo("  no connection has receives_payments = true: nothing will be pushed")
    for p in outcome.pushes:
        state = "queued" if p.status == "queued" else f"waiting for invoice {p.invoice_number}"
        click.echo(f"  push to {p.connection}: {state}")


@payments.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def import_csv(app: AppContext, file: Path) -> None:
    """Record the payments of a CSV file, one per row, each row on its own.

    \b
    Header (any order; amount required, and invoice_number or memo per row):
      invoice_number,amount,currency,fee,method,reference,received_at,memo,customer
    currency defaults to the invoice's, method to "other", received_at to now
    (ISO 8601 with a zone, or a date). Each row is reported by its line in the file;
    a refused row changes nothing. Importing the same file again records nothing new
    (references are unique). Exit status 1 when any row was refused.
    """
    try:
        with file.open(encoding="utf-8-sig", newline="") as handle:
            report = import_rows(app.engine, handle, payment_targets(app.settings), now=_now())
    except PaymentRefused as exc:
        click.echo(f"syncd: {file}: {exc}; nothing was imported", err=True)
        raise SystemExit(EXIT_REFUSED) from None
    except UnicodeDecodeError:
        click.echo(f"syncd: {file}: not UTF-8 text; nothing was imported", err=True)
        raise SystemExit(EXIT_REFUSED) from None
    for row in report.rows:
        click.echo(str(row))
    click.echo(report.summary())
    if report.counts["refused"]:
        raise SystemExit(1)


@payments.command("list")
@click.option("--status", type=click.Choice(["applied", "unapplied", "reversed"]))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def payments_list(app: AppContext, status: str | None, as_json: bool) -> None:
    """List payments, newest first, with where their pushes stand."""
    with app.engine.connect() as conn:
        query = select(payments_table).order_by(payments_table.c.id.desc())
        if status:
            query = query.where(payments_table.c.status == status)
        rows = [payment_json(conn, row) for row in conn.execute(query)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no payments")
    for p in rows:
        invoices = ", ".join(a["invoice_number"] for a in p["allocations"]) or (
            p["invoice_number"] or "no invoice"
        )
        pushes = ", ".join(f"{x['connection']} {x['kind']} {x['status']}" for x in p["pushes"])
        click.echo(
            f"{p['id']}: {p['amount']} {p['currency']} {p['status']}, {invoices}, "
            f"received {p['received_at'][:10]}" + (f"; pushes: {pushes}" if pushes else "")
        )


@payments.command("show")
@click.argument("payment_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def payments_show(app: AppContext, payment_id: int, as_json: bool) -> None:
    """Show one payment: its allocations and every push with its state."""
    with app.engine.connect() as conn:
        row = conn.execute(select(payments_table).where(payments_table.c.id == payment_id)).first()
        if row is None:
            raise click.BadParameter(f"no payment {payment_id}", param_hint="PAYMENT_ID")
        p = payment_json(conn, row)
    if as_json:
        click.echo(json.dumps(p, indent=2))
        return
    click.echo(f"payment {p['id']}: {p['amount']} {p['currency']} ({p['method']}), {p['status']}")
    for key in ("reference", "customer", "memo", "hold_reason", "credit", "reversal_reason"):
        if p[key]:
            click.echo(f"  {key.replace('_', ' ')}: {p[key]}")
    click.echo(f"  received {p['received_at']}, fee {p['fee']}")
    for a in p["allocations"]:
        click.echo(f"  invoice {a['invoice_number']}: {a['amount']}")
    if p["payout"]:
        payout = p["payout"]
        name = payout["reference"] or "its own"
        click.echo(f"  paid out in payout {payout['id']} ({name}), fee {payout['fee']}")
    for x in p["pushes"]:
        click.echo("  " + _push_line(x))


def _push_line(x: dict[str, Any]) -> str:
    kind = f"deposit of payout {x['payout_id']}" if x["kind"] == "deposit" else x["kind"]
    line = f"push {x['id']} → {x['connection']} ({kind}): {x['status']}"
    if x["external_id"]:
        line += f", vendor id {x['external_id']}"
    if x["settled_by"] == "marker":
        line += " (found by marker)"
    if x["verified"]:
        line += f", verified {x['verified']}"
    if x["status"] in ("queued", "uncertain") and x["next_attempt_at"]:
        line += f", next attempt {x['next_attempt_at'][:19]}"
    line += f", {x['attempts']} attempt{'' if x['attempts'] == 1 else 's'}, marker {x['marker']}"
    if x["last_error"] and x["status"] != "done":
        line += f"\n      {x['last_error']}"
    return line


@payments.command("reverse")
@click.argument("payment_id", type=int)
@click.option("--reason", required=True, help="Refund, chargeback, … (kept with the payment).")
@click.pass_obj
def payments_reverse(app: AppContext, payment_id: int, reason: str) -> None:
    """Reverse a payment (refund, chargeback): pushes not sent yet are cancelled, pushed ones
    are deleted or voided at the vendor through the outbox (`syncd push`), so the invoice
    balance returns."""
    try:
        done = reverse_payment(app.engine, payment_id, reason, now=_now())
    except PaymentRefused as exc:
        click.echo(f"syncd: {exc}", err=True)
        raise SystemExit(EXIT_REFUSED) from None
    if done.already:
        click.echo(f"payment {payment_id} is already reversed; nothing changed")
        return
    click.echo(f"payment {payment_id} reversed")
    if done.cancelled:
        click.echo(f"  {done.cancelled} push(es) not sent yet: cancelled")
    for name in done.queued:
        click.echo(f"  reversal queued for {name}")


@payments.command("apply")
@click.argument("payment_id", type=int)
@click.option("--invoice", "invoice_number", required=True, help="The invoice it pays.")
@click.pass_obj
def payments_apply(app: AppContext, payment_id: int, invoice_number: str) -> None:
    """Apply a held (unapplied) payment to an invoice a person identified from its memo."""
    try:
        outcome = apply_held(
            app.engine,
            payment_id,
            payment_targets(app.settings),
            now=_now(),
            invoice_number=invoice_number,
            by_person=True,
        )
    except PaymentRefused as exc:
        click.echo(f"syncd: payment {payment_id} not applied: {exc}", err=True)
        raise SystemExit(EXIT_REFUSED) from None
    assert outcome is not None and outcome.applied
    click.echo(f"payment {payment_id} applied to invoice {invoice_number}")
    for p in outcome.pushes:
        click.echo(f"  push to {p.connection}: {p.status}")


# -- payouts -------------------------------------------------------------------------------------


@click.group("payouts")
def payouts_group() -> None:
    """Record what a card processor paid out together, less its fee, so that each payout is
    booked as one deposit where a connection books deposits (QuickBooks Online with
    deposit_bank_account): the payments, and one negative line of the fee on fee_account."""


def _ids(text: str | None) -> tuple[int, ...]:
    parts = [p.strip() for p in (text or "").replace(";", ",").split(",") if p.strip()]
    bad = [p for p in parts if not p.isdigit()]
    if bad:
        raise PayoutRefused(f"{bad[0]!r} is not a payment id (see `syncd payments list`)")
    return tuple(int(p) for p in parts)


@payouts_group.command("record")
@click.option("--reference", required=True, help="The processor's payout id (unique).")
@click.option("--payments", "payment_ids", metavar="ID,ID,…", help="syncd payment ids in it.")
@click.option(
    "--references",
    "payment_references",
    metavar="REF,REF,…",
    help="Or the payments' processor references (ch_…).",
)
@click.option("--fee", required=True, help="Total fee the processor kept, e.g. 8.70.")
@click.option("--paid-at", help="When it reached the bank: ISO 8601 with a zone, or a date.")
@click.option("--memo", help="Free text, added to the deposit's note.")
@click.pass_obj
def payouts_record(
    app: AppContext,
    reference: str,
    payment_ids: str | None,
    payment_references: str | None,
    fee: str,
    paid_at: str | None,
    memo: str | None,
) -> None:
    """Group payments into one payout; the next `syncd push` books its deposit.

    The deposit is the payments (gross) less the fee: it matches what reached the bank.
    Refused (exit 2, nothing stored): a payment already in another payout or already
    deposited on its own, a reversed payment, mixed currencies, a fee not less than the
    payments' total. Recording the same reference again changes nothing.
    """
    now = _now()
    try:
        new = NewPayout(
            reference=reference,
            fee=parse_amount(fee, "fee"),
            paid_at=parse_when(paid_at, now),
            payment_ids=_ids(payment_ids),
            payment_references=tuple(
                r.strip() for r in (payment_references or "").split(",") if r.strip()
            ),
            memo=optional(memo),
        )
        outcome = record_payout(app.engine, new, now=now)
    except (PaymentRefused, PayoutRefused) as exc:
        click.echo(f"syncd: payout refused: {exc}; nothing was stored", err=True)
        raise SystemExit(EXIT_REFUSED) from None
    if isinstance(outcome, PayoutDuplicate):
        click.echo(
            f"already recorded as payout {outcome.payout_id} (reference {outcome.reference}); "
            "nothing changed"
        )
        return
    paid = ", ".join(str(i) for i in outcome.payment_ids)
    click.echo(
        f"recorded payout {outcome.payout_id} ({outcome.reference}): payments {paid}, "
        f"{outcome.amount} - {outcome.fee} fee = {outcome.net} {outcome.currency}"
    )
    if outcome.moved:
        moved = ", ".join(str(i) for i in outcome.moved)
        click.echo(f"  payment(s) {moved} leave the deposit of their own they were waiting for")
    click.echo("  its deposit is booked by `syncd push` where deposits are booked")


@payouts_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def payouts_import(app: AppContext, file: Path) -> None:
    """Record the payouts of a CSV file: one payment of a payout per row.

    \b
    Header (any order; payout required, and payment_id or payment_reference per row):
      payout,payment_id,payment_reference,fee,paid_at,memo
    Rows with the same payout make one payout, whose fee is the sum of the rows' fees;
    paid_at (ISO 8601 with a zone, or a date; default now) must agree among them.
    Each payout is recorded or refused whole. Importing the same file again records
    nothing new. Exit status 1 when any payout was refused.
    """
    try:
        with file.open(encoding="utf-8-sig", newline="") as handle:
            report = import_payouts(app.engine, handle, now=_now())
    except PayoutRefused as exc:
        click.echo(f"syncd: {file}: {exc}; nothing was imported", err=True)
        raise SystemExit(EXIT_REFUSED) from None
    except UnicodeDecodeError:
        click.echo(f"syncd: {file}: not UTF-8 text; nothing was imported", err=True)
        raise SystemExit(EXIT_REFUSED) from None
    for line in report.lines:
        click.echo(line)
    click.echo(report.summary())
    if report.counts["refused"]:
        raise SystemExit(1)


@payouts_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def payouts_list(app: AppContext, as_json: bool) -> None:
    """List payouts, newest first, with their deposits (those syncd made for a single card
    payment have no reference)."""
    with app.engine.connect() as conn:
        rows = [
            payout_json(conn, row)
            for row in conn.execute(select(payouts).order_by(payouts.c.id.desc()))
        ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no payouts")
    for p in rows:
        name = p["reference"] or "own payout of a card payment"
        paid = ", ".join(str(i) for i in p["payments"]) or "none"
        deposits = ", ".join(
            f"{d['connection']} {d['status']}"
            + (f" (id {d['external_id']})" if d["external_id"] else "")
            for d in p["deposits"]
        )
        click.echo(
            f"{p['id']}: {name}: payments {paid}, {p['amount']} - {p['fee']} fee = {p['net']} "
            f"{p['currency']}, paid {p['paid_at'][:10]}"
            + (f"; deposits: {deposits}" if deposits else "")
        )


# -- push ----------------------------------------------------------------------------------------


@click.group(invoke_without_command=True)
@click.option("--limit", type=click.IntRange(min=1), help="Handle at most this many pushes.")
@click.pass_context
def push(ctx: click.Context, limit: int | None) -> None:
    """Push due payments to their target connections once, then exit (`syncd push`), or see
    and handle the outbox (`push list`, `push retry`, `push cancel`).

    Exit status 1 when a push failed, is uncertain, or a connection was skipped.
    """
    if ctx.invoked_subcommand is not None:
        return
    app: AppContext = ctx.obj
    pusher = build_pusher(app.settings, app.engine)
    if pusher is None:
        click.echo("nothing to push to: no enabled connection has receives_payments = true")
        return
    lock = store_lock(app.engine, "syncd push")
    if lock is not None:
        lock.acquire()
    try:
        result = pusher.run_pass(limit=limit)
    finally:
        if lock is not None:
            lock.release()
    click.echo(f"push: {result.summary()}")
    for name, why in sorted(result.flagged.items()):
        click.echo(f"  {name} skipped: {why}")
    if not result.ok:
        raise SystemExit(1)


@push.command("list")
@click.option("--status", type=click.Choice(PUSH_STATUSES), help="Only pushes in this state.")
@click.option("--all", "show_all", is_flag=True, help="Include done and cancelled pushes.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def push_list(app: AppContext, status: str | None, show_all: bool, as_json: bool) -> None:
    """List the outbox: by default every push not done or cancelled, oldest first."""
    query = select(payment_pushes).order_by(payment_pushes.c.id)
    if status:
        query = query.where(payment_pushes.c.status == status)
    elif not show_all:
        query = query.where(payment_pushes.c.status.not_in(("done", "cancelled")))
    with app.engine.connect() as conn:
        rows = [push_json(p) for p in conn.execute(query)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no pushes" if status or show_all else "no pending pushes")
    for x in rows:
        click.echo(f"{x['id']} (payment {x['payment_id']}): " + _push_line(x).split(": ", 1)[1])


@push.command("retry")
@click.argument("push_id", type=int)
@click.pass_obj
def push_retry(app: AppContext, push_id: int) -> None:
    """Make a push due now (a dead one restarts with a search for its marker)."""
    try:
        status = retry_push(app.engine, push_id, now=_now())
    except PushRefused as exc:
        click.echo(f"syncd: {exc}", err=True)
        raise SystemExit(EXIT_REFUSED) from None
    click.echo(f"push {push_id} is {status} and due now: run `syncd push`")


@push.command("cancel")
@click.argument("push_id", type=int)
@click.option("--reason", default="cancelled by a person", help="Kept with the push.")
@click.pass_obj
def push_cancel(app: AppContext, push_id: int, reason: str) -> None:
    """Never send this push (refused while it may already have reached the vendor)."""
    try:
        cancel_push(app.engine, push_id, now=_now(), reason=reason)
    except PushRefused as exc:
        click.echo(f"syncd: {exc}", err=True)
        raise SystemExit(EXIT_REFUSED) from None
    click.echo(f"push {push_id} cancelled")
