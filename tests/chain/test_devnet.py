"""Ocean's contracts on anvil: the address file, publishing, ordering with a provider fee."""

from __future__ import annotations

import json
import time
from importlib import resources
from typing import Any

import pytest
from eth_account import Account
from eth_typing import HexStr
from hexbytes import HexBytes
from web3.contract import Contract
from web3.exceptions import ContractLogicError, Web3RPCError
from web3.logs import DISCARD
from web3.types import TxReceipt

from ocean_provider.devnet.assets import (
    ProviderFee,
    Published,
    mint,
    publish_datatoken,
    reuse_order,
    start_order,
)
from ocean_provider.devnet.contracts import contract_at, read_address_file
from tests.devchain import FUNDING, OCEAN, DevChain, sign_provider_fee

pytestmark = pytest.mark.integration

REVERTED = (ContractLogicError, Web3RPCError)  # anvil raises the first; other nodes the second


def provider_data(datatoken: str, service_id: str = "compute-1") -> bytes:
    """What the reference Provider signs: compact JSON of env, time, datatoken, service."""
    fields = {"environment": "local", "timestamp": int(time.time()), "dt": datatoken}
    return json.dumps({**fields, "id": service_id}, separators=(",", ":")).encode()


def fee_for(chain: DevChain, published: Published, amount: int = OCEAN) -> ProviderFee:
    return sign_provider_fee(
        chain.provider_key,
        token=chain.deployment.ocean,
        amount=amount,
        provider_data=provider_data(published.datatoken),
        valid_until=int(time.time()) + 600,
    )


def receipt(chain: DevChain, tx: str) -> TxReceipt:
    return chain.w3.eth.get_transaction_receipt(HexStr(tx))


def events(contract: Contract, name: str, rc: TxReceipt) -> list[Any]:
    return list(contract.events[name]().process_receipt(rc, errors=DISCARD))


def ocean_balance(chain: DevChain, who: str) -> int:
    ocean = contract_at(chain.w3, "MockOcean", chain.deployment.ocean)
    balance: int = ocean.functions.balanceOf(who).call()
    return balance


@pytest.fixture
def published(devchain: DevChain) -> Published:
    """A fresh datatoken per test, 10 of it minted to the consumer."""
    p = publish_datatoken(devchain.w3, devchain.deployment, devchain.publisher_key)
    mint(devchain.w3, p.datatoken, devchain.publisher_key, devchain.consumer, 10 * OCEAN)
    return p


def test_address_file_has_the_development_entry_in_the_package_format(devchain: DevChain) -> None:
    written = json.loads(devchain.address_file.read_text())
    packaged = json.loads((resources.files("addresses") / "address.json").read_text())
    entry, sepolia = written["development"], packaged["sepolia"]

    assert list(written) == ["development"]
    assert entry["chainId"] == 8996
    assert set(entry) <= set(sepolia)
    assert {k: type(v) for k, v in entry.items()} == {k: type(sepolia[k]) for k in entry}
    assert set(entry["ERC20Template"]) == set(entry["ERC721Template"]) == {"1"}
    assert entry["ERC721Factory"] == devchain.deployment.factory
    assert read_address_file(devchain.address_file) == devchain.deployment


def test_deployment_is_wired_to_the_router(devchain: DevChain) -> None:
    d = devchain.deployment
    router = contract_at(devchain.w3, "FactoryRouter", d.router)
    assert router.functions.factory().call() == d.factory
    assert router.functions.isFixedRateContract(d.fixed_rate).call()
    assert router.functions.isDispenserContract(d.dispenser).call()
    assert router.functions.getOPCCollector().call() == d.opc_collector
    assert d.start_block <= devchain.w3.eth.block_number


def test_funded_parties_hold_ocean(devchain: DevChain) -> None:
    for who in (devchain.publisher, devchain.consumer, devchain.other_consumer):
        assert ocean_balance(devchain, who) >= FUNDING - 10 * OCEAN  # tests may have paid fees


def test_publish_gives_the_publisher_an_nft_with_one_datatoken(
    devchain: DevChain, published: Published
) -> None:
    nft = contract_at(devchain.w3, "ERC721Template", published.nft)
    dt = contract_at(devchain.w3, "ERC20Template", published.datatoken)
    assert nft.functions.ownerOf(1).call() == devchain.publisher
    assert nft.functions.getTokensList().call() == [published.datatoken]
    assert dt.functions.getERC721Address().call() == published.nft
    assert dt.functions.isMinter(devchain.publisher).call()
    assert dt.functions.getPaymentCollector().call() == devchain.publisher
    assert dt.functions.balanceOf(devchain.consumer).call() == 10 * OCEAN


def test_start_order_pays_a_datatoken_and_the_provider_fee(
    devchain: DevChain, published: Published
) -> None:
    fee = fee_for(devchain, published)
    provider_before = ocean_balance(devchain, devchain.provider)

    tx = start_order(
        devchain.w3,
        published.datatoken,
        devchain.consumer_key,
        consumer=devchain.consumer,
        service_index=0,
        provider_fee=fee,
    )

    dt = contract_at(devchain.w3, "ERC20Template", published.datatoken)
    rc = receipt(devchain, tx)
    [started] = events(dt, "OrderStarted", rc)
    assert started["address"] == published.datatoken
    assert started["args"]["consumer"] == devchain.consumer
    assert started["args"]["payer"] == devchain.consumer
    assert started["args"]["amount"] == OCEAN
    assert started["args"]["serviceIndex"] == 0
    [logged_fee] = events(dt, "ProviderFee", rc)
    assert logged_fee["args"]["providerFeeAddress"] == devchain.provider
    assert logged_fee["args"]["providerFeeAmount"] == OCEAN
    assert HexBytes(logged_fee["args"]["providerData"]).to_0x_hex() == fee["providerData"]
    assert ocean_balance(devchain, devchain.provider) == provider_before + OCEAN
    assert dt.functions.balanceOf(devchain.consumer).call() == 9 * OCEAN


@pytest.mark.parametrize(
    "tamper",
    [
        {"providerFeeAmount": 2 * OCEAN},
        {"providerFeeAmount": 0},
        {"validUntil": 1},
        {"providerData": "0x" + b'{"environment":"other"}'.hex()},
        {"providerFeeAddress": Account.create().address},
    ],
    ids=["amount-raised", "amount-zeroed", "valid-until", "provider-data", "fee-address"],
)
def test_a_tampered_provider_fee_reverts(
    devchain: DevChain, published: Published, tamper: dict[str, Any]
) -> None:
    fee: Any = {**fee_for(devchain, published), **tamper}
    with pytest.raises(REVERTED, match="Invalid provider fee"):
        start_order(
            devchain.w3,
            published.datatoken,
            devchain.consumer_key,
            consumer=devchain.consumer,
            service_index=0,
            provider_fee=fee,
        )


def test_reuse_order_points_at_the_first_order(devchain: DevChain, published: Published) -> None:
    first = start_order(
        devchain.w3,
        published.datatoken,
        devchain.consumer_key,
        consumer=devchain.consumer,
        service_index=0,
        provider_fee=fee_for(devchain, published),
    )

    again = reuse_order(
        devchain.w3,
        published.datatoken,
        devchain.consumer_key,
        order_tx=first,
        provider_fee=fee_for(devchain, published),
    )

    dt = contract_at(devchain.w3, "ERC20Template", published.datatoken)
    rc = receipt(devchain, again)
    [reused] = events(dt, "OrderReused", rc)
    assert HexBytes(reused["args"]["orderTxId"]).to_0x_hex() == first
    assert reused["args"]["caller"] == devchain.consumer
    assert len(events(dt, "ProviderFee", rc)) == 1
    assert events(dt, "OrderStarted", rc) == []
