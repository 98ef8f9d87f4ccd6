"""The store: tables, migrations, and the queries the engine, payments and CLI need."""

from syncd.store.engine import create_store_engine, open_store
from syncd.store.lock import ProcessLock, store_lock

__all__ = ["ProcessLock", "create_store_engine", "open_store", "store_lock"]
