"""Nonce stores: per checksummed address, strictly increasing, checked and consumed atomically.

``consume`` is the only write path: in one transaction it compares the nonce
with the stored one, records the digest of the signed message and stores the
nonce, so of several concurrent requests with the same nonce exactly one wins,
and a signed message is accepted once, whatever route or nonce it is read as
(messages are concatenations without separators, so one text can be read as
another route's message with another nonce).

Nonces are ASCII decimal numbers, kept exactly: the stored text is the value
itself, never a rounded float or a 28-digit ``Decimal`` context result.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from ocean_provider.auth.addresses import checksum_address
from ocean_provider.errors import NonceReused, SignatureReused, StoreUnavailable, ValidationFailed

log = logging.getLogger(__name__)

INITIAL_NONCE = Decimal(1)
WAL_ATTEMPTS = 100
MAX_NONCE_TEXT = 80
NONCE_PATTERN = re.compile(r"([0-9]+)(?:\.([0-9]+))?", re.ASCII)


def parse_nonce(value: object) -> Decimal:
    """Accept non-negative ints and ASCII decimal text (``12``, ``1644315615.24``); refuse
    the rest (signs, exponents, ``_``, whitespace, non-ASCII digits) with a field error."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValidationFailed({"nonce": ["The nonce must be a number."]})
    text = str(value)
    if len(text) > MAX_NONCE_TEXT:
        raise ValidationFailed(
            {"nonce": [f"The nonce is too long (at most {MAX_NONCE_TEXT} characters)."]}
        )
    if NONCE_PATTERN.fullmatch(text) is None:
        raise ValidationFailed(
            {"nonce": ["The nonce must be a non-negative decimal number in ASCII digits."]}
        )
    return Decimal(text)  # exact: the constructor never rounds


def nonce_text(nonce: Decimal) -> str:
    """Canonical, exact text of a nonce (``7`` for ``007``, ``5.5`` for ``5.50``)."""
    whole, _, fraction = format(nonce, "f").partition(".")
    whole = whole.lstrip("0") or "0"
    fraction = fraction.rstrip("0")
    return f"{whole}.{fraction}" if fraction else whole


class NonceStore(Protocol):
    def current(self, address: str) -> Decimal | None:
        """The last accepted nonce of ``address``, or None."""

    def consume(
        self, address: str, nonce: Decimal, digest: bytes, *, reusable: bool = False
    ) -> None:
        """Accept ``nonce`` if strictly greater than the stored one (else ``NonceReused``)
        and ``digest`` if no message with it was accepted before (else ``SignatureReused``),
        unless the message is ``reusable`` (it does not cover the nonce: ocean.js's stop)."""

    def ensure_initial(self, address: str) -> Decimal:
        """Return the stored nonce, storing ``1`` first if there is none (GET /nonce)."""


class SqliteNonceStore:
    """SQLite-backed store; safe across threads and processes (BEGIN IMMEDIATE).

    Each thread has its own connection, opened in the process that uses it: a
    connection that fails is closed and replaced, and one inherited through
    ``fork`` is left alone (closing it would drop this process's locks).
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = threading.local()
        self._inherited: list[sqlite3.Connection] = []
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._transaction() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS user_nonce "
                "(address TEXT PRIMARY KEY, nonce TEXT NOT NULL)"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS used_message "
                "(digest BLOB PRIMARY KEY, address TEXT NOT NULL) WITHOUT ROWID"
            )

    def _connection(self) -> sqlite3.Connection:
        held: tuple[int, sqlite3.Connection] | None = getattr(self._local, "db", None)
        if held is not None and held[0] == os.getpid():
            return held[1]
        if held is not None:
            self._inherited.append(held[1])  # never closed here: see the class docstring
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

    def _discard(self) -> None:
        held: tuple[int, sqlite3.Connection] | None = getattr(self._local, "db", None)
        self._local.db = None
        if held is not None and held[0] == os.getpid():
            try:
                held[1].close()
            except sqlite3.Error:
                pass

    def _transaction(self, begin: str = "BEGIN IMMEDIATE") -> _Transaction:
        return _Transaction(self, begin)

    def current(self, address: str) -> Decimal | None:
        with self._transaction("BEGIN") as db:
            return _stored(db, _key(address))

    def consume(
        self, address: str, nonce: Decimal, digest: bytes, *, reusable: bool = False
    ) -> None:
        key = _key(address)
        with self._transaction() as db:
            stored = _stored(db, key)
            if stored is not None and nonce <= stored:
                raise NonceReused(nonce_text(stored), nonce_text(nonce))
            inserted = db.execute(
                "INSERT INTO used_message (digest, address) VALUES (?, ?) "
                "ON CONFLICT(digest) DO NOTHING",
                (digest, key),
            ).rowcount
            if inserted != 1 and not reusable:
                raise SignatureReused()
            db.execute(
                "INSERT INTO user_nonce (address, nonce) VALUES (?, ?) "
                "ON CONFLICT(address) DO UPDATE SET nonce = excluded.nonce",
                (key, nonce_text(nonce)),
            )

    def ensure_initial(self, address: str) -> Decimal:
        key = _key(address)
        with self._transaction() as db:
            stored = _stored(db, key)
            if stored is not None:
                return stored
            db.execute(
                "INSERT INTO user_nonce (address, nonce) VALUES (?, ?)",
                (key, nonce_text(INITIAL_NONCE)),
            )
            return INITIAL_NONCE


def _stored(db: sqlite3.Connection, key: str) -> Decimal | None:
    row = db.execute("SELECT nonce FROM user_nonce WHERE address = ?", (key,)).fetchone()
    return Decimal(row[0]) if row else None


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
    """BEGIN ... COMMIT on this thread's connection, rolled back on any exception.

    A SQLite failure (busy past the timeout, an I/O error) discards the
    connection, so the next request opens a fresh one, and becomes
    ``StoreUnavailable`` (503) instead of a 500 that repeats until a restart.
    """

    def __init__(self, store: SqliteNonceStore, begin: str) -> None:
        self._store = store
        self._begin = begin

    def __enter__(self) -> sqlite3.Connection:
        try:
            self._db = self._store._connection()
            self._db.execute(self._begin)
        except sqlite3.Error as exc:
            self._store._discard()
            raise _unavailable(exc) from None
        return self._db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        failure = exc if isinstance(exc, sqlite3.Error) else None
        try:
            self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        except sqlite3.Error as end_failure:
            failure = failure or end_failure
            self._store._discard()  # e.g. "cannot rollback - no transaction is active"
        if failure is not None:
            self._store._discard()
            raise _unavailable(failure) from None
        # any other exception of the caller (NonceReused, ...) goes on unchanged


def _unavailable(exc: BaseException) -> StoreUnavailable:
    log.error("nonce store failed: %s: %s", type(exc).__name__, exc)
    return StoreUnavailable("the nonce store is unavailable; try again shortly")


# Compare-and-store in one round trip: Redis runs a script atomically. Nonces are
# compared as canonical decimal text (Lua's numbers are doubles: 19 digits do not fit).
CONSUME_SCRIPT = """
local function compare(a, b)
  local a_int, a_frac = string.match(a, "^(%d+)%.?(%d*)$")
  local b_int, b_frac = string.match(b, "^(%d+)%.?(%d*)$")
  if #a_int ~= #b_int then return #a_int < #b_int and -1 or 1 end
  if a_int ~= b_int then return a_int < b_int and -1 or 1 end
  local width = math.max(#a_frac, #b_frac)
  a_frac = a_frac .. string.rep("0", width - #a_frac)
  b_frac = b_frac .. string.rep("0", width - #b_frac)
  if a_frac == b_frac then return 0 end
  return a_frac < b_frac and -1 or 1
end
local stored = redis.call("GET", KEYS[1])
if stored and compare(ARGV[1], stored) <= 0 then return {"nonce", stored} end
if ARGV[3] ~= "reusable" and redis.call("EXISTS", KEYS[2]) == 1 then return {"message"} end
redis.call("SET", KEYS[1], ARGV[1])
redis.call("SET", KEYS[2], ARGV[2])
return {"ok"}
"""


class RedisNonceStore:
    """Redis-backed store for several Provider processes; one script makes consume atomic."""

    def __init__(self, client: Any, prefix: str = "ocean_provider:") -> None:
        self._redis = client
        self._nonce_prefix = prefix + "nonce:"
        self._message_prefix = prefix + "msg:"
        self._consume = client.register_script(CONSUME_SCRIPT)

    def current(self, address: str) -> Decimal | None:
        with _redis_errors():
            value = self._redis.get(self._nonce_prefix + _key(address))
        return Decimal(value.decode()) if value is not None else None

    def consume(
        self, address: str, nonce: Decimal, digest: bytes, *, reusable: bool = False
    ) -> None:
        key = _key(address)
        keys = [self._nonce_prefix + key, self._message_prefix + digest.hex()]
        args = [nonce_text(nonce), key, "reusable" if reusable else "once"]
        with _redis_errors():
            outcome = self._consume(keys=keys, args=args)
        verdict = outcome[0].decode()
        if verdict == "nonce":
            raise NonceReused(outcome[1].decode(), nonce_text(nonce))
        if verdict == "message":
            raise SignatureReused()

    def ensure_initial(self, address: str) -> Decimal:
        key = self._nonce_prefix + _key(address)
        with _redis_errors():
            self._redis.set(key, nonce_text(INITIAL_NONCE), nx=True)
            value = self._redis.get(key)
        return Decimal(value.decode())


@contextmanager
def _redis_errors() -> Iterator[None]:
    """Turn a Redis that is down or failing into ``StoreUnavailable`` (503)."""
    from redis.exceptions import RedisError

    try:
        yield
    except RedisError as exc:
        raise _unavailable(exc) from None


def _key(address: str) -> str:
    return checksum_address(address)
