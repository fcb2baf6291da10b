"""Checksummed (EIP-55) addresses, computed once per address.

Every signed request names its consumer, and every engine reply its owner: the
same few addresses recur on each request, and each EIP-55 form costs a keccak.
"""

from __future__ import annotations

import re
from functools import lru_cache

from eth_utils.address import to_checksum_address

CACHED_ADDRESSES = 65_536
ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")  # use with fullmatch


@lru_cache(maxsize=CACHED_ADDRESSES)
def checksum_address(address: str) -> str:
    """The EIP-55 form of ``address``; ``ValueError`` if it is not an address."""
    return str(to_checksum_address(address))
