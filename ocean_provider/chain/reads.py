"""Chain reads the Provider repeats, cached where the answer cannot change.

Final receipts (with enough confirmations), token decimals and the datatoken
→ data NFT binding never change once seen, so each is read once per process.
An unknown or pending transaction is waited for a bounded time only.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError
from web3.types import RPCEndpoint

from ocean_provider.chain.artifacts import abi
from ocean_provider.chain.jsonrpc import MalformedReply, hex_bytes, hex_int
from ocean_provider.chain.rpc import Chains
from ocean_provider.errors import ChainUnavailable

CACHED_RECEIPTS = 4096
ZERO_ADDRESS = "0x" + "0" * 40
Receipt = Mapping[str, Any]


class ReceiptMissing(Exception):
    """No receipt within the wait: ``pending`` tells whether the node knows the transaction."""

    def __init__(self, pending: bool) -> None:
        super().__init__("pending" if pending else "unknown")
        self.pending = pending


class ReceiptUnconfirmed(Exception):
    """Mined, but with fewer confirmations than configured."""


class ChainReader:
    def __init__(
        self,
        chains: Chains,
        *,
        confirmations: int = 0,
        receipt_wait: float = 3.0,
        poll: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.chains = chains
        self._confirmations = confirmations
        self._receipt_wait = receipt_wait
        self._poll = poll
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._receipts: OrderedDict[tuple[int, str], Receipt] = OrderedDict()
        self._decimals: dict[tuple[int, str], int] = {}
        self._deployed: set[tuple[int, str, str]] = set()
        self._contracts: dict[tuple[int, str, str], Any] = {}
        self._factory_nfts: set[tuple[int, str, str]] = set()

    def receipt(self, chain_id: int, tx_id: str) -> Receipt:
        """The final receipt of ``tx_id``: one RPC call when the transaction is mined."""
        key = (chain_id, tx_id.lower())
        with self._lock:
            cached = self._receipts.get(key)
            if cached is not None:
                self._receipts.move_to_end(key)
                return cached
        ends = self._clock() + self._receipt_wait
        while True:
            found = self.chains.call(chain_id, "receipt", lambda w3: _receipt_or_none(w3, tx_id))
            if found is not None:
                break
            if self._clock() + self._poll > ends:
                known = self.chains.call(
                    chain_id, "transaction", lambda w3: _transaction_known(w3, tx_id)
                )
                raise ReceiptMissing(pending=known)
            self._sleep(self._poll)
        try:
            receipt = _plain(found)
        except (MalformedReply, KeyError, TypeError):
            raise ChainUnavailable(f"chain {chain_id} sent a malformed receipt") from None
        if self._confirmations > 0:
            latest = self.chains.call(chain_id, "block number", lambda w3: w3.eth.block_number)
            if latest - int(receipt["blockNumber"]) + 1 < self._confirmations:
                raise ReceiptUnconfirmed()
        with self._lock:
            self._receipts[key] = receipt
            if len(self._receipts) > CACHED_RECEIPTS:
                self._receipts.popitem(last=False)
        return receipt

    def decimals(self, chain_id: int, token: str) -> int:
        key = (chain_id, token.lower())
        value = self._decimals.get(key)
        if value is None:
            read = self._contract(chain_id, "ERC20Template", token).functions.decimals()
            value = int(self.chains.call(chain_id, "decimals", lambda _: read.call()))
            self._decimals[key] = value
        return value

    def is_deployed(self, chain_id: int, nft: str, datatoken: str) -> bool:
        """Whether ``datatoken`` was created by the data NFT ``nft`` (cached once true)."""
        key = (chain_id, nft.lower(), datatoken.lower())
        if key in self._deployed:
            return True
        contract = self._contract(chain_id, "ERC721Template", nft)
        check = contract.functions.isDeployed(to_checksum_address(datatoken))
        try:
            deployed = bool(self.chains.call(chain_id, "isDeployed", lambda _: check.call()))
        except ContractLogicError:
            deployed = False
        except (ValueError, TypeError):  # no contract there: an empty reply does not decode
            deployed = False
        if deployed:
            self._deployed.add(key)
        return deployed

    def erc721_list(self, chain_id: int, factory: str, nft: str) -> str:
        """ERC721Factory ``erc721List(nft)``: ``nft`` itself (checksummed) when ``factory``
        created it, else the zero address (cached once equal: a created NFT stays so)."""
        key = (chain_id, factory.lower(), nft.lower())
        if key in self._factory_nfts:
            return to_checksum_address(nft)
        lookup = self._contract(chain_id, "ERC721Factory", factory).functions.erc721List(
            to_checksum_address(nft)
        )
        try:
            listed = str(self.chains.call(chain_id, "erc721List", lambda _: lookup.call()))
        except ContractLogicError:  # not a factory there: nothing is listed, fail closed
            return ZERO_ADDRESS
        if listed.lower() == nft.lower():
            self._factory_nfts.add(key)
        return listed

    def metadata_state(self, chain_id: int, nft: str) -> int:
        """The data NFT's metadata state, ``getMetaData()[2]``; read each time (it changes)."""
        read = self._contract(chain_id, "ERC721Template", nft).functions.getMetaData()
        return int(self.chains.call(chain_id, "getMetaData", lambda _: read.call())[2])

    def _contract(self, chain_id: int, name: str, address: str) -> Any:
        key = (chain_id, name, address.lower())
        contract = self._contracts.get(key)
        if contract is None:
            w3 = self.chains.web3(chain_id)
            contract = w3.eth.contract(address=to_checksum_address(address), abi=abi(name))
            self._contracts[key] = contract
        return contract


def _receipt_or_none(w3: Web3, tx_id: str) -> Any:
    """The raw JSON receipt, or None. web3's formatters are skipped: they checksum every
    address and wrap every field, which cost more than the rest of a start's checks."""
    reply = w3.provider.make_request(RPCEndpoint("eth_getTransactionReceipt"), [tx_id])
    if "error" in reply:
        raise Web3RPCError("eth_getTransactionReceipt failed", rpc_response=reply)
    return reply.get("result")


def _transaction_known(w3: Web3, tx_id: str) -> bool:
    try:
        w3.eth.get_transaction(tx_id)  # type: ignore[arg-type]
    except TransactionNotFound:
        return False
    return True


def _plain(receipt: Mapping[str, Any]) -> dict[str, Any]:
    """The receipt fields the checks read, from the node's JSON (hex quantities)."""
    return {
        "status": hex_int(receipt["status"]),
        "blockNumber": hex_int(receipt["blockNumber"]),
        "to": receipt.get("to"),
        "from": receipt.get("from"),
        "logs": [
            {
                "address": log["address"],
                "topics": [hex_bytes(t) for t in log["topics"]],
                "data": hex_bytes(log["data"]),
            }
            for log in receipt["logs"]
        ],
    }
