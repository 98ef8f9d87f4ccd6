"""Payments: the ledger, allocation to invoices, the outbox and the exactly-once pusher.

- ``allocation``: pure decisions (which invoice, partial, over, credit, held, refused);
- ``ledger``: record a payment and queue its pushes in one transaction; reversals; held payments;
- ``keys``: the deterministic idempotency key and marker of each push;
- ``outbox``: claiming pushes (one, or a batch of fresh ones) under a lease, outcomes, retry and
  cancel;
- ``payouts``: card payouts and the deposits that book them with their fee;
- ``pusher``: the state machine that calls the connectors;
- ``verify``: after a pull, apply held payments and check that pushes show in the balances;
- ``csv_import`` and ``inputs``: the ways in from text (payments and payouts).

docs/payments.md tells the whole story.
"""
