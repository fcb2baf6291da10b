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

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from ocean_provider.auth.addresses import checksum_address
from ocean_provider.auth.sqlite_db import SqliteDatabase, store_unavailable
from ocean_provider.errors import NonceReused, SignatureReused, ValidationFailed

STORE_NAME = "nonce store"  # what its failures are logged and reported as
INITIAL_NONCE = Decimal(1)
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

    Its connections are ``SqliteDatabase``'s: one per thread, reopened after a
    failure, never reusing one inherited through ``fork``.
    """

    def __init__(self, path: Path) -> None:
        self._db = SqliteDatabase(path, STORE_NAME)
        with self._db.transaction() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS user_nonce "
                "(address TEXT PRIMARY KEY, nonce TEXT NOT NULL)"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS used_message "
                "(digest BLOB PRIMARY KEY, address TEXT NOT NULL) WITHOUT ROWID"
            )

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection (tests set pragmas on it and check it after ``fork``)."""
        return self._db.connection()

    def current(self, address: str) -> Decimal | None:
        with self._db.transaction("BEGIN") as db:
            return _stored(db, _key(address))

    def consume(
        self, address: str, nonce: Decimal, digest: bytes, *, reusable: bool = False
    ) -> None:
        key = _key(address)
        with self._db.transaction() as db:
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
        with self._db.transaction() as db:
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
        with redis_errors(STORE_NAME):
            value = self._redis.get(self._nonce_prefix + _key(address))
        return Decimal(value.decode()) if value is not None else None

    def consume(
        self, address: str, nonce: Decimal, digest: bytes, *, reusable: bool = False
    ) -> None:
        key = _key(address)
        keys = [self._nonce_prefix + key, self._message_prefix + digest.hex()]
        args = [nonce_text(nonce), key, "reusable" if reusable else "once"]
        with redis_errors(STORE_NAME):
            outcome = self._consume(keys=keys, args=args)
        verdict = outcome[0].decode()
        if verdict == "nonce":
            raise NonceReused(outcome[1].decode(), nonce_text(nonce))
        if verdict == "message":
            raise SignatureReused()

    def ensure_initial(self, address: str) -> Decimal:
        key = self._nonce_prefix + _key(address)
        with redis_errors(STORE_NAME):
            self._redis.set(key, nonce_text(INITIAL_NONCE), nx=True)
            value = self._redis.get(key)
        return Decimal(value.decode())


@contextmanager
def redis_errors(name: str) -> Iterator[None]:
    """Turn a Redis that is down or failing into ``StoreUnavailable`` (503) of the store
    ``name`` (the order ledger's Redis store uses it too)."""
    from redis.exceptions import RedisError

    try:
        yield
    except RedisError as exc:
        raise store_unavailable(name, exc) from None


def _key(address: str) -> str:
    return checksum_address(address)
