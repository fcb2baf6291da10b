"""DIDs, and the index that finds the data NFT a DID names.

A DID is ``did:op:`` + sha256(checksummed NFT address + chain id) in hex, so the
NFT of a DID is found only by listing the NFTs. ``NftIndex`` lists them from
the chain, as Aquarius does: ``eth_getLogs`` over bounded block ranges with
the topics of ``NFTCreated`` and ``TokenCreated`` (kept only when the
configured ERC721Factory emitted them) and of the metadata events
(``MetadataCreated``, ``MetadataUpdated``, ``MetadataState``,
``TokenURIUpdate``, kept only from NFTs that factory created). Per NFT it
keeps its DID, name, symbol, tokenURI, metadata state and where its latest
metadata event is; per datatoken, its NFT, name and symbol.

Scans are incremental and persisted (SQLite), shared by workers and restarts;
each re-reads the last ``reorg_margin`` blocks. A chain reset under the same
addresses (a restarted anvil) is noticed by the factory block's hash, and the
chain's index starts over. One scan per chain runs at a time in a process.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from eth_utils.address import to_checksum_address

from ocean_provider.auth.sqlite_db import SqliteDatabase
from ocean_provider.chain.events import EventSpec, event
from ocean_provider.chain.jsonrpc import (
    MalformedReply,
    RpcCall,
    RpcError,
    hex_int,
    parse_logs,
    rpc_batch,
)
from ocean_provider.chain.rpc import Chains
from ocean_provider.errors import ChainUnavailable, ComputeRefused

log = logging.getLogger(__name__)

DID_PATTERN = re.compile(r"did:op:[0-9a-f]{64}", re.ASCII)
RESOURCE = "dataset"  # what a refusal names, as the compute service's callers expect
STORE_NAME = "DDO index"
FRESH_SECONDS = 30.0  # a scan this soon after the last one reads up to "latest" in one call
_LOG_INDEX_BITS = 20  # an event's key: block number << 20 | log index


def did_for(nft: str, chain_id: int) -> str:
    """The DID of the data NFT ``nft`` on ``chain_id``."""
    text = to_checksum_address(nft) + str(chain_id)
    return "did:op:" + hashlib.sha256(text.encode()).hexdigest()


def unknown_did(did: str, why: str) -> ComputeRefused:
    return ComputeRefused(RESOURCE, "did_not_found", f"{did[:80]} {why}")


def event_key(block: int, log_index: int) -> int:
    """Orders events: later events have larger keys."""
    return block << _LOG_INDEX_BITS | log_index


@dataclass(frozen=True)
class Factory:
    """Where a chain's assets come from: the ERC721Factory and the block it was deployed in."""

    address: str
    start_block: int


@dataclass(frozen=True)
class IndexedNft:
    chain_id: int
    did: str
    address: str  # checksummed
    name: str
    symbol: str
    token_uri: str
    state: int  # the latest MetadataCreated/Updated/State event's; 0 before any
    metadata_key: int | None  # event_key of its latest MetadataCreated/Updated, if any
    created_at: int | None  # unix time of its first MetadataCreated
    version: int  # the latest key of any tracked event of this NFT: changes when it does

    @property
    def metadata_location(self) -> tuple[int, int] | None:
        """(block, log index) of the latest metadata event."""
        if self.metadata_key is None:
            return None
        return self.metadata_key >> _LOG_INDEX_BITS, self.metadata_key & (
            (1 << _LOG_INDEX_BITS) - 1
        )


@dataclass(frozen=True)
class IndexedDatatoken:
    address: str  # checksummed
    nft: str  # checksummed: the data NFT that created it
    name: str
    symbol: str


@dataclass(frozen=True)
class _Specs:
    nft_created: EventSpec
    token_created: EventSpec
    metadata: tuple[EventSpec, EventSpec]  # MetadataCreated, MetadataUpdated
    state: EventSpec
    token_uri: EventSpec

    @property
    def topics(self) -> list[str]:
        specs = (self.nft_created, self.token_created, *self.metadata, self.state, self.token_uri)
        return ["0x" + spec.topic.hex() for spec in specs]


@cache
def specs() -> _Specs:
    """The events the index reads (from the contract artifacts, read once when first needed)."""
    nft = "ERC721Template"
    return _Specs(
        nft_created=event("NFTCreated", "ERC721Factory"),
        token_created=event("TokenCreated", "ERC721Factory"),
        metadata=(event("MetadataCreated", nft), event("MetadataUpdated", nft)),
        state=event("MetadataState", nft),
        token_uri=event("TokenURIUpdate", nft),
    )


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ddo_scan (chain_id INTEGER PRIMARY KEY, factory TEXT NOT NULL, "
    "genesis TEXT, next_block INTEGER NOT NULL, head INTEGER, head_seen_at REAL)",
    "CREATE TABLE IF NOT EXISTS ddo_nft (did TEXT PRIMARY KEY, chain_id INTEGER NOT NULL, "
    "nft TEXT NOT NULL, name TEXT NOT NULL, symbol TEXT NOT NULL, token_uri TEXT NOT NULL, "
    "uri_key INTEGER NOT NULL, state INTEGER NOT NULL DEFAULT 0, "
    "state_key INTEGER NOT NULL DEFAULT -1, metadata_key INTEGER NOT NULL DEFAULT -1, "
    "created_at INTEGER) WITHOUT ROWID",
    "CREATE UNIQUE INDEX IF NOT EXISTS ddo_nft_address ON ddo_nft (chain_id, nft)",
    "CREATE TABLE IF NOT EXISTS ddo_datatoken (chain_id INTEGER NOT NULL, address TEXT NOT NULL, "
    "nft TEXT NOT NULL, name TEXT NOT NULL, symbol TEXT NOT NULL, "
    "PRIMARY KEY (chain_id, address)) WITHOUT ROWID",
)


@dataclass(frozen=True)
class _Cursor:
    next_block: int
    head: int | None
    head_seen_at: float | None


class NftIndex:
    """The data NFTs and datatokens of each chain's factory (``factories``), kept in SQLite.

    ``refresh`` brings a chain up to date for a request; its scan makes at most
    ``calls_per_scan`` ``eth_getLogs`` calls of at most ``blocks_per_call`` blocks each,
    and raises ``ChainUnavailable`` (503) while the index is further behind than that
    (``catch_up`` builds it up to the head, e.g. before serving).
    """

    def __init__(
        self,
        path: Path,
        chains: Chains,
        factories: Mapping[int, Factory],
        *,
        blocks_per_call: int = 2000,
        calls_per_scan: int = 10,
        reorg_margin: int = 6,
        min_interval: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.chains = chains
        self.factories = dict(factories)
        self._db = SqliteDatabase(path, STORE_NAME)
        self._blocks_per_call = blocks_per_call
        self._calls_per_scan = calls_per_scan
        self._margin = reorg_margin
        self._min_interval = min_interval
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._locks = {chain: threading.Lock() for chain in self.factories}
        self._scanned: dict[int, float] = {}  # chain -> clock when its last good scan began
        self._checked_genesis: set[int] = set()
        self._margin_logs: dict[int, set[tuple[int, int, str]]] = {}  # applied, to be re-read
        with self._db.transaction() as db:
            for statement in _SCHEMA:
                db.execute(statement)

    @property
    def chain_ids(self) -> list[int]:
        return sorted(self.factories)

    def lookup(self, did: str) -> IndexedNft | None:
        with self._db.transaction("BEGIN") as db:
            row = db.execute(
                "SELECT chain_id, did, nft, name, symbol, token_uri, state, metadata_key, "
                "created_at, MAX(uri_key, state_key, metadata_key) FROM ddo_nft WHERE did = ?",
                (did,),
            ).fetchone()
        if row is None:
            return None
        chain_id, did, nft, name, symbol, uri, state, metadata_key, created_at, version = row
        return IndexedNft(
            chain_id=chain_id,
            did=did,
            address=to_checksum_address(nft),
            name=name,
            symbol=symbol,
            token_uri=uri,
            state=state,
            metadata_key=metadata_key if metadata_key >= 0 else None,
            created_at=created_at,
            version=version,
        )

    def datatokens(self, chain_id: int, addresses: Iterable[str]) -> dict[str, IndexedDatatoken]:
        """The datatokens among ``addresses`` that the factory created, by lowercased address."""
        wanted = sorted({address.lower() for address in addresses})
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        with self._db.transaction("BEGIN") as db:
            rows = db.execute(
                "SELECT address, nft, name, symbol FROM ddo_datatoken "
                f"WHERE chain_id = ? AND address IN ({marks})",
                (chain_id, *wanted),
            ).fetchall()
        return {
            address: IndexedDatatoken(
                to_checksum_address(address), to_checksum_address(nft), name, symbol
            )
            for address, nft, name, symbol in rows
        }

    def refresh(self, chain_id: int, not_before: float) -> bool:
        """Make sure a scan of ``chain_id`` that began at or after ``not_before`` (``clock``
        time) has finished; scans at most every ``min_interval`` seconds, and requests
        that wait together share one. True if this call scanned."""
        lock = self._locks[chain_id]
        while True:
            with lock:
                last = self._scanned.get(chain_id)
                if last is not None and last >= not_before:
                    return False
                now = self._clock()
                wait = 0.0 if last is None else last + self._min_interval - now
                if wait <= 0:
                    self._scan(chain_id, self._calls_per_scan)
                    self._scanned[chain_id] = now
                    return True
            self._sleep(wait)

    def catch_up(self, chain_id: int, calls: int | None = None) -> int:
        """Scan with ``calls`` ``eth_getLogs`` at most (None: until the head), e.g. to build
        the index before serving; the head block reached."""
        with self._locks[chain_id]:
            return self._scan(chain_id, calls)

    def _scan(self, chain_id: int, budget: int | None) -> int:
        """Read the chain's new events into the index; the head block reached. Soon after
        a scan (``FRESH_SECONDS``), one round trip does: the head block and the logs up
        to ``latest``, in one JSON-RPC batch."""
        try:
            return self._scan_logs(chain_id, budget)
        except MalformedReply as exc:
            log.warning("chain %s: malformed reply while indexing: %s", chain_id, exc)
            raise ChainUnavailable(f"chain {chain_id} sent a malformed reply (scan)") from None

    def _scan_logs(self, chain_id: int, budget: int | None) -> int:
        factory = self.factories[chain_id]
        cursor = self._cursor(chain_id, factory)
        if chain_id in self._checked_genesis and self._recent(cursor):
            head = self._scan_to_latest(chain_id, factory, cursor)
            if head is not None:
                return head
        head, cursor = self._head(chain_id, factory, cursor)
        start, span = cursor.next_block, self._blocks_per_call
        while start <= head:
            if budget is not None and budget <= 0:
                raise ChainUnavailable(
                    f"the DDO index of chain {chain_id} is catching up "
                    f"({head - start + 1} blocks to go); try again shortly"
                )
            end = min(head, start + span - 1)
            reply = rpc_batch(self.chains, chain_id, "scan logs", [_get_logs(start, end)])[0]
            budget = None if budget is None else budget - 1
            if isinstance(reply, RpcError):  # e.g. too many results: halve the range
                if end == start:
                    raise ChainUnavailable(f"chain {chain_id} refused the call (scan logs)")
                span = max(1, (end - start + 1) // 2)
                continue
            self._store(chain_id, factory, parse_logs(reply), end, head)
            start = end + 1
        return head

    def _recent(self, cursor: _Cursor) -> bool:
        if cursor.head is None or cursor.head_seen_at is None:
            return False
        age = self._wall_clock() - cursor.head_seen_at
        return 0 <= age <= FRESH_SECONDS and cursor.head - cursor.next_block < self._blocks_per_call

    def _scan_to_latest(self, chain_id: int, factory: Factory, cursor: _Cursor) -> int | None:
        """The head and the logs up to ``latest`` in one round trip; None when the node
        refused the logs or the chain went back (the bounded path then takes over)."""
        calls = [("eth_blockNumber", []), _get_logs(cursor.next_block, "latest")]
        head_reply, logs = rpc_batch(self.chains, chain_id, "scan logs", calls)
        if isinstance(head_reply, RpcError):
            raise ChainUnavailable(f"chain {chain_id} refused the call (head block)")
        head = hex_int(head_reply)
        if isinstance(logs, RpcError) or head + self._margin < (cursor.head or 0):
            return None
        self._store(chain_id, factory, parse_logs(logs), head, head)
        return head

    def _head(self, chain_id: int, factory: Factory, cursor: _Cursor) -> tuple[int, _Cursor]:
        """The head block, and the cursor to scan from: the start block again when the chain
        went back, or (checked on a process's first scan) the factory's block changed hash,
        as when anvil restarts and deploys at the same addresses."""
        calls: list[RpcCall] = [("eth_blockNumber", [])]
        first = chain_id not in self._checked_genesis
        if first:
            calls.append(("eth_getBlockByNumber", [hex(factory.start_block), False]))
        replies = rpc_batch(self.chains, chain_id, "head block", calls)
        if any(isinstance(reply, RpcError) for reply in replies):
            raise ChainUnavailable(f"chain {chain_id} refused the call (head block)")
        head = hex_int(replies[0])
        block = replies[1] if first else None
        genesis = str(block["hash"]) if isinstance(block, Mapping) else None
        with self._db.transaction() as db:
            (stored,) = db.execute(
                "SELECT genesis FROM ddo_scan WHERE chain_id = ?", (chain_id,)
            ).fetchone()
            went_back = cursor.head is not None and head + self._margin < cursor.head
            if went_back or (genesis is not None and stored not in (None, genesis)):
                log.warning("chain %s was reset: its DDO index starts over", chain_id)
                _forget_chain(db, chain_id, factory)
                self._margin_logs.pop(chain_id, None)
                cursor = _Cursor(factory.start_block, None, None)
            if genesis is not None:
                db.execute(
                    "UPDATE ddo_scan SET genesis = ? WHERE chain_id = ?", (genesis, chain_id)
                )
        if first:
            self._checked_genesis.add(chain_id)
        return head, cursor

    def _cursor(self, chain_id: int, factory: Factory) -> _Cursor:
        with self._db.transaction("BEGIN") as db:
            row = db.execute(
                "SELECT factory, next_block, head, head_seen_at FROM ddo_scan WHERE chain_id = ?",
                (chain_id,),
            ).fetchone()
        if row is not None and row[0] == factory.address.lower():
            return _Cursor(row[1], row[2], row[3])
        if row is not None:
            log.warning("chain %s has another ERC721Factory: its DDO index starts over", chain_id)
        with self._db.transaction() as db:
            _forget_chain(db, chain_id, factory)
        self._margin_logs.pop(chain_id, None)
        return _Cursor(factory.start_block, None, None)

    def _store(
        self, chain_id: int, factory: Factory, logs: list[dict[str, Any]], end: int, head: int
    ) -> None:
        """Apply ``logs`` (blocks up to ``end`` of a chain at ``head``) in one transaction.
        Logs of the re-read margin that this process applied already are skipped."""
        next_block = max(factory.start_block, min(end + 1, head + 1 - self._margin))
        applied = self._margin_logs.get(chain_id, set())
        with self._db.transaction() as db:
            for entry in logs:
                if (entry["block"], entry["index"], entry["tx"]) not in applied:
                    _apply(db, chain_id, factory.address.lower(), entry)
            db.execute(
                "UPDATE ddo_scan SET next_block = MAX(next_block, ?), head = ?, head_seen_at = ? "
                "WHERE chain_id = ?",
                (next_block, head, self._wall_clock(), chain_id),
            )
        self._margin_logs[chain_id] = {
            (entry["block"], entry["index"], entry["tx"])
            for entry in logs
            if entry["block"] >= next_block
        }


def _get_logs(start: int, end: int | str) -> RpcCall:
    """Every log with one of the index's topics, from any emitter (Aquarius' query)."""
    last = hex(end) if isinstance(end, int) else end
    return "eth_getLogs", [{"fromBlock": hex(start), "toBlock": last, "topics": [specs().topics]}]


def _forget_chain(db: sqlite3.Connection, chain_id: int, factory: Factory) -> None:
    for table in ("ddo_nft", "ddo_datatoken", "ddo_scan"):
        db.execute(f"DELETE FROM {table} WHERE chain_id = ?", (chain_id,))
    db.execute(
        "INSERT INTO ddo_scan (chain_id, factory, next_block) VALUES (?, ?, ?)",
        (chain_id, factory.address.lower(), factory.start_block),
    )


def _apply(db: sqlite3.Connection, chain_id: int, factory: str, entry: dict[str, Any]) -> None:
    """One log into the index; logs of other emitters or malformed ones change nothing."""
    s = specs()
    topic = entry["topics"][0] if entry["topics"] else b""
    if topic in (s.nft_created.topic, s.token_created.topic):
        if entry["address"] == factory:
            _apply_factory_log(db, chain_id, topic, entry)
    else:
        _apply_nft_log(db, chain_id, topic, entry)  # an UPDATE: no row unless the NFT is ours


def _apply_factory_log(
    db: sqlite3.Connection, chain_id: int, topic: bytes, entry: dict[str, Any]
) -> None:
    s = specs()
    if topic == s.nft_created.topic and (fields := s.nft_created.decode(entry)):
        nft = str(fields["newTokenAddress"])
        uri_key = event_key(entry["block"], entry["index"])
        db.execute(
            "INSERT OR IGNORE INTO ddo_nft (did, chain_id, nft, name, symbol, token_uri, "
            "uri_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (did_for(nft, chain_id), chain_id, nft.lower(), fields["tokenName"])
            + (fields["symbol"], fields["tokenURI"], uri_key),
        )
    elif topic == s.token_created.topic and (fields := s.token_created.decode(entry)):
        token, nft = str(fields["newTokenAddress"]).lower(), str(fields["creator"]).lower()
        db.execute(
            "INSERT OR IGNORE INTO ddo_datatoken (chain_id, address, nft, name, symbol) "
            "VALUES (?, ?, ?, ?, ?)",
            (chain_id, token, nft, fields["name"], fields["symbol"]),
        )


def _apply_nft_log(
    db: sqlite3.Connection, chain_id: int, topic: bytes, entry: dict[str, Any]
) -> None:
    """A metadata, state or tokenURI event, if it is later than what the NFT's row holds."""
    s = specs()
    nft, key = entry["address"], event_key(entry["block"], entry["index"])
    where = "WHERE chain_id = ? AND nft = ?"
    if topic in (s.metadata[0].topic, s.metadata[1].topic):
        created = topic == s.metadata[0].topic
        fields = (s.metadata[0] if created else s.metadata[1]).decode(entry)
        if fields is None:
            return
        db.execute(
            f"UPDATE ddo_nft SET metadata_key = ? {where} AND metadata_key < ?",
            (key, chain_id, nft, key),
        )
        _set_state(db, chain_id, nft, int(fields["state"]), key)
        if created:
            db.execute(
                f"UPDATE ddo_nft SET created_at = ? {where} AND created_at IS NULL",
                (int(fields["timestamp"]), chain_id, nft),
            )
    elif topic == s.state.topic and (fields := s.state.decode(entry)):
        _set_state(db, chain_id, nft, int(fields["state"]), key)
    elif topic == s.token_uri.topic and (fields := s.token_uri.decode(entry)):
        db.execute(
            f"UPDATE ddo_nft SET token_uri = ?, uri_key = ? {where} AND uri_key < ?",
            (fields["tokenURI"], key, chain_id, nft, key),
        )


def _set_state(db: sqlite3.Connection, chain_id: int, nft: str, state: int, key: int) -> None:
    db.execute(
        "UPDATE ddo_nft SET state = ?, state_key = ? "
        "WHERE chain_id = ? AND nft = ? AND state_key < ?",
        (state, key, chain_id, nft, key),
    )


# JSON-RPC, raw: one batch is one round trip, and each call's error stays its own.
