"""Publish a datatoken and order it, the way Ocean's clients (ocean.py, ocean.js) do.

For tests, the demo and the dev stack: each call is one signed transaction
(``contracts.transact``) from the key of the party who would send it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from eth_account import Account
from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from web3 import Web3
from web3.logs import DISCARD
from web3.types import TxReceipt

from ocean_provider.devnet.contracts import Deployment, contract_at, transact

ZERO_ADDRESS = "0x" + "0" * 40
MAX_UINT256 = 2**256 - 1
# startOrder's consumeMarketFee (address, token, amount): none
NO_CONSUME_MARKET_FEE = (ZERO_ADDRESS, ZERO_ADDRESS, 0)


@dataclass(frozen=True)
class Published:
    nft: ChecksumAddress  # the data NFT (ERC721Template clone); token 1 is the publisher's
    datatoken: ChecksumAddress  # its datatoken (ERC20Template clone)


class ProviderFee(TypedDict):
    """A Provider's signed fee, as ``initializeCompute`` returns it in JSON."""

    providerFeeAddress: str
    providerFeeToken: str
    providerFeeAmount: int | str  # wei; some Providers send the integer as a string
    v: int
    r: str  # 0x + 32 bytes hex
    s: str
    validUntil: int | str
    providerData: str  # 0x hex of the bytes the Provider signed


ProviderFeeArgs = tuple[ChecksumAddress, ChecksumAddress, int, int, bytes, bytes, int, bytes]


def provider_fee_args(fee: ProviderFee) -> ProviderFeeArgs:
    """``fee`` as the contracts' ``providerFee`` tuple
    ``(address, address, uint256, uint8, bytes32, bytes32, uint256, bytes)``."""
    return (
        Web3.to_checksum_address(fee["providerFeeAddress"]),
        Web3.to_checksum_address(fee["providerFeeToken"]),
        int(fee["providerFeeAmount"]),
        int(fee["v"]),
        _bytes32(fee["r"], "r"),
        _bytes32(fee["s"], "s"),
        int(fee["validUntil"]),
        bytes(HexBytes(fee["providerData"])),
    )


def _bytes32(value: str, name: str) -> bytes:
    raw = bytes(HexBytes(value))
    if len(raw) != 32:
        raise ValueError(f"provider fee {name} is {len(raw)} bytes, not 32")
    return raw


def publish_datatoken(
    w3: Web3,
    d: Deployment,
    publisher_key: str,
    *,
    name: str = "Sample",
    symbol: str = "SMPL",
    token_uri: str = "https://oceanprotocol.com/nft/",
    datatoken_name: str = "Datatoken 1",
    datatoken_symbol: str = "DT1",
    cap: int = MAX_UINT256,
) -> Published:
    """A data NFT owned by the publisher with one datatoken (template 1) whose minter and
    payment collector are the publisher; no publish-market fee."""
    publisher = Account.from_key(publisher_key).address
    nft_data = (name, symbol, 1, token_uri, True, publisher)
    erc_data: tuple[int, list[str], list[str], list[int], list[bytes]] = (
        1,
        [datatoken_name, datatoken_symbol],
        [publisher, publisher, ZERO_ADDRESS, ZERO_ADDRESS],  # minter, collector, market fee
        [cap, 0],
        [],
    )
    factory = contract_at(w3, "ERC721Factory", d.factory)
    receipt = transact(w3, publisher_key, factory.functions.createNftWithErc20(nft_data, erc_data))
    nfts = factory.events.NFTCreated().process_receipt(receipt, errors=DISCARD)
    tokens = factory.events.TokenCreated().process_receipt(receipt, errors=DISCARD)
    if len(nfts) != 1 or len(tokens) != 1:
        raise LookupError(
            f"createNftWithErc20 logged {len(nfts)} NFTCreated and {len(tokens)} TokenCreated"
        )
    return Published(
        nft=Web3.to_checksum_address(nfts[0]["args"]["newTokenAddress"]),
        datatoken=Web3.to_checksum_address(tokens[0]["args"]["newTokenAddress"]),
    )


def mint(w3: Web3, datatoken: str, minter_key: str, to: str, amount_wei: int) -> TxReceipt:
    dt = contract_at(w3, "ERC20Template", datatoken)
    return transact(w3, minter_key, dt.functions.mint(Web3.to_checksum_address(to), amount_wei))


def transfer_ocean(w3: Web3, d: Deployment, from_key: str, to: str, amount_wei: int) -> TxReceipt:
    ocean = contract_at(w3, "MockOcean", d.ocean)
    call = ocean.functions.transfer(Web3.to_checksum_address(to), amount_wei)
    return transact(w3, from_key, call)


def approve(w3: Web3, token: str, owner_key: str, spender: str, amount_wei: int) -> TxReceipt:
    """Set ``spender``'s allowance on ERC-20 ``token`` to ``amount_wei`` (not add to it)."""
    erc20 = contract_at(w3, "ERC20Template", token)
    call = erc20.functions.approve(Web3.to_checksum_address(spender), amount_wei)
    return transact(w3, owner_key, call)


def start_order(
    w3: Web3,
    datatoken: str,
    payer_key: str,
    *,
    consumer: str,
    service_index: int,
    provider_fee: ProviderFee,
) -> str:
    """Pay one datatoken for service ``service_index`` on behalf of ``consumer``, plus the
    provider fee; the order's transaction hash (0x hex), which the consumer hands to the
    Provider as ``transferTxId``."""
    fee = provider_fee_args(provider_fee)
    _approve_provider_fee(w3, datatoken, payer_key, fee)
    dt = contract_at(w3, "ERC20Template", datatoken)
    call = dt.functions.startOrder(
        Web3.to_checksum_address(consumer), service_index, fee, NO_CONSUME_MARKET_FEE
    )
    return transact(w3, payer_key, call)["transactionHash"].to_0x_hex()


def reuse_order(
    w3: Web3, datatoken: str, payer_key: str, *, order_tx: str, provider_fee: ProviderFee
) -> str:
    """Extend the order ``order_tx`` with a new provider fee (a new compute job on an order
    still valid); this transaction's hash (0x hex)."""
    fee = provider_fee_args(provider_fee)
    _approve_provider_fee(w3, datatoken, payer_key, fee)
    dt = contract_at(w3, "ERC20Template", datatoken)
    call = dt.functions.reuseOrder(bytes(HexBytes(order_tx)), fee)
    return transact(w3, payer_key, call)["transactionHash"].to_0x_hex()


def _approve_provider_fee(w3: Web3, datatoken: str, payer_key: str, fee: ProviderFeeArgs) -> None:
    """The datatoken pulls a non-zero provider fee from the payer with transferFrom."""
    token, amount = fee[1], fee[2]
    if amount > 0 and int(token, 16) != 0:
        approve(w3, token, payer_key, datatoken, amount)
