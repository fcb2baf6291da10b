"""One SQLite file shared by the threads and worker processes of the Provider's stores.

Each thread has its own connection, opened in the process that uses it: a
connection that fails is closed and replaced, and one inherited through
``fork`` is left alone (closing it would drop this process's locks). Work runs
in transactions that turn SQLite failures into ``StoreUnavailable`` (503).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

from ocean_provider.errors import StoreUnavailable

log = logging.getLogger(__name__)

WAL_ATTEMPTS = 100


class SqliteDatabase:
    """Per-thread, fork-aware connections to ``path`` in WAL mode, for the store ``name``
    (``"nonce store"``, ``"order ledger"``: the name its failures are logged and reported as).
    """

    def __init__(self, path: Path, name: str) -> None:
        self.name = name
        self._path = path
        self._local = threading.local()
        self._inherited: list[sqlite3.Connection] = []
        path.parent.mkdir(parents=True, exist_ok=True)

    def connection(self) -> sqlite3.Connection:
        held: tuple[int, sqlite3.Connection] | None = getattr(self._local, "db", None)
        if held is not None and held[0] == os.getpid():
            return held[1]
        if held is not None:
            self._inherited.append(held[1])  # never closed here: see the module docstring
        db = sqlite3.connect(self._path, timeout=30, isolation_level=None)
        try:
            _use_wal(db)
            # WAL at NORMAL: a commit survives a crash of the process, and is synced at
            # checkpoints rather than on every request
            db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error:
            db.close()
            raise
        self._local.db = (os.getpid(), db)
        return db

    def discard(self) -> None:
        """Close this thread's connection (if this process opened it); the next use reopens."""
        held: tuple[int, sqlite3.Connection] | None = getattr(self._local, "db", None)
        self._local.db = None
        if held is not None and held[0] == os.getpid():
            try:
                held[1].close()
            except sqlite3.Error:
                pass

    def transaction(self, begin: str = "BEGIN IMMEDIATE") -> Transaction:
        return Transaction(self, begin)


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch to WAL. The switch takes an exclusive lock without waiting on busy
    connections, so workers opening a new database together retry it briefly."""
    for attempt in range(WAL_ATTEMPTS):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if attempt == WAL_ATTEMPTS - 1:
                raise
            time.sleep(0.05)


class Transaction:
    """BEGIN ... COMMIT on this thread's connection, rolled back on any exception.

    A SQLite failure (busy past the timeout, an I/O error) discards the
    connection, so the next request opens a fresh one, and becomes
    ``StoreUnavailable`` (503) instead of a 500 that repeats until a restart.
    """

    def __init__(self, database: SqliteDatabase, begin: str) -> None:
        self._database = database
        self._begin = begin

    def __enter__(self) -> sqlite3.Connection:
        try:
            self._db = self._database.connection()
            self._db.execute(self._begin)
        except sqlite3.Error as exc:
            self._database.discard()
            raise store_unavailable(self._database.name, exc) from None
        return self._db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        failure = exc if isinstance(exc, sqlite3.Error) else None
        try:
            self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        except sqlite3.Error as end_failure:
            failure = failure or end_failure
            self._database.discard()  # e.g. "cannot rollback - no transaction is active"
        if failure is not None:
            self._database.discard()
            raise store_unavailable(self._database.name, failure) from None
        # any other exception of the caller (NonceReused, ...) goes on unchanged


def store_unavailable(name: str, exc: BaseException) -> StoreUnavailable:
    """Log why the store ``name`` failed; the reply says only that it is unavailable."""
    log.error("%s failed: %s: %s", name, type(exc).__name__, exc)
    return StoreUnavailable(f"the {name} is unavailable; try again shortly")
