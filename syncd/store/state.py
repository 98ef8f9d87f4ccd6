"""Sync cursors and run history: the bookkeeping that moves in the same transaction as the rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Connection

from syncd.store.tables import connections, sync_runs, sync_state


@dataclass(frozen=True)
class StreamState:
    """The stored cursor of one (connection, stream)."""

    watermark: dt.datetime | None = None
    position: str | None = None
    pass_since: dt.datetime | None = None
    pass_high: dt.datetime | None = None
    pass_started_at: dt.datetime | None = None
    last_complete_at: dt.datetime | None = None

    @property
    def in_pass(self) -> bool:
        """True when a pass was interrupted and can resume where it stopped."""
        return self.pass_started_at is not None

    def seen(self, high: dt.datetime | None) -> StreamState:
        if high is None or (self.pass_high is not None and self.pass_high >= high):
            return self
        return replace(self, pass_high=high)


def ensure_connection(conn: Connection, name: str, connector: str, now: dt.datetime) -> None:
    exists = conn.execute(select(connections.c.name).where(connections.c.name == name)).first()
    if exists is None:
        conn.execute(insert(connections).values(name=name, connector=connector, created_at=now))


def load_state(conn: Connection, connection: str, stream: str) -> StreamState:
    row = conn.execute(
        select(sync_state).where(
            and_(sync_state.c.connection == connection, sync_state.c.stream == stream)
        )
    ).first()
    if row is None:
        return StreamState()
    return StreamState(
        watermark=row.watermark,
        position=row.position,
        pass_since=row.pass_since,
        pass_high=row.pass_high,
        pass_started_at=row.pass_started_at,
        last_complete_at=row.last_complete_at,
    )


def save_state(
    conn: Connection, connection: str, stream: str, state: StreamState, now: dt.datetime
) -> None:
    values = {
        "watermark": state.watermark,
        "position": state.position,
        "pass_since": state.pass_since,
        "pass_high": state.pass_high,
        "pass_started_at": state.pass_started_at,
        "last_complete_at": state.last_complete_at,
        "updated_at": now,
    }
    done = conn.execute(
        update(sync_state)
        .where(and_(sync_state.c.connection == connection, sync_state.c.stream == stream))
        .values(values)
    )
    if done.rowcount == 0:
        conn.execute(insert(sync_state).values(connection=connection, stream=stream, **values))


def start_run(conn: Connection, run_id: str, connection: str, stream: str, now: dt.datetime) -> int:
    # A run left 'running' by a process that died can never finish: say so in its history.
    conn.execute(
        update(sync_runs)
        .where(
            and_(
                sync_runs.c.connection == connection,
                sync_runs.c.stream == stream,
                sync_runs.c.status == "running",
            )
        )
        .values(status="interrupted", finished_at=now)
    )
    result = conn.execute(
        insert(sync_runs).values(
            run_id=run_id,
            connection=connection,
            stream=stream,
            status="running",
            started_at=now,
            pages=0,
            created=0,
            updated=0,
            unchanged=0,
            voided=0,
            deleted=0,
            quarantined=0,
            requests=0,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def add_to_run(conn: Connection, row_id: int, counts: dict[str, int]) -> None:
    conn.execute(
        update(sync_runs)
        .where(sync_runs.c.id == row_id)
        .values({name: getattr(sync_runs.c, name) + value for name, value in counts.items()})
    )


def finish_run(
    conn: Connection, row_id: int, status: str, now: dt.datetime, error: str | None = None
) -> None:
    conn.execute(
        update(sync_runs)
        .where(sync_runs.c.id == row_id)
        .values(status=status, finished_at=now, error=error)
    )
