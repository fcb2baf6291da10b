"""``Documents`` on chain: encrypt to this Provider's key, and decrypt an asset's metadata.

Decrypt runs the reference route's checks (``routes/decrypt.py``) after the signature
and nonce: the decrypter is authorized, the data NFT was created by the chain's
ERC721Factory, its metadata state lets it be read; then the document comes from the
``MetadataCreated``/``MetadataUpdated`` event of a transaction (emitted by that NFT:
the reference never checked the emitter) or from the request itself, is decrypted
and decompressed as its flags say, and must hash to the hash published with it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ocean_provider.auth.addresses import checksum_address
from ocean_provider.chain.events import event
from ocean_provider.chain.reads import Receipt, ReceiptMissing, ReceiptUnconfirmed
from ocean_provider.compute.document_requests import DecryptRequest
from ocean_provider.ddo.crypto import (
    FLAG_ECIES,
    FLAG_LZMA,
    CryptoFailed,
    ProviderCipher,
    decompress,
    document_hash,
)
from ocean_provider.errors import ChainNotSupported, DocumentRefused, ValidationFailed

log = logging.getLogger(__name__)

NFT_ABI = "ERC721Template"
METADATA_EVENTS = ("MetadataCreated", "MetadataUpdated")  # the reference's order of preference
READABLE_STATES = {0, 4, 5}  # active, temporarily disabled, unlisted (as the reference)
CLOSED_STATES = {
    1: ("Asset end of life", "asset_end_of_life"),
    2: ("Asset deprecated", "asset_deprecated"),
    3: ("Asset revoked", "asset_revoked"),
}
TX_FAILED = "Failed to process transaction id."


class NftReads(Protocol):
    """The chain reads decrypt makes; ``chain.reads.ChainReader`` is the real one."""

    def erc721_list(self, chain_id: int, factory: str, nft: str) -> str: ...

    def metadata_state(self, chain_id: int, nft: str) -> int: ...

    def receipt(self, chain_id: int, tx_id: str) -> Receipt: ...


@dataclass(frozen=True)
class StoredDocument:
    """A document as a publisher stored it with ``setMetaData``."""

    data: bytes
    flags: int
    hash: bytes


class ChainDocuments:
    def __init__(
        self,
        reader: NftReads,
        *,
        ciphers: Mapping[int, ProviderCipher],
        factories: Mapping[int, str | None],
        decrypters: Iterable[str] = (),
    ) -> None:
        self._reader = reader
        self._ciphers = ciphers  # the app's: each key parsed once, shared with ServiceFiles
        self._factories = dict(factories)
        self._decrypters = frozenset(checksum_address(a) for a in decrypters)

    def encrypt(self, chain_id: int, plain: bytes) -> str:
        return "0x" + self._cipher(chain_id).encrypt(plain).hex()

    def decrypt(self, signer: str, request: DecryptRequest) -> bytes:
        chain, nft = request.chain_id, request.data_nft_address
        cipher = self._cipher(chain)
        if self._decrypters and signer not in self._decrypters:
            raise DocumentRefused(
                "Decrypter not authorized", code="decrypter_not_authorized", status=403
            )
        self._check_from_factory(chain, nft)
        self._check_state(chain, nft)
        if request.transaction_id is not None:
            stored = self._from_transaction(chain, request.transaction_id, nft)
        else:
            stored = _from_request(request)
        plain = _open(cipher, stored)
        if document_hash(plain) != stored.hash:
            raise DocumentRefused("Checksum doesn't match.", code="checksum_mismatch")
        log.info("decrypted a document of NFT %s on chain %s for %s", nft, chain, signer)
        return plain

    def _cipher(self, chain_id: int) -> ProviderCipher:
        try:
            return self._ciphers[chain_id]
        except KeyError:
            raise ChainNotSupported(f"this Provider does not serve chain {chain_id}") from None

    def _check_from_factory(self, chain_id: int, nft: str) -> None:
        factory = self._factories.get(chain_id)
        if factory is None:
            raise DocumentRefused(
                f"This Provider has no ERC721Factory address for chain {chain_id}, so it cannot "
                "tell an asset's data NFT; its operator must set ADDRESS_FILE.",
                code="factory_unknown",
            )
        if self._reader.erc721_list(chain_id, factory, nft).lower() != nft.lower():
            raise DocumentRefused(
                "Asset not deployed by the data NFT factory.", code="nft_not_from_factory"
            )

    def _check_state(self, chain_id: int, nft: str) -> None:
        state = self._reader.metadata_state(chain_id, nft)
        if state in READABLE_STATES:
            return
        if state in CLOSED_STATES:
            message, code = CLOSED_STATES[state]
            raise DocumentRefused(message, code=code, status=403)
        raise DocumentRefused("Invalid MetadataState", code="invalid_metadata_state")

    def _from_transaction(self, chain_id: int, tx_id: str, nft: str) -> StoredDocument:
        try:
            receipt = self._reader.receipt(chain_id, tx_id)
        except ReceiptMissing as missing:
            state = "is not mined yet" if missing.pending else "is unknown to the chain"
            code = "transaction_pending" if missing.pending else "transaction_not_found"
            raise DocumentRefused(f"{TX_FAILED} The transaction {state}.", code=code) from None
        except ReceiptUnconfirmed:
            raise DocumentRefused(
                f"{TX_FAILED} The transaction has too few confirmations yet.",
                code="transaction_unconfirmed",
            ) from None
        if receipt["status"] != 1:
            raise DocumentRefused(f"{TX_FAILED} The transaction failed.", code="transaction_failed")
        fields = _metadata_event(receipt["logs"], nft)
        if fields is None:
            raise DocumentRefused(
                f"{TX_FAILED} It has no MetadataCreated or MetadataUpdated event of this data NFT.",
                code="metadata_event_not_found",
            )
        flags = bytes(fields["flags"])
        return StoredDocument(
            bytes(fields["data"]), flags[0] if flags else 0, fields["metaDataHash"]
        )


def _metadata_event(logs: list[Mapping[str, Any]], nft: str) -> dict[str, Any] | None:
    """The first ``MetadataCreated`` emitted by ``nft``, else its first ``MetadataUpdated``."""
    mine = [log for log in logs if str(log.get("address", "")).lower() == nft.lower()]
    for name in METADATA_EVENTS:
        spec = event(name, NFT_ABI)
        for item in mine:
            fields = spec.decode(item)
            if fields is not None:
                return fields
    return None


def _from_request(request: DecryptRequest) -> StoredDocument:
    data, flags, digest = request.encrypted_document, request.flags, request.document_hash
    if data is None or flags is None or digest is None:  # the request model rules this out
        raise ValidationFailed({"body": ["give encryptedDocument, flags and documentHash"]})
    return StoredDocument(data, flags, digest)


def _open(cipher: ProviderCipher, stored: StoredDocument) -> bytes:
    """Decrypted (flag ECIES), then decompressed (flag LZMA), each failure with its code."""
    data = stored.data
    try:
        if stored.flags & FLAG_ECIES:
            data = cipher.decrypt(data)
    except CryptoFailed as failed:
        raise DocumentRefused(str(failed), code="decrypt_failed") from None
    try:
        return decompress(data) if stored.flags & FLAG_LZMA else data
    except CryptoFailed as failed:
        raise DocumentRefused(str(failed), code="decompress_failed") from None
