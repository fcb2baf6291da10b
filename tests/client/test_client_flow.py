"""The client against a real stack: anvil with Ocean's contracts, a Provider wired as in
production, the embedded engine in bubblewrap, and assets published as Ocean's clients
publish them. Orders are the client's own ``order``."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from ocean_provider.client import (
    FeeItem,
    Ordered,
    ProviderClient,
    ProviderRefused,
    RawAlgorithm,
    ServiceRef,
    order,
)
from ocean_provider.devnet.assets import SAMPLE_CONTAINER
from ocean_provider.wire.jobs import JobStatus
from tests.devchain import DevChain
from tests.published_node import ENV, Node, published_node

pytestmark = pytest.mark.integration

SLEEPER = RawAlgorithm(SAMPLE_CONTAINER, rawcode="import time\ntime.sleep(60)\n")


@pytest.fixture(scope="module")
def stack(devchain: DevChain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    with published_node(devchain, tmp_path_factory.mktemp("client-stack")) as node:
        yield node


def paid(stack: Node, key: str, item: FeeItem) -> str:
    """The order for ``item``: placed now with its provider fee (service 0 of the DDO)."""
    assert item.datatoken is not None and item.provider_fee is not None, item
    return order(stack.chain.w3, key, item.datatoken, item.provider_fee, service_index=0)


def test_published_algorithm_flow(stack: Node) -> None:
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


def test_stop_then_delete(stack: Node) -> None:
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
