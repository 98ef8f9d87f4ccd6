"""``GET /status``: the same report as ``syncd status --json`` (``syncd.status.build_status``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from syncd.api.auth import token_if_configured
from syncd.api.context import Context
from syncd.status import StatusReport, build_status

router = APIRouter(tags=["status"], dependencies=[Depends(token_if_configured)])


@router.get("/status", summary="Per connection and stream: last run, last success, lag, next run")
def get_status(
    context: Context,
    connection: Annotated[
        list[str] | None, Query(description="Only this connection (repeatable).")
    ] = None,
) -> StatusReport:
    """What synced when and what needs a person. Needs the bearer token when one is configured."""
    return build_status(context.engine, context.settings, connection or [], context.clock.now())
