"""Chain tests run on anvil (the ``devchain`` fixture, from tests/devchain.py).

``market``: two published assets with datatokens the consumers hold, the
Provider's real fee issuer and order verifier against the chain, and a helper
that orders a service the way a consumer does (initialize, then startOrder).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from ocean_provider.chain.issuer import ChainFeeIssuer
from ocean_provider.chain.orders import ChainOrderVerifier
from ocean_provider.chain.reads import ChainReader
from ocean_provider.chain.rpc import Chains
from ocean_provider.compute.interfaces import Asset, VerifiedOrder
from ocean_provider.devnet.assets import ProviderFee, mint, publish_datatoken, start_order
from tests.devchain import OCEAN, DevChain

CHAIN = 8996
ENV_ID = "env-1"
PRICE_PER_MINUTE = "0.01"  # OCEAN: an hour's fee is 0.6 OCEAN


def compute_ddo(did: str, nft: str, datatoken: str) -> dict[str, Any]:
    """A DDO as Aquarius serves it: services in order (their index is what orders name)."""

    def compute(service_id: str, timeout: int) -> dict[str, Any]:
        return {
            "id": service_id,
            "type": "compute",
            "datatokenAddress": datatoken,
            "serviceEndpoint": "http://provider.test",
            "timeout": timeout,
            "compute": {"allowRawAlgorithm": True, "allowNetworkAccess": False},
        }

    access = {"id": "access-0", "type": "access", "datatokenAddress": datatoken}
    return {
        "id": did,
        "chainId": CHAIN,
        "nft": {"address": nft, "state": 0, "owner": "0x" + "0" * 40},
        "metadata": {"type": "dataset", "name": did},
        "services": [access, compute("compute-1", 3600), compute("compute-2", 0)],
    }


@dataclass
class Market:
    chain: DevChain
    asset: Asset
    other: Asset  # another publisher's asset, with its own datatoken
    issuer: ChainFeeIssuer
    reader: ChainReader
    environment: dict[str, Any] = field(default_factory=dict)

    def verifier(self, clock_offset: float = 0) -> ChainOrderVerifier:
        return ChainOrderVerifier(
            self.reader, {CHAIN: self.chain.provider}, clock=lambda: time.time() + clock_offset
        )

    def fee(
        self,
        asset: Asset | None = None,
        service_id: str = "compute-1",
        *,
        environment: dict[str, Any] | None = None,
        valid_until: int | None = None,
        issuer: ChainFeeIssuer | None = None,
    ) -> ProviderFee:
        asset = asset or self.asset
        reply = (issuer or self.issuer).issue(
            chain_id=CHAIN,
            datatoken=datatoken_of(asset),
            service_id=service_id,
            environment=environment or self.environment,
            valid_until=valid_until or int(time.time()) + 3600,
            charge=True,
        )
        return cast(ProviderFee, reply)

    def order(
        self,
        asset: Asset | None = None,
        service_id: str = "compute-1",
        *,
        service_index: int | None = None,
        payer_key: str | None = None,
        fee: ProviderFee | None = None,
    ) -> str:
        asset = asset or self.asset
        index = service_index if service_index is not None else service_position(asset, service_id)
        return start_order(
            self.chain.w3,
            datatoken_of(asset),
            payer_key or self.chain.consumer_key,
            consumer=self.chain.address(payer_key or self.chain.consumer_key),
            service_index=index,
            provider_fee=fee or self.fee(asset, service_id),
        )

    def verify(
        self,
        tx_id: str,
        *,
        asset: Asset | None = None,
        service_id: str = "compute-1",
        consumer: str | None = None,
        environment: dict[str, Any] | None = None,
        verifier: ChainOrderVerifier | None = None,
    ) -> VerifiedOrder:
        return (verifier or self.verifier()).verify(
            asset=asset or self.asset,
            service_id=service_id,
            tx_id=tx_id,
            consumer=consumer or self.chain.consumer,
            environment=environment or self.environment,
            resource="dataset",
        )


def datatoken_of(asset: Asset) -> str:
    return str(asset.ddo["services"][1]["datatokenAddress"])


def service_position(asset: Asset, service_id: str) -> int:
    ids = [service["id"] for service in asset.ddo["services"]]
    return ids.index(service_id)


def publish(chain: DevChain, did: str, name: str) -> Asset:
    published = publish_datatoken(chain.w3, chain.deployment, chain.publisher_key, name=name)
    for holder in (chain.consumer, chain.other_consumer):
        mint(chain.w3, published.datatoken, chain.publisher_key, holder, 100 * OCEAN)
    return Asset(did, CHAIN, compute_ddo(did, published.nft, published.datatoken))


@pytest.fixture(scope="session")
def market(devchain: DevChain) -> Iterator[Market]:
    chains = Chains({CHAIN: devchain.url}, timeout=5)
    reader = ChainReader(chains, receipt_wait=0.5, poll=0.1)
    yield Market(
        chain=devchain,
        asset=publish(devchain, "did:op:" + "1" * 64, "Sample"),
        other=publish(devchain, "did:op:" + "2" * 64, "Other"),
        issuer=ChainFeeIssuer(reader, {CHAIN: devchain.provider_key}),
        reader=reader,
        environment={
            "id": ENV_ID,
            "priceMin": PRICE_PER_MINUTE,
            "feeToken": devchain.deployment.ocean,
            "consumerAddress": devchain.provider,
        },
    )
