"""The order verifier against real orders on anvil: one accepted, then each refusal by code."""

from __future__ import annotations

import time
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_account import Account
from web3 import Web3

from ocean_provider.chain.events import event
from ocean_provider.chain.issuer import ChainFeeIssuer
from ocean_provider.chain.orders import ChainOrderVerifier
from ocean_provider.chain.reads import ChainReader
from ocean_provider.chain.rpc import Chains
from ocean_provider.client.orders import NO_CONSUME_MARKET_FEE
from ocean_provider.compute.interfaces import Asset
from ocean_provider.devnet.assets import (
    approve,
    provider_fee_args,
    reuse_order,
)
from ocean_provider.devnet.contracts import contract_at
from ocean_provider.errors import ChainNotSupported, ChainUnavailable, ComputeRefused
from tests.chain.conftest import CHAIN, Market, datatoken_of
from tests.conftest import OTHER_KEY

pytestmark = pytest.mark.integration

# A contract that emits whatever it is told: calldata = topic0 | topic1 | topic2 | data,
# logged as LOG3 (init code copies the 24-byte runtime and returns it).
LOOKALIKE = "0x601880600b6000396000f3" + "60603603806060600037604035602035600035836000a300"


def refusal(market: Market, tx_id: str, **kwargs: Any) -> str:
    with pytest.raises(ComputeRefused) as refused:
        market.verify(tx_id, **kwargs)
    assert refused.value.resource == "dataset.transferTxId"
    return refused.value.code


def test_an_initialized_and_paid_order_is_accepted(market: Market) -> None:
    fee = market.fee()
    # 0.01 OCEAN a minute for the hour to validUntil, counted in whole seconds from now
    assert 599 * 10**15 < int(fee["providerFeeAmount"]) <= 6 * 10**17
    tx = market.order(fee=fee)
    order = market.verify(tx)
    assert order.tx_id == order.order_tx_id == tx
    assert order.fee_token == market.chain.deployment.ocean
    assert order.fee_amount == int(fee["providerFeeAmount"])
    assert order.valid_until == fee["validUntil"]


def test_the_order_may_name_the_consumer_or_the_payer(market: Market) -> None:
    # C2D as the reference runs it: the order's consumer is the environment's address
    from ocean_provider.devnet.assets import start_order

    tx = start_order(
        market.chain.w3,
        datatoken_of(market.asset),
        market.chain.consumer_key,
        consumer=market.chain.provider,
        service_index=1,
        provider_fee=market.fee(),
    )
    assert market.verify(tx).tx_id == tx  # the signer paid
    assert refusal(market, tx, consumer=market.chain.other_consumer) == "order_wrong_consumer"


def test_wrong_consumer(market: Market) -> None:
    tx = market.order()
    assert refusal(market, tx, consumer=market.chain.other_consumer) == "order_wrong_consumer"


def test_wrong_service_index(market: Market) -> None:
    tx = market.order(service_index=2)  # paid for position 2, fee names compute-1
    assert refusal(market, tx) == "order_wrong_service"


def test_order_of_another_service_of_the_same_token(market: Market) -> None:
    tx = market.order(service_id="compute-2")
    assert refusal(market, tx) == "order_wrong_service"
    assert market.verify(tx, service_id="compute-2").tx_id == tx


def test_order_on_another_datatoken(market: Market) -> None:
    tx = market.order(market.other)
    assert refusal(market, tx) == "order_wrong_datatoken"


def test_a_datatoken_that_is_not_the_assets(market: Market) -> None:
    # a DDO naming one asset's NFT with another asset's datatoken
    forged = dict(market.other.ddo, nft=market.asset.ddo["nft"])
    asset = Asset(market.other.did, CHAIN, forged)
    tx = market.order(market.other)
    assert refusal(market, tx, asset=asset) == "datatoken_not_of_asset"


def test_events_from_a_look_alike_contract(market: Market) -> None:
    w3, consumer = market.chain.w3, market.chain.consumer
    lookalike = _send(w3, market.chain.consumer_key, data=LOOKALIKE)["contractAddress"]
    started = event("OrderStarted")
    payer_amount_index = encode(
        ["address", "uint256", "uint256", "uint256", "uint256"],
        [consumer, 10**18, 1, int(time.time()), w3.eth.block_number],
    )
    calldata = (
        started.topic
        + encode(["address"], [consumer])
        + encode(["address"], [consumer])
        + payer_amount_index
    )
    receipt = _send(w3, market.chain.consumer_key, to=lookalike, data="0x" + calldata.hex())
    assert len(receipt["logs"]) == 1 and receipt["logs"][0]["topics"][0] == started.topic
    assert refusal(market, receipt["transactionHash"].to_0x_hex()) == "order_wrong_datatoken"


def test_expired_order(market: Market) -> None:
    tx = market.order()
    late = market.verifier(clock_offset=3601)  # compute-1's timeout is 3600 s
    assert refusal(market, tx, verifier=late) == "order_expired"


def test_expired_provider_fee_and_its_grace(market: Market) -> None:
    valid_until = int(time.time()) + 60
    fee = market.fee(service_id="compute-2", valid_until=valid_until)  # no order timeout
    tx = market.order(service_id="compute-2", fee=fee)
    within_grace = market.verifier(clock_offset=60 + 30)
    assert market.verify(tx, service_id="compute-2", verifier=within_grace).tx_id == tx
    late = market.verifier(clock_offset=60 + 120)
    code = refusal(market, tx, service_id="compute-2", verifier=late)
    assert code == "provider_fee_expired"


def test_fee_signed_by_another_key(market: Market) -> None:
    stranger = ChainFeeIssuer(market.reader, {CHAIN: OTHER_KEY})
    tx = market.order(fee=market.fee(issuer=stranger))
    assert refusal(market, tx) == "provider_fee_wrong_provider"


def test_fee_for_another_environment(market: Market) -> None:
    tx = market.order()
    elsewhere = dict(market.environment, id="env-2")
    assert refusal(market, tx, environment=elsewhere) == "provider_fee_wrong_environment"


def test_fee_for_another_service(market: Market) -> None:
    tx = market.order(service_index=1, fee=market.fee(service_id="compute-2"))
    assert refusal(market, tx) == "provider_fee_missing"


def test_reused_order_is_followed_to_the_original(market: Market) -> None:
    env2 = dict(market.environment, id="env-2")
    first = market.order()
    again = reuse_order(
        market.chain.w3,
        datatoken_of(market.asset),
        market.chain.consumer_key,
        order_tx=first,
        provider_fee=market.fee(environment=env2),
    )
    order = market.verify(again, environment=env2)
    assert order.tx_id == again and order.order_tx_id == first
    assert refusal(market, again) == "provider_fee_wrong_environment"  # its own fee counts
    stranger = market.chain.other_consumer
    assert refusal(market, again, consumer=stranger, environment=env2) == "order_wrong_consumer"


def test_reuse_of_an_expired_order(market: Market) -> None:
    first = market.order()
    again = reuse_order(
        market.chain.w3,
        datatoken_of(market.asset),
        market.chain.consumer_key,
        order_tx=first,
        provider_fee=market.fee(),
    )
    late = market.verifier(clock_offset=3601)  # timed from the reuse, which is as old
    assert refusal(market, again, verifier=late) == "order_expired"


def test_unknown_transaction_fails_fast(market: Market) -> None:
    started = time.monotonic()
    assert refusal(market, "0x" + "ab" * 32) == "order_not_found"
    assert time.monotonic() - started < 5  # bounded by receipt_wait, not a 120 s wait


def test_pending_transaction_fails_fast_with_its_own_code(market: Market) -> None:
    w3 = market.chain.w3
    fee = market.fee()
    dt_address = datatoken_of(market.asset)
    amount = int(fee["providerFeeAmount"])
    approve(w3, fee["providerFeeToken"], market.chain.consumer_key, dt_address, amount)
    w3.provider.make_request("evm_setAutomine", [False])
    try:
        dt = contract_at(w3, "ERC20Template", dt_address)
        call = dt.functions.startOrder(
            market.chain.consumer, 1, provider_fee_args(fee), NO_CONSUME_MARKET_FEE
        )
        tx = _send(
            w3,
            market.chain.consumer_key,
            wait=False,
            gas=400_000,
            to=dt.address,
            data=call._encode_transaction_data(),
        )
        started = time.monotonic()
        assert refusal(market, tx) == "order_pending"
        assert time.monotonic() - started < 5
    finally:
        w3.provider.make_request("evm_setAutomine", [True])
        w3.provider.make_request("evm_mine", [])
    assert market.verify(tx).tx_id == tx  # once mined, the same order is fine


def test_failed_transaction(market: Market) -> None:
    w3 = market.chain.w3
    fee = market.fee()
    fee["providerFeeAmount"] = int(fee["providerFeeAmount"]) + 1  # "Invalid provider fee"
    dt = contract_at(w3, "ERC20Template", datatoken_of(market.asset))
    call = dt.functions.startOrder(
        market.chain.consumer, 1, provider_fee_args(fee), NO_CONSUME_MARKET_FEE
    )
    data = call._encode_transaction_data()
    receipt = _send(w3, market.chain.consumer_key, to=dt.address, data=data, gas=400_000)
    assert receipt["status"] == 0
    assert refusal(market, receipt["transactionHash"].to_0x_hex()) == "order_failed"


def test_confirmations_are_waited_for(market: Market) -> None:
    tx = market.order()
    strict = ChainReader(market.reader.chains, confirmations=1000, receipt_wait=0.2)
    verifier = ChainOrderVerifier(strict, {CHAIN: market.chain.provider})
    assert refusal(market, tx, verifier=verifier) == "order_not_confirmed"


def test_fees_paid_must_cover_the_environment(market: Market) -> None:
    verifier = market.verifier()
    paid = market.verify(market.order())
    verifier.check_fees(CHAIN, [paid], market.environment)
    dearer = dict(market.environment, priceMin="1")
    with pytest.raises(ComputeRefused) as refused:
        verifier.check_fees(CHAIN, [paid], dearer)
    assert refused.value.code == "fees_not_paid"
    free = dict(market.environment, priceMin=0)
    verifier.check_fees(CHAIN, [paid], free)


def test_one_rpc_call_per_mined_order_and_none_once_cached(market: Market) -> None:
    tx = market.order()
    reader = ChainReader(Chains({CHAIN: market.chain.url}, timeout=5))
    verifier = ChainOrderVerifier(reader, {CHAIN: market.chain.provider})
    verifier.verify(**_request(market, tx))  # warms isDeployed
    second = market.order()
    before = reader.chains.calls
    verifier.verify(**_request(market, second))
    assert reader.chains.calls - before == 1  # the receipt
    verifier.verify(**_request(market, second))
    assert reader.chains.calls - before == 1


def test_an_unknown_chain_and_a_dead_rpc_are_clear_errors(market: Market) -> None:
    chains = Chains({CHAIN: "http://127.0.0.1:9/secret-key"}, timeout=0.5, backoff=0)
    with pytest.raises(ChainNotSupported):
        chains.web3(1)
    reader = ChainReader(chains)
    verifier = ChainOrderVerifier(reader, {CHAIN: market.chain.provider})
    with pytest.raises(ChainUnavailable) as down:
        verifier.verify(**_request(market, "0x" + "cd" * 32))
    assert "secret" not in down.value.message and "127.0.0.1" not in down.value.message
    assert down.value.status == 503


def _request(market: Market, tx: str) -> dict[str, Any]:
    return {
        "asset": market.asset,
        "service_id": "compute-1",
        "tx_id": tx,
        "consumer": market.chain.consumer,
        "environment": market.environment,
        "resource": "dataset",
    }


def _send(w3: Web3, key: str, gas: int = 200_000, wait: bool = True, **fields: Any) -> Any:
    """A raw transaction with a fixed gas limit (so a reverting call is still mined)."""
    sender = Account.from_key(key)
    tx = {
        "from": sender.address,
        "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
        "gas": gas,
        "maxFeePerGas": w3.eth.gas_price * 2,
        "maxPriorityFeePerGas": 1,
        "chainId": CHAIN,
        "value": 0,
        **fields,
    }
    sent = w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
    return w3.eth.wait_for_transaction_receipt(sent) if wait else sent.to_0x_hex()
