"""Ordering on chain: pay a datatoken and the Provider's fee with ``startOrder``, as the
Provider's order check expects (``chain.orders``).

Each transaction is signed here with the payer's key and sent raw, as a wallet would.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract.contract import ContractFunction

from ocean_provider.chain.artifacts import abi
from ocean_provider.chain.fees import ZERO_ADDRESS, ProviderFee
from ocean_provider.client.errors import OrderReverted

GAS_MARGIN = 1.2  # on top of the node's estimate
# startOrder's consumeMarketFee (address, token, amount): none
NO_CONSUME_MARKET_FEE = (ZERO_ADDRESS, ZERO_ADDRESS, 0)

ProviderFeeArgs = tuple[ChecksumAddress, ChecksumAddress, int, int, bytes, bytes, int, bytes]


def provider_fee_args(fee: ProviderFee) -> ProviderFeeArgs:
    """``fee`` as the contracts' ``providerFee`` tuple
    ``(address, address, uint256, uint8, bytes32, bytes32, uint256, bytes)``."""
    if len(fee.r) != 32 or len(fee.s) != 32:
        raise ValueError("a provider fee's r and s are 32 bytes each")
    return (
        Web3.to_checksum_address(fee.address),
        Web3.to_checksum_address(fee.token),
        fee.amount,
        fee.v,
        fee.r,
        fee.s,
        fee.valid_until,
        fee.data,
    )


def order(
    w3: Web3,
    payer_key: str,
    datatoken: str,
    provider_fee: ProviderFee,
    *,
    service_index: int,
    consumer: str | None = None,
    timeout: float = 60,
) -> str:
    """Pay one ``datatoken`` for the DDO's service number ``service_index`` (its position in
    ``services``) on behalf of ``consumer`` (the payer by default), plus ``provider_fee``:
    the order's transaction hash (0x hex), to hand the Provider as ``transferTxId``.

    A non-zero fee is approved first, for the datatoken to pull. Each transaction's
    receipt is awaited up to ``timeout`` seconds (web3's ``TimeExhausted`` after that);
    a reverted one raises ``OrderReverted``, and one the node already knows would revert
    raises web3's ``ContractLogicError`` before it is sent.
    """
    fee = provider_fee_args(provider_fee)
    token = _erc20(w3, datatoken)
    if provider_fee.amount > 0 and int(provider_fee.token, 16) != 0:
        approval = _erc20(w3, provider_fee.token).functions.approve(token.address, fee[2])
        _transact(w3, payer_key, approval, timeout)
    owner = Web3.to_checksum_address(consumer or Account.from_key(payer_key).address)
    call = token.functions.startOrder(owner, service_index, fee, NO_CONSUME_MARKET_FEE)
    return _transact(w3, payer_key, call, timeout)


def _erc20(w3: Web3, address: str) -> Any:
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi("ERC20Template"))


def _transact(w3: Web3, key: str, call: ContractFunction, timeout: float) -> str:
    """Sign and send ``call``, wait for its receipt: its transaction hash (0x hex)."""
    sender = Account.from_key(key).address
    tx = call.build_transaction(
        {
            "from": sender,
            "nonce": w3.eth.get_transaction_count(sender, "pending"),
            "gas": int(call.estimate_gas({"from": sender}) * GAS_MARGIN),
        }
    )
    signed = Account.sign_transaction(dict(tx), key)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout)
    if receipt.get("status") != 1:
        raise OrderReverted(f"{call.fn_name} in transaction {tx_hash.to_0x_hex()} reverted")
    return tx_hash.to_0x_hex()
