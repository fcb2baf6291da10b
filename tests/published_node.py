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
    trusted_algorithm,
    url_file,
)
from ocean_provider.devnet.embedded import (
    EmbeddedEngine,
    serve_app,
    serve_directory,
    start_embedded_engine,
)
from ocean_provider.devnet.samples import SamplePublisher
from tests.conftest import make_settings
from tests.devchain import DevChain
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
def published_node(devchain: DevChain, root: Path, **settings: str) -> Iterator[Node]:
    """``settings`` are extra Provider settings by their variable names."""
    served_files = serve_directory(write_sample_files(root / "files"))
    engine = start_embedded_engine(
        root / "engine", [environment(ENV)], devchain.provider_key, PROVISION_SECONDS="30"
    )
    provider_settings = make_settings(
        root,
        NETWORK_URL=devchain.url,
        PROVIDER_PRIVATE_KEY=devchain.provider_key,
        ADDRESS_FILE=str(devchain.address_file),
        OPERATOR_SERVICE_URL=engine.url,
        ALLOW_PRIVATE_DOWNLOADS="true",  # the files are served on loopback
        REQUEST_TIMEOUT="30",
        **settings,
    )
    provider = serve_app(create_app(provider_settings), "provider")  # production wiring: no fakes
    try:
        samples = publish_samples(devchain, provider.url, served_files.url)
        yield Node(provider.url, engine, devchain, *samples)
    finally:
        provider.close()
        engine.close()
        served_files.close()


def publish_samples(
    devchain: DevChain, provider_url: str, files_url: str
) -> tuple[PublishedAsset, PublishedAsset, PublishedAsset]:
    """The dataset (trusting the algorithm), the algorithm and a second dataset, published
    with files under ``files_url`` encrypted through ``provider_url``; both consumers hold
    datatokens of each."""
    publish = SamplePublisher(
        devchain.w3,
        devchain.deployment,
        devchain.publisher_key,
        (devchain.consumer, devchain.other_consumer),
        provider_url=provider_url,
        files_url=files_url,
    ).publish
    algorithm = publish(
        algorithm_ddo(
            name="Sum", files=[url_file(f"{files_url}/sum.py")], service_endpoint=provider_url
        ),
        "Sum",
        "SUM",
    )
    dataset = publish(
        dataset_ddo(
            name="Numbers",
            files=[url_file(f"{files_url}/numbers.csv")],
            service_endpoint=provider_url,
            allow_raw_algorithm=True,
            trusted_algorithms=[
                trusted_algorithm(algorithm.did, SAMPLE_CONTAINER, [SUM_ALGORITHM])
            ],
        ),
        "Numbers",
        "NUM",
    )
    extra = publish(
        dataset_ddo(
            name="More numbers",
            files=[url_file(f"{files_url}/numbers.csv")],
            service_endpoint=provider_url,
            allow_raw_algorithm=True,
        ),
        "More",
        "MORE",
    )
    return dataset, algorithm, extra


def write_sample_files(root: Path) -> Path:
    """The files the samples point at: ``numbers.csv`` and ``sum.py``."""
    root.mkdir()
    (root / "numbers.csv").write_text(NUMBERS)
    (root / "sum.py").write_bytes(SUM_ALGORITHM)
    return root
