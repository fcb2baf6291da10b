"""The client against a real stack: anvil with Ocean's contracts, a Provider wired as in
production, the embedded engine in bubblewrap, and assets published as Ocean's clients
publish them. Orders are the client's own ``order``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from ocean_provider.app import create_app
from ocean_provider.client import (
    FeeItem,
    Ordered,
    ProviderClient,
    ProviderRefused,
    RawAlgorithm,
    ServiceRef,
    order,
)
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
from ocean_provider.devnet.embedded import serve_app, serve_directory, start_embedded_engine
from ocean_provider.wire.jobs import JobStatus
from tests.conftest import make_settings
from tests.devchain import OCEAN, DevChain
from tests.engine.conftest import environment

pytestmark = pytest.mark.integration

ENV = "ocean-compute"
SUM_ALGORITHM = b"""
import json, os, pathlib
did = json.loads(os.environ["DIDS"])[0]
numbers = [int(x) for x in (pathlib.Path("/data/inputs") / did / "0").read_text().split()]
pathlib.Path("/data/outputs/sum.txt").write_text(str(sum(numbers)))
"""
SLEEPER = RawAlgorithm(SAMPLE_CONTAINER, rawcode="import time\ntime.sleep(60)\n")


@dataclass
class Stack:
    provider: str
    chain: DevChain
    dataset: PublishedAsset
    algorithm: PublishedAsset


@pytest.fixture(scope="module")
def stack(devchain: DevChain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("client-stack")
    files = root / "files"
    files.mkdir()
    (files / "numbers.csv").write_text("".join(f"{i}\n" for i in range(1, 101)))
    (files / "sum.py").write_bytes(SUM_ALGORITHM)
    served = serve_directory(files)
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
    provider = serve_app(create_app(settings), "provider")
    try:
        encrypt = endpoint_encrypt(provider.url, devchain.deployment.chain_id)
        algorithm = publish_asset(
            devchain.w3,
            devchain.deployment,
            devchain.publisher_key,
            algorithm_ddo(
                name="Sum", files=[url_file(f"{served.url}/sum.py")], service_endpoint=provider.url
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
                files=[url_file(f"{served.url}/numbers.csv")],
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
        for asset in (dataset, algorithm):
            for holder in (devchain.consumer, devchain.other_consumer):
                mint(devchain.w3, asset.datatoken, devchain.publisher_key, holder, 10 * OCEAN)
        yield Stack(provider.url, devchain, dataset, algorithm)
    finally:
        provider.close()
        engine.close()
        served.close()


def paid(stack: Stack, key: str, item: FeeItem) -> str:
    """The order for ``item``: placed now with its provider fee (service 0 of the DDO)."""
    assert item.datatoken is not None and item.provider_fee is not None, item
    return order(stack.chain.w3, key, item.datatoken, item.provider_fee, service_index=0)


def test_published_algorithm_flow(stack: Stack) -> None:
    key = stack.chain.consumer_key
    client = ProviderClient(stack.provider, key)
    assert [env["id"] for env in client.environments(stack.chain.deployment.chain_id)] == [ENV]
    fees = client.initialize(
        [ServiceRef(stack.dataset.did, "compute")],
        ServiceRef(stack.algorithm.did, "access"),
        ENV,
        int(time.time()) + 3600,
    )
    assert fees.algorithm is not None
    dataset = Ordered(stack.dataset.did, "compute", paid(stack, key, fees.datasets[0]))
    algorithm = Ordered(stack.algorithm.did, "access", paid(stack, key, fees.algorithm))

    started = client.start(dataset, algorithm, ENV)
    assert started.owner == client.address and started.input_dids == (stack.dataset.did,)
    job = client.wait(started.job_id, timeout=90, interval=0.2)
    assert (job.status, job.algorithm_did) == (JobStatus.COMPLETED, stack.algorithm.did), job
    assert client.result(job.job_id, job.result_index("sum.txt")) == b"5050"
    assert client.nonce() > 1

    with pytest.raises(ProviderRefused) as refused:  # the same orders, a second job
        client.start(dataset, algorithm, ENV)
    assert (refused.value.status, refused.value.code) == (400, "order_already_used")


def test_stop_then_delete(stack: Stack) -> None:
    key = stack.chain.other_consumer_key
    client = ProviderClient(stack.provider, key)
    fees = client.initialize(
        [ServiceRef(stack.dataset.did, "compute")], SLEEPER, ENV, int(time.time()) + 3600
    )
    assert fees.algorithm is None  # a raw algorithm is not ordered
    dataset = Ordered(stack.dataset.did, "compute", paid(stack, key, fees.datasets[0]))
    started = client.start(dataset, SLEEPER, ENV)

    client.stop(started.job_id)
    stopped = client.wait(started.job_id, timeout=30, interval=0.2)
    assert stopped.status == JobStatus.STOPPED, stopped
    assert started.job_id in [job.job_id for job in client.jobs(stack.dataset.did)]

    deleted = client.delete(started.job_id)
    assert (deleted.job_id, deleted.status) == (started.job_id, JobStatus.DELETED)
    with pytest.raises(ProviderRefused) as refused:
        client.status(started.job_id)
    assert refused.value.status == 404, refused.value
