"""The sync engine: pull passes, cursors, run history."""

from syncd.sync.engine import PullResult, pull_stream, streams_of, sync_connection

__all__ = ["PullResult", "pull_stream", "streams_of", "sync_connection"]
