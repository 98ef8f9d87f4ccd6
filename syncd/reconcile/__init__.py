"""Reconciliation: pure functions from stored rows and incoming records to plans of change."""

from syncd.reconcile.plan import Change, Plan, StoredRow, content_hash, plan_page

__all__ = ["Change", "Plan", "StoredRow", "content_hash", "plan_page"]
