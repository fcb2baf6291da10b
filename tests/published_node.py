"""A node wired as in production on the session's anvil, for end-to-end tests: the
Provider (``create_app(settings)``, no fakes) and the embedded engine on loopback, and
assets published as Ocean's clients publish them (files encrypted through our endpoint):
an algorithm, a dataset that trusts it, and a second dataset. Both consumers hold
datatokens of each."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ocean_provider.app import create_app
from ocean_provider.devnet.assets import (
    SAMPLE_CONTAINER,
    PublishedAsset,
    algorithm_ddo,
    dataset_ddo,
    endpoint_encrypt,
    mint,
    publish_asset,
    trusted_algorithm,
    url_file,
)
from ocean_provider.devnet.embedded import (
    EmbeddedEngine,
    serve_app,
    serve_directory,
    start_embedded_engine,
)
from tests.conftest import make_settings
from tests.devchain import OCEAN, DevChain
from tests.engine.conftest import environment

ENV = "ocean-compute"
NUMBERS = "".join(f"{i}\n" for i in range(1, 101))
SUM_ALGORITHM = b"""
import json, os, pathlib
did = json.loads(os.environ["DIDS"])[0]
numbers = [int(x) for x in (pathlib.Path("/data/inputs") / did / "0").read_text().split()]
pathlib.Path("/data/outputs/sum.txt").write_text(str(sum(numbers)))
print("summed", len(numbers), "numbers")
"""


@dataclass
class Node:
    provider: str
    engine: EmbeddedEngine
    chain: DevChain
    dataset: PublishedAsset
    algorithm: PublishedAsset
    extra: PublishedAsset  # a second dataset, for additionalDatasets


@contextmanager
def published_node(devchain: DevChain, root: Path) -> Iterator[Node]:
    files = root / "files"
    files.mkdir()
    (files / "numbers.csv").write_text(NUMBERS)
    (files / "sum.py").write_bytes(SUM_ALGORITHM)
    served_files = serve_directory(files)
    engine = start_embedded_engine(
        root / "engine", [environment(ENV)], devchain.provider_key, PROVISION_SECONDS="30"
    )
    settings = make_settings(
        root,
        NETWORK_URL=devchain.url,
        PROVIDER_PRIVATE_KEY=devchain.provider_key,
        ADDRESS_FILE=str(devchain.address_file),
        OPERATOR_SERVICE_URL=engine.url,
        ALLOW_PRIVATE_DOWNLOADS="true",  # the files are served on loopback
        REQUEST_TIMEOUT="30",
    )
    provider = serve_app(create_app(settings), "provider")  # production wiring: no fakes
    try:
        encrypt = endpoint_encrypt(provider.url, devchain.deployment.chain_id)
        algorithm = publish_asset(
            devchain.w3,
            devchain.deployment,
            devchain.publisher_key,
            algorithm_ddo(
                name="Sum",
                files=[url_file(f"{served_files.url}/sum.py")],
                service_endpoint=provider.url,
            ),
            encrypt=encrypt,
            name="Sum",
            symbol="SUM",
        )
        dataset = publish_asset(
            devchain.w3,
            devchain.deployment,
            devchain.publisher_key,
            dataset_ddo(
                name="Numbers",
                files=[url_file(f"{served_files.url}/numbers.csv")],
                service_endpoint=provider.url,
                allow_raw_algorithm=True,
                trusted_algorithms=[
                    trusted_algorithm(algorithm.did, SAMPLE_CONTAINER, [SUM_ALGORITHM])
                ],
            ),
            encrypt=encrypt,
            name="Numbers",
            symbol="NUM",
        )
        extra = publish_asset(
            devchain.w3,
            devchain.deployment,
            devchain.publisher_key,
            dataset_ddo(
                name="More numbers",
                files=[url_file(f"{served_files.url}/numbers.csv")],
                service_endpoint=provider.url,
                allow_raw_algorithm=True,
            ),
            encrypt=encrypt,
            name="More",
            symbol="MORE",
        )
        for asset in (dataset, algorithm, extra):
            for holder in (devchain.consumer, devchain.other_consumer):
                mint(devchain.w3, asset.datatoken, devchain.publisher_key, holder, 10 * OCEAN)
        yield Node(provider.url, engine, devchain, dataset, algorithm, extra)
    finally:
        provider.close()
        engine.close()
        served_files.close()
