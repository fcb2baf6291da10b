"""Ocean DIDs: ``did:op:`` + sha256(checksummed data NFT address + chain id), in hex.

The NFT of a DID is found only by listing the NFTs (``ddo.index``) or by asking an
Aquarius (``ddo.aquarius``); both name an unknown DID the same way.
"""

from __future__ import annotations

import hashlib
import re

from eth_utils.address import to_checksum_address

from ocean_provider.errors import ComputeRefused

DID_PATTERN = re.compile(r"did:op:[0-9a-f]{64}", re.ASCII)
RESOURCE = "dataset"  # what a refusal names, as the compute service's callers expect


def did_for(nft: str, chain_id: int) -> str:
    """The DID of the data NFT ``nft`` on ``chain_id``."""
    text = to_checksum_address(nft) + str(chain_id)
    return "did:op:" + hashlib.sha256(text.encode()).hexdigest()


def unknown_did(did: str, why: str) -> ComputeRefused:
    return ComputeRefused(RESOURCE, "did_not_found", f"{did[:80]} {why}")
