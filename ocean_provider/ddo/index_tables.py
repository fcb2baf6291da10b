"""The DDO index's SQLite tables, the events it reads, and what each event changes.

An event's key orders events: block number << 20 | log index. A row keeps the key of the
event that last set each of its fields, so an event re-read (the reorg margin) or read
out of order never overwrites a later one.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from functools import cache
from typing import Any

from ocean_provider.chain.events import EventSpec, event
from ocean_provider.ddo.dids import did_for

LOG_INDEX_BITS = 20  # an event's key: block number << 20 | log index


def event_key(block: int, log_index: int) -> int:
    """Orders events: later events have larger keys."""
    return block << LOG_INDEX_BITS | log_index


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


SCHEMA = (
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


def forget_chain(db: sqlite3.Connection, chain_id: int, factory: str, start_block: int) -> None:
    """The chain's index starts over from the factory's first block."""
    for table in ("ddo_nft", "ddo_datatoken", "ddo_scan"):
        db.execute(f"DELETE FROM {table} WHERE chain_id = ?", (chain_id,))
    db.execute(
        "INSERT INTO ddo_scan (chain_id, factory, next_block) VALUES (?, ?, ?)",
        (chain_id, factory.lower(), start_block),
    )


def apply_log(db: sqlite3.Connection, chain_id: int, factory: str, entry: dict[str, Any]) -> None:
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
