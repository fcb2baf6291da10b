"""The order ledger: each paid order (a ``transferTxId`` on a chain) starts at most one job.

A job start claims its orders first, all or none, in one atomic step shared by
every worker process and kept across restarts; if the engine then refuses or
fails, the caller releases the claim so the order can be used again. Once the
job started, its id is attached to the orders, and a release no longer frees
them.

Orders are keyed by (chain id, transaction hash); hashes are ``0x`` and 64 hex
digits, compared and stored lowercased.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from ocean_provider.auth.nonces import redis_errors
from ocean_provider.auth.sqlite_db import SqliteDatabase

STORE_NAME = "order ledger"  # what its failures are logged and reported as
TX_ID_PATTERN = re.compile(r"0x[0-9a-f]{64}", re.ASCII)


class OrderLedger(Protocol):
    def claim(self, chain_id: int, tx_ids: Sequence[str], owner: str) -> list[str]:
        """Record every tx id as used by ``owner``, all or none, atomically.
        Returns the tx ids that were already used (lowercased; then nothing is recorded);
        [] on success."""

    def release(self, chain_id: int, tx_ids: Sequence[str]) -> None:
        """Undo a claim whose job did not start (the engine call failed); an order with a
        job attached stays used."""

    def attach(self, chain_id: int, tx_ids: Sequence[str], job_id: str) -> None:
        """Note the started job's id next to its orders (for operators and logs)."""


def _tx_keys(tx_ids: Sequence[str]) -> list[str]:
    """The tx ids lowercased, each once, in their first order; ``ValueError`` for one that
    is not a transaction hash (request models check the shape before this)."""
    keys: list[str] = []
    for tx_id in tx_ids:
        key = tx_id.lower()
        if TX_ID_PATTERN.fullmatch(key) is None:
            raise ValueError(f"not a transaction hash: {tx_id[:80]!r}")
        if key not in keys:
            keys.append(key)
    return keys


class SqliteOrderLedger:
    """SQLite-backed ledger (the nonce store's database file will do); a claim is one
    ``BEGIN IMMEDIATE`` transaction, so workers claiming the same order queue on it."""

    def __init__(self, path: Path) -> None:
        self._db = SqliteDatabase(path, STORE_NAME)
        with self._db.transaction() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS used_order ("
                "chain_id INTEGER NOT NULL, tx_id TEXT NOT NULL, owner TEXT NOT NULL, "
                "job_id TEXT, claimed_at INTEGER NOT NULL, "  # unix seconds
                "PRIMARY KEY (chain_id, tx_id)) WITHOUT ROWID"
            )

    def claim(self, chain_id: int, tx_ids: Sequence[str], owner: str) -> list[str]:
        keys = _tx_keys(tx_ids)
        with self._db.transaction() as db:
            used = [
                key
                for key in keys
                if db.execute(
                    "SELECT 1 FROM used_order WHERE chain_id = ? AND tx_id = ?", (chain_id, key)
                ).fetchone()
            ]
            if not used:
                claimed_at = int(time.time())
                db.executemany(
                    "INSERT INTO used_order (chain_id, tx_id, owner, claimed_at) "
                    "VALUES (?, ?, ?, ?)",
                    [(chain_id, key, owner, claimed_at) for key in keys],
                )
        return used

    def release(self, chain_id: int, tx_ids: Sequence[str]) -> None:
        keys = _tx_keys(tx_ids)
        with self._db.transaction() as db:
            db.executemany(
                "DELETE FROM used_order WHERE chain_id = ? AND tx_id = ? AND job_id IS NULL",
                [(chain_id, key) for key in keys],
            )

    def attach(self, chain_id: int, tx_ids: Sequence[str], job_id: str) -> None:
        keys = _tx_keys(tx_ids)
        with self._db.transaction() as db:
            db.executemany(
                "UPDATE used_order SET job_id = ? WHERE chain_id = ? AND tx_id = ?",
                [(job_id, chain_id, key) for key in keys],
            )


# Each order is a hash (owner, claimed_at, job_id) under its own key, never expiring.
# Redis runs each script atomically: a claim checks every key, then sets all or none.
CLAIM_SCRIPT = """
local used = {}
for i, key in ipairs(KEYS) do
  if redis.call("EXISTS", key) == 1 then used[#used + 1] = i end
end
if #used > 0 then return used end
for _, key in ipairs(KEYS) do
  redis.call("HSET", key, "owner", ARGV[1], "claimed_at", ARGV[2])
end
return used
"""
RELEASE_SCRIPT = """
for _, key in ipairs(KEYS) do
  if redis.call("HEXISTS", key, "job_id") == 0 then redis.call("DEL", key) end
end
"""
ATTACH_SCRIPT = """
for _, key in ipairs(KEYS) do
  if redis.call("EXISTS", key) == 1 then redis.call("HSET", key, "job_id", ARGV[1]) end
end
"""


class RedisOrderLedger:
    """Redis-backed ledger for several Provider processes or hosts sharing one Redis."""

    def __init__(self, client: Any, prefix: str = "ocean_provider:") -> None:
        self._prefix = prefix + "order:"
        self._claim = client.register_script(CLAIM_SCRIPT)
        self._release = client.register_script(RELEASE_SCRIPT)
        self._attach = client.register_script(ATTACH_SCRIPT)

    def _keys(self, chain_id: int, keys: list[str]) -> list[str]:
        return [f"{self._prefix}{chain_id}:{key}" for key in keys]

    def claim(self, chain_id: int, tx_ids: Sequence[str], owner: str) -> list[str]:
        keys = _tx_keys(tx_ids)
        if not keys:
            return []
        with redis_errors(STORE_NAME):
            used = self._claim(keys=self._keys(chain_id, keys), args=[owner, int(time.time())])
        return [keys[index - 1] for index in used]  # Lua counts from 1

    def release(self, chain_id: int, tx_ids: Sequence[str]) -> None:
        keys = _tx_keys(tx_ids)
        if keys:
            with redis_errors(STORE_NAME):
                self._release(keys=self._keys(chain_id, keys))

    def attach(self, chain_id: int, tx_ids: Sequence[str], job_id: str) -> None:
        keys = _tx_keys(tx_ids)
        if keys:
            with redis_errors(STORE_NAME):
                self._attach(keys=self._keys(chain_id, keys), args=[job_id])
