"""The index that finds the data NFT a DID names.

A DID is a hash of the NFT's address and chain id (``ddo.dids``), so the NFT is found
only by listing the NFTs. ``NftIndex`` lists them from the chain, as Aquarius does:
``eth_getLogs`` over bounded block ranges with the topics of ``NFTCreated`` and
``TokenCreated`` (kept only when the configured ERC721Factory emitted them) and of the
metadata events (``MetadataCreated``, ``MetadataUpdated``, ``MetadataState``,
``TokenURIUpdate``, kept only from NFTs that factory created). Per NFT it keeps its DID,
name, symbol, tokenURI, metadata state and where its latest metadata event is; per
datatoken, its NFT, name and symbol. The tables, and what each event changes in them,
are in ``ddo.index_tables``.

Scans are incremental and persisted (SQLite), shared by workers and restarts;
each re-reads the last ``reorg_margin`` blocks. A chain reset under the same
addresses (a restarted anvil) is noticed by the factory block's hash, and the
chain's index starts over. One scan per chain runs at a time in a process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils.address import to_checksum_address

from ocean_provider.auth.sqlite_db import SqliteDatabase
from ocean_provider.chain.jsonrpc import (
    MalformedReply,
    RpcCall,
    RpcError,
    hex_int,
    parse_logs,
    rpc_batch,
)
from ocean_provider.chain.rpc import Chains
from ocean_provider.ddo.index_tables import (
    LOG_INDEX_BITS,
    SCHEMA,
    apply_log,
    forget_chain,
    specs,
)
from ocean_provider.errors import ChainUnavailable

log = logging.getLogger(__name__)

STORE_NAME = "DDO index"
FRESH_SECONDS = 30.0  # a scan this soon after the last one reads up to "latest" in one call


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
        return self.metadata_key >> LOG_INDEX_BITS, self.metadata_key & ((1 << LOG_INDEX_BITS) - 1)


@dataclass(frozen=True)
class IndexedDatatoken:
    address: str  # checksummed
    nft: str  # checksummed: the data NFT that created it
    name: str
    symbol: str


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
            for statement in SCHEMA:
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
                forget_chain(db, chain_id, factory.address, factory.start_block)
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
            forget_chain(db, chain_id, factory.address, factory.start_block)
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
                    apply_log(db, chain_id, factory.address.lower(), entry)
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
