"""Nonce stores: per checksummed address, strictly increasing, checked and consumed atomically.

``consume`` is the only write path: it compares and stores in one transaction,
so of several concurrent requests with the same nonce exactly one wins.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Protocol

from eth_utils.address import to_checksum_address

from ocean_provider.errors import NonceReused, ValidationFailed

INITIAL_NONCE = Decimal(1)
WAL_ATTEMPTS = 100
MAX_NONCE_TEXT = 80
MIN_NONCE_EXPONENT, MAX_NONCE_EXPONENT = -30, 40  # nanosecond clocks are near 1e18


def parse_nonce(value: object) -> Decimal:
    """Accept ints, digit strings and decimal strings; refuse the rest with a field error."""
    if isinstance(value, bool) or value is None:
        raise ValidationFailed({"nonce": ["The nonce must be a number."]})
    text = str(value).strip()
    if len(text) > MAX_NONCE_TEXT:
        raise ValidationFailed({"nonce": ["The nonce is too long."]})
    try:
        nonce = Decimal(text)
    except InvalidOperation:
        raise ValidationFailed({"nonce": ["The nonce must be a number."]}) from None
    if not nonce.is_finite() or nonce < 0:
        raise ValidationFailed({"nonce": ["The nonce must be a non-negative number."]})
    if nonce and not MIN_NONCE_EXPONENT <= nonce.adjusted() <= MAX_NONCE_EXPONENT:
        # 1e999999999 is short to send but costly to print, compare and store
        raise ValidationFailed({"nonce": ["The nonce is out of range."]})
    return nonce


def nonce_text(nonce: Decimal) -> str:
    """Canonical text of a stored nonce (``1`` not ``1E+0``)."""
    return format(nonce.normalize(), "f") if nonce != nonce.to_integral() else str(int(nonce))


class NonceStore(Protocol):
    def current(self, address: str) -> Decimal | None:
        """The last accepted nonce of ``address``, or None."""

    def consume(self, address: str, nonce: Decimal) -> None:
        """Accept ``nonce`` if strictly greater than the stored one, else raise NonceReused."""

    def ensure_initial(self, address: str) -> Decimal:
        """Return the stored nonce, storing ``1`` first if there is none (GET /nonce)."""


class SqliteNonceStore:
    """SQLite-backed store; safe across threads and processes (BEGIN IMMEDIATE)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = threading.local()
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._transaction() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS user_nonce "
                "(address TEXT PRIMARY KEY, nonce TEXT NOT NULL)"
            )

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self._path, timeout=30, isolation_level=None)
            _use_wal(db)
            self._local.db = db
        return db

    def _transaction(self) -> _Transaction:
        return _Transaction(self._connection())

    def current(self, address: str) -> Decimal | None:
        row = (
            self._connection()
            .execute("SELECT nonce FROM user_nonce WHERE address = ?", (_key(address),))
            .fetchone()
        )
        return Decimal(row[0]) if row else None

    def consume(self, address: str, nonce: Decimal) -> None:
        key = _key(address)
        with self._transaction() as db:
            row = db.execute("SELECT nonce FROM user_nonce WHERE address = ?", (key,)).fetchone()
            if row is not None and nonce <= Decimal(row[0]):
                raise NonceReused(row[0], nonce_text(nonce))
            db.execute(
                "INSERT INTO user_nonce (address, nonce) VALUES (?, ?) "
                "ON CONFLICT(address) DO UPDATE SET nonce = excluded.nonce",
                (key, nonce_text(nonce)),
            )

    def ensure_initial(self, address: str) -> Decimal:
        key = _key(address)
        with self._transaction() as db:
            row = db.execute("SELECT nonce FROM user_nonce WHERE address = ?", (key,)).fetchone()
            if row is not None:
                return Decimal(row[0])
            db.execute(
                "INSERT INTO user_nonce (address, nonce) VALUES (?, ?)",
                (key, nonce_text(INITIAL_NONCE)),
            )
            return INITIAL_NONCE


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


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


class RedisNonceStore:
    """Redis-backed store for several Provider processes; WATCH/MULTI makes consume atomic."""

    def __init__(self, client: Any, prefix: str = "ocean_provider:nonce:") -> None:
        self._redis = client
        self._prefix = prefix

    def current(self, address: str) -> Decimal | None:
        value = self._redis.get(self._prefix + _key(address))
        return Decimal(value.decode()) if value is not None else None

    def consume(self, address: str, nonce: Decimal) -> None:
        from redis.exceptions import WatchError

        key = self._prefix + _key(address)
        while True:
            with self._redis.pipeline() as pipe:
                try:
                    pipe.watch(key)
                    stored = pipe.get(key)
                    if stored is not None and nonce <= Decimal(stored.decode()):
                        raise NonceReused(stored.decode(), nonce_text(nonce))
                    pipe.multi()
                    pipe.set(key, nonce_text(nonce))
                    pipe.execute()
                    return
                except WatchError:
                    continue

    def ensure_initial(self, address: str) -> Decimal:
        key = self._prefix + _key(address)
        self._redis.set(key, nonce_text(INITIAL_NONCE), nx=True)
        value = self._redis.get(key)
        return Decimal(value.decode())


def _key(address: str) -> str:
    return str(to_checksum_address(address))
