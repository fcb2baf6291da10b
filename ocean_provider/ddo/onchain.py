"""DDOs read from the chain: the ``DdoResolver`` that needs no other service.

``NftIndex`` finds the DID's data NFT and its latest ``MetadataCreated`` or
``MetadataUpdated`` event; one round trip (a JSON-RPC batch) then reads that
event and the NFT's owner. The stored document is decrypted with this
Provider's key and decompressed as the event's flags say; its sha256 must be
the event's ``metaDataHash``, and its ``id``, ``nftAddress`` and ``chainId``
must be the NFT's. The fields Aquarius adds are added: ``nft`` (address, name,
symbol, state, tokenURI, owner, created), ``datatokens``, ``chainId``,
``nftAddress`` and ``event``. The metadata state is reported, not judged.

Each resolved DDO is cached with the index version of its NFT (the latest
metadata, state or tokenURI event). A DDO found current less than ``ttl``
seconds ago is served as it is. Otherwise the index is brought up to date
unless that was done less than ``ttl`` seconds ago (one round trip, shared by
every DID of the chain), and the cached DDO is served if its NFT's version is
unchanged and it is younger than ``max_age`` (after that it is read again, its
owner too). An unknown DID waits for one index scan that began after it arrived.
Callers must not change a resolved DDO: it is shared.

Refusals, with resource ``dataset`` as ``DdoResolver`` callers expect:
``did_not_found`` (not an Ocean DID, not an NFT of a configured factory, no
metadata, undecryptable or not a DDO of this NFT) and ``metadata_hash_mismatch``
(the document is not the one the publisher hashed).
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from eth_abi.abi import encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from ocean_provider.chain.jsonrpc import (
    MalformedReply,
    RpcCall,
    RpcError,
    hex_bytes,
    parse_logs,
    rpc_batch,
)
from ocean_provider.compute.interfaces import Asset
from ocean_provider.ddo.crypto import CryptoFailed, ProviderCipher, document_hash, open_document
from ocean_provider.ddo.dids import DID_PATTERN, RESOURCE, unknown_did
from ocean_provider.ddo.index import IndexedNft, NftIndex
from ocean_provider.ddo.index_tables import specs
from ocean_provider.errors import ChainUnavailable, ComputeRefused

if TYPE_CHECKING:  # the Protocol lives with the factory, which imports this module
    from ocean_provider.ddo.resolvers import ServiceFileSource

CACHED_DDOS = 4096


@dataclass(frozen=True)
class _Entry:
    asset: Asset | None
    refusal: tuple[str, str] | None  # (code, message) when the metadata is refused
    version: int  # the index version of its NFT it was built at
    built: float
    checked: float  # when it was last found current against the index

    def answer(self) -> Asset:
        if self.asset is None:
            code, message = self.refusal or ("did_not_found", "")
            raise ComputeRefused(RESOURCE, code, message)
        return self.asset


class OnChainDdoResolver:
    def __init__(
        self,
        index: NftIndex,
        ciphers: Mapping[int, ProviderCipher],
        files: ServiceFileSource,
        *,
        ttl: float = 1.0,
        max_age: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.index = index
        self._ciphers = ciphers
        self._files = files
        self._ttl = ttl
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, _Entry] = OrderedDict()

    def resolve(self, did: str) -> Asset:
        arrived = self._clock()
        if DID_PATTERN.fullmatch(did) is None:
            raise unknown_did(did, "is not an Ocean DID (did:op: and 64 hex digits)")
        with self._lock:
            entry = self._cache.get(did)
        young = entry is not None and arrived - entry.built < self._max_age
        if entry is not None and young and arrived - entry.checked < self._ttl:
            return entry.answer()
        nft = self._indexed(did, arrived)
        if entry is not None and young and entry.version == nft.version:
            entry = replace(entry, checked=arrived)
        else:
            entry = self._entry(nft, arrived)
        with self._lock:
            self._cache[did] = entry
            self._cache.move_to_end(did)
            if len(self._cache) > CACHED_DDOS:
                self._cache.popitem(last=False)
        return entry.answer()

    def service_files(self, asset: Asset, service_id: str) -> list[dict[str, Any]]:
        return self._files.service_files(asset, service_id)

    def _entry(self, nft: IndexedNft, now: float) -> _Entry:
        """The NFT's DDO, or the refusal of its metadata: both kept until it changes."""
        try:
            return _Entry(self._read(nft), None, nft.version, now, now)
        except ComputeRefused as refused:
            return _Entry(None, (refused.code, refused.message), nft.version, now, now)

    def _indexed(self, did: str, arrived: float) -> IndexedNft:
        """The DID's NFT from an index at most ``ttl`` old (for an unknown DID: scanned
        after the request arrived)."""
        nft = self.index.lookup(did)
        if nft is None:
            for chain in self.index.chain_ids:
                self.index.refresh(chain, arrived)
            nft = self.index.lookup(did)
        elif self.index.refresh(nft.chain_id, arrived - self._ttl):
            nft = self.index.lookup(did)
        if nft is None:
            raise unknown_did(did, "is not a data NFT of this Provider's chains")
        return nft

    def _read(self, nft: IndexedNft) -> Asset:
        """The NFT's DDO from its latest metadata event, with Aquarius' fields."""
        location = nft.metadata_location
        if location is None:
            raise unknown_did(nft.did, "has no metadata")
        block, index = location
        created, updated = specs().metadata
        query = {
            "address": nft.address,
            "fromBlock": hex(block),
            "toBlock": hex(block),
            "topics": [["0x" + created.topic.hex(), "0x" + updated.topic.hex()]],
        }
        owner_of = {"to": nft.address, "data": _call_data("ownerOf(uint256)", ["uint256"], [1])}
        calls: list[RpcCall] = [("eth_getLogs", [query]), ("eth_call", [owner_of, "latest"])]
        logs, owner = rpc_batch(self.index.chains, nft.chain_id, "metadata", calls)
        if isinstance(logs, RpcError):
            raise ChainUnavailable(f"chain {nft.chain_id} refused the call (metadata)")
        try:
            found = [e for e in parse_logs(logs) if e["index"] == index]
            owner_address = _address(owner)
        except MalformedReply:
            raise ChainUnavailable(
                f"chain {nft.chain_id} sent a malformed reply (metadata)"
            ) from None
        if not found or found[0]["address"] != nft.address.lower():
            raise ChainUnavailable(
                f"chain {nft.chain_id}: the metadata event of {nft.did} is gone "
                "(the chain reorganised?); try again shortly"
            )
        spec = created if found[0]["topics"][0] == created.topic else updated
        fields = spec.decode(found[0])
        if fields is None:
            raise unknown_did(nft.did, "has a malformed metadata event")
        ddo = self._document(nft, fields)
        event = {
            "tx": found[0]["tx"],
            "block": block,
            "from": fields.get("createdBy") or fields.get("updatedBy") or "",
            "contract": nft.address,
            "datetime": _iso(int(fields["timestamp"])),
        }
        return Asset(nft.did, nft.chain_id, self._with_chain_fields(ddo, nft, event, owner_address))

    def _document(self, nft: IndexedNft, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The stored document opened, checked against its hash, and parsed as this NFT's DDO."""
        flags = bytes(fields["flags"])
        cipher = self._ciphers.get(nft.chain_id)
        if cipher is None:
            raise unknown_did(nft.did, "is on a chain this Provider holds no key for")
        try:
            plain = open_document(cipher, bytes(fields["data"]), flags[0] if flags else 0)
        except CryptoFailed:
            raise unknown_did(nft.did, "has metadata this Provider cannot decrypt") from None
        if document_hash(plain) != bytes(fields["metaDataHash"]):
            raise ComputeRefused(
                RESOURCE,
                "metadata_hash_mismatch",
                f"{nft.did}: the metadata on chain does not match its metaDataHash",
            )
        try:
            ddo = json.loads(plain)
        except ValueError:  # also UnicodeDecodeError
            raise unknown_did(nft.did, "has metadata that is not JSON") from None
        if not isinstance(ddo, dict) or ddo.get("id") != nft.did:
            raise unknown_did(nft.did, "has metadata that is not its DDO (id)")
        named = ddo.get("nftAddress")
        if named is not None and str(named).lower() != nft.address.lower():
            raise unknown_did(nft.did, "has a DDO naming another nftAddress")
        if ddo.get("chainId") not in (None, nft.chain_id):
            raise unknown_did(nft.did, "has a DDO naming another chainId")
        return ddo

    def _with_chain_fields(
        self, ddo: dict[str, Any], nft: IndexedNft, event: dict[str, Any], owner: str
    ) -> dict[str, Any]:
        """``ddo`` with the fields Aquarius adds to what it serves."""
        services = [s for s in ddo.get("services") or [] if isinstance(s, Mapping)]
        addresses = [str(s.get("datatokenAddress", "")) for s in services]
        known = self.index.datatokens(nft.chain_id, addresses)
        datatokens = []
        for service, address in zip(services, addresses, strict=True):
            token = known.get(address.lower())
            datatokens.append(
                {
                    "address": token.address if token else address,
                    "name": token.name if token else "",
                    "symbol": token.symbol if token else "",
                    "serviceId": service.get("id"),
                }
            )
        created = event["datetime"] if nft.created_at is None else _iso(nft.created_at)
        return {
            **ddo,
            "chainId": nft.chain_id,
            "nftAddress": nft.address,
            "nft": {
                "address": nft.address,
                "name": nft.name,
                "symbol": nft.symbol,
                "state": nft.state,
                "tokenURI": nft.token_uri,
                "owner": owner,
                "created": created,
            },
            "datatokens": datatokens,
            "event": event,
        }


def _call_data(signature: str, types: list[str], args: list[Any]) -> str:
    return "0x" + (keccak(text=signature)[:4] + encode(types, args)).hex()


def _address(reply: Any) -> str:
    """An ``address`` return value; "" when the call reverted (as Aquarius reports it)."""
    if isinstance(reply, RpcError):
        return ""
    raw = hex_bytes(reply)
    return to_checksum_address(raw[-20:]) if len(raw) == 32 else ""


def _iso(timestamp: int) -> str:
    """Aquarius' datetimes: ISO 8601, UTC, to the second, without a zone."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S")
