"""DID resolution from chain: cold (empty index, a chain with --assets published) and warm.

Starts anvil, deploys Ocean's contracts and publishes ``--assets`` sample datasets
the way ocean.py does (DDO 4.1.0, files and DDO encrypted to the provider key,
lzma + ECIES flags), then times the on-chain resolver and counts its RPC round
trips (``Chains.calls``; a JSON-RPC batch is one):

- cold, empty index: the first resolve, which scans the chain from the factory's block;
- cold DDO: each DID once more through an empty DDO cache (index up to date);
- warm within the TTL: cached DDOs, no chain call;
- warm after the TTL: one index scan, then the cached DDO (its NFT did not change);
- unknown DID: one scan, then ``did_not_found``;
- changed metadata: the scan that sees the update, then the DDO read again.

The resolver's clock is simulated, so "after the TTL" needs no sleeping; times are wall
time. ``--blocks-per-call`` bounds each ``eth_getLogs`` range, as on a public RPC.

    .venv/bin/python benchmarks/ddo_resolution.py [--assets 300] [--blocks-per-call 2000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from web3 import Web3

from ocean_provider.chain.rpc import Chains
from ocean_provider.compute.interfaces import Asset
from ocean_provider.ddo.crypto import ProviderCipher
from ocean_provider.ddo.index import Factory, NftIndex
from ocean_provider.ddo.onchain import OnChainDdoResolver
from ocean_provider.devnet.anvil import ACCOUNT_KEYS, DEV_CHAIN_ID, Anvil, find_anvil
from ocean_provider.devnet.assets import (
    PublishedAsset,
    cipher_encrypt,
    dataset_ddo,
    publish_asset,
    set_metadata,
    url_file,
)
from ocean_provider.devnet.contracts import Deployment, deploy
from ocean_provider.errors import ComputeRefused

DEPLOYER, PUBLISHER, PROVIDER = ACCOUNT_KEYS[0], ACCOUNT_KEYS[1], ACCOUNT_KEYS[5]
TTL = 1.0


class SimulatedClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1e-6
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class NoFiles:
    def service_files(self, asset: Asset, service_id: str) -> list[dict[str, object]]:
        return []


class Bench:
    def __init__(self, url: str, deployment: Deployment, path: Path, blocks_per_call: int):
        self.clock = SimulatedClock()
        self.chains = Chains({DEV_CHAIN_ID: url}, timeout=10)
        factory = Factory(deployment.factory, deployment.start_block)
        self.index = NftIndex(
            path,
            self.chains,
            {DEV_CHAIN_ID: factory},
            blocks_per_call=blocks_per_call,
            calls_per_scan=1_000_000,
            clock=self.clock,
            sleep=self.clock.advance,
        )
        self.resolver = self.new_resolver()

    def new_resolver(self) -> OnChainDdoResolver:
        ciphers = {DEV_CHAIN_ID: ProviderCipher(PROVIDER)}
        return OnChainDdoResolver(self.index, ciphers, NoFiles(), ttl=TTL, clock=self.clock)

    def measure(
        self, label: str, dids: list[str], before: Callable[[], None] = lambda: None
    ) -> None:
        """Resolve each DID once (``before`` each); print time per resolve and calls."""
        times = []
        calls = self.chains.calls
        for did in dids:
            before()
            started = time.perf_counter()
            try:
                self.resolver.resolve(did)
            except ComputeRefused:
                pass
            times.append(time.perf_counter() - started)
        per_call = (self.chains.calls - calls) / len(dids)
        mean, worst = statistics.fmean(times), max(times)
        print(
            f"{label:<34} {len(dids):>5} x  mean {_ms(mean):>9}  p50 "
            f"{_ms(statistics.median(times)):>9}  max {_ms(worst):>9}  "
            f"RPC calls/resolve {per_call:.2f}"
        )


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.1f} us"


def publish(w3: Web3, deployment: Deployment, count: int) -> list[PublishedAsset]:
    encrypt = cipher_encrypt(ProviderCipher(PROVIDER))
    published = []
    for i in range(count):
        template = dataset_ddo(
            name=f"Dataset {i}",
            files=[url_file(f"http://files.test/{i}.csv")],
            service_endpoint="http://provider.test",
            allow_raw_algorithm=True,
        )
        published.append(publish_asset(w3, deployment, PUBLISHER, template, encrypt=encrypt))
    return published


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--assets", type=int, default=300)
    parser.add_argument("--blocks-per-call", type=int, default=2000)
    args = parser.parse_args()
    with Anvil(binary=find_anvil()) as anvil, tempfile.TemporaryDirectory() as tmp:
        w3 = Web3(Web3.HTTPProvider(anvil.url))
        deployment = deploy(w3, DEPLOYER)
        started = time.perf_counter()
        assets = publish(w3, deployment, args.assets)
        took = time.perf_counter() - started
        blocks = w3.eth.block_number - deployment.start_block
        print(f"published {len(assets)} assets in {took:.1f} s; {blocks} blocks since the factory")
        dids = [asset.did for asset in assets]
        bench = Bench(anvil.url, deployment, Path(tmp) / "index.db", args.blocks_per_call)

        bench.measure("cold, empty index (first DID)", dids[-1:])
        bench.resolver = bench.new_resolver()
        bench.measure("cold DDO (index current)", dids)
        bench.measure("warm within the TTL", dids * 10)
        after_ttl = dids[:30]  # 30 x 1.5 s stays within max_age (60 s): no DDO read again
        bench.measure("warm after the TTL", after_ttl, lambda: bench.clock.advance(TTL + 0.5))
        unknown = ["did:op:" + os.urandom(32).hex() for _ in range(50)]
        bench.measure("unknown DID", unknown, lambda: bench.clock.advance(0.25))
        changed = assets[0]
        renamed = {**changed.ddo, "metadata": {**changed.ddo["metadata"], "name": "Renamed"}}
        set_metadata(
            w3, PUBLISHER, changed.nft, renamed, encrypt=cipher_encrypt(ProviderCipher(PROVIDER))
        )
        bench.measure(
            "changed metadata, after the TTL", [changed.did], lambda: bench.clock.advance(2)
        )
        assert bench.resolver.resolve(changed.did).metadata["name"] == "Renamed"


if __name__ == "__main__":
    main()
