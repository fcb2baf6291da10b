"""DDO tests: published assets on anvil (the session ``devchain``), resolvers on a fake clock.

``published``: a dataset (compute service trusting the algorithm) and an algorithm,
published once per session as ocean.py does, encrypted to the devchain's provider key.
``onchain``: a fresh index file and on-chain resolver per test, on a clock the test moves.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ocean_provider.chain.rpc import Chains
from ocean_provider.compute.interfaces import Asset
from ocean_provider.ddo.crypto import ProviderCipher
from ocean_provider.ddo.index import Factory, NftIndex
from ocean_provider.ddo.onchain import OnChainDdoResolver
from ocean_provider.devnet.assets import (
    SAMPLE_CONTAINER,
    PublishedAsset,
    algorithm_ddo,
    cipher_encrypt,
    dataset_ddo,
    publish_asset,
    trusted_algorithm,
    url_file,
)
from tests.devchain import DevChain

CHAIN = 8996
PROVIDER_URL = "http://provider.test"
ALGORITHM_CODE = b"print('hello')\n"


class FakeClock:
    """Monotonic time that moves a microsecond per read, and as far as the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 1e-6
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingFiles:
    """Stands in for ``ddo.files.ServiceFiles``: records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def service_files(self, asset: Asset, service_id: str) -> list[dict[str, Any]]:
        self.asked.append((asset.did, service_id))
        return [url_file(f"http://files.test/{service_id}")]


@dataclass
class Setup:
    chains: Chains
    index: NftIndex
    resolver: OnChainDdoResolver
    clock: FakeClock
    files: RecordingFiles = field(default_factory=RecordingFiles)

    def calls(self) -> int:
        return self.chains.calls


def make_setup(chain: DevChain, path: Path, **index_options: Any) -> Setup:
    clock = FakeClock()
    chains = Chains({CHAIN: chain.url}, timeout=5)
    factory = Factory(chain.deployment.factory, chain.deployment.start_block)
    index = NftIndex(
        path, chains, {CHAIN: factory}, clock=clock, sleep=clock.advance, **index_options
    )
    files = RecordingFiles()
    ciphers = {CHAIN: ProviderCipher(chain.provider_key)}
    resolver = OnChainDdoResolver(index, ciphers, files, ttl=1.0, clock=clock)
    return Setup(chains, index, resolver, clock, files)


@dataclass(frozen=True)
class Published:
    dataset: PublishedAsset
    algorithm: PublishedAsset


def encrypt_for(chain: DevChain) -> Any:
    return cipher_encrypt(ProviderCipher(chain.provider_key))


def publish_dataset(chain: DevChain, name: str = "Dataset", **options: Any) -> PublishedAsset:
    template = dataset_ddo(
        name=name, files=[url_file("http://files.test/data.csv")], service_endpoint=PROVIDER_URL
    )
    return publish_asset(
        chain.w3,
        chain.deployment,
        chain.publisher_key,
        template,
        encrypt=encrypt_for(chain),
        provider_url=PROVIDER_URL,
        provider_address=chain.provider,
        **options,
    )


@pytest.fixture(scope="session")
def published(devchain: DevChain) -> Iterator[Published]:
    encrypt = encrypt_for(devchain)
    algorithm = publish_asset(
        devchain.w3,
        devchain.deployment,
        devchain.publisher_key,
        algorithm_ddo(
            name="Algorithm",
            files=[url_file("http://files.test/algorithm.py")],
            service_endpoint=PROVIDER_URL,
        ),
        encrypt=encrypt,
        name="Algo NFT",
        symbol="ALGO",
    )
    dataset = publish_asset(
        devchain.w3,
        devchain.deployment,
        devchain.publisher_key,
        dataset_ddo(
            name="Dataset",
            files=[url_file("http://files.test/data.csv")],
            service_endpoint=PROVIDER_URL,
            allow_raw_algorithm=True,
            trusted_algorithms=[
                trusted_algorithm(algorithm.did, SAMPLE_CONTAINER, [ALGORITHM_CODE])
            ],
            trusted_publishers=[devchain.publisher],
            timeout=600,
        ),
        encrypt=encrypt,
        name="Data NFT",
        symbol="DATA",
    )
    yield Published(dataset, algorithm)


@pytest.fixture
def onchain(devchain: DevChain, tmp_path: Path) -> Setup:
    return make_setup(devchain, tmp_path / "ddo-index.db")
