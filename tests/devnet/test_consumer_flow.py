"""The consumer's whole flow on a fresh ``ocean-provider dev`` stack (the console script, real
anvil, engine and Provider), through the public client ``ocean_provider.client`` as a user
would drive it: a published algorithm by DID and a raw one, ``additionalDatasets`` each with
its own order, stop, delete, every result fetched by its index, and a second consumer who can
neither see nor touch the first one's job."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import pytest
from web3 import Web3

from ocean_provider.client import (
    FeeItem,
    Job,
    Ordered,
    ProviderClient,
    ProviderRefused,
    RawAlgorithm,
    ServiceRef,
    order,
)
from ocean_provider.devnet.assets import SAMPLE_CONTAINER
from ocean_provider.devnet.samples import DEV_ENVIRONMENT
from ocean_provider.devnet.stack import CONSUMER_KEYS
from ocean_provider.wire.jobs import JobStatus
from tests.devnet.test_stack import interrupt, options, start

pytestmark = pytest.mark.integration

ENV = str(DEV_ENVIRONMENT["id"])
OWNER, STRANGER = CONSUMER_KEYS[0], CONSUMER_KEYS[1]  # the stranger runs no job of its own
SUM_FIRST = sum(n * n for n in range(1, 101))  # the sample dataset's squares
SUM_SECOND = sum(n * n for n in range(101, 201))  # the second dataset's
SUM_INPUTS = """\
import csv, json, os, pathlib
sums = {}
for did in json.loads(os.environ["DIDS"]):
    with open(pathlib.Path("/data/inputs") / did / "0", newline="") as rows:
        sums[did] = sum(int(row["square"]) for row in csv.DictReader(rows))
pathlib.Path("/data/outputs/sums.json").write_text(json.dumps(sums))
print("read", len(sums), "inputs")
"""


def raw(code: str) -> RawAlgorithm:
    return RawAlgorithm(SAMPLE_CONTAINER, rawcode=code)


@dataclass(frozen=True)
class DevNode:
    provider: str
    w3: Web3
    dataset: str
    second_dataset: str
    algorithm: str

    def client(self, key: str) -> ProviderClient:
        return ProviderClient(self.provider, key)

    def pay(self, key: str, item: FeeItem) -> str:
        """Order ``item`` on chain with its provider fee (service 0 of the DDO)."""
        assert item.datatoken is not None and item.provider_fee is not None, item
        return order(self.w3, key, item.datatoken, item.provider_fee, service_index=0)

    def orders(
        self,
        client: ProviderClient,
        key: str,
        algorithm: ServiceRef | RawAlgorithm,
        datasets: Sequence[str],
    ) -> tuple[list[Ordered], Ordered | RawAlgorithm]:
        """initializeCompute, then one order per dataset and one for a published algorithm."""
        refs = [ServiceRef(did, "compute") for did in datasets]
        fees = client.initialize(refs, algorithm, ENV, int(time.time()) + 3600)
        assert len(fees.datasets) == len(datasets), fees
        paid = [
            Ordered(did, "compute", self.pay(key, item))
            for did, item in zip(datasets, fees.datasets, strict=True)
        ]
        if isinstance(algorithm, RawAlgorithm):
            assert fees.algorithm is None  # a raw algorithm is not ordered
            return paid, algorithm
        assert fees.algorithm is not None
        return paid, Ordered(algorithm.did, algorithm.service_id, self.pay(key, fees.algorithm))

    def start(self, client: ProviderClient, key: str, algorithm: ServiceRef | RawAlgorithm) -> Job:
        """A job of ``algorithm`` on the sample dataset, paid for and started."""
        (dataset,), paid_algorithm = self.orders(client, key, algorithm, [self.dataset])
        return client.start(dataset, paid_algorithm, ENV)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevNode]:
    o = options(tmp_path_factory.mktemp("flow") / "state")
    started = start(o)
    try:
        yield DevNode(
            o.url(o.provider_port),
            Web3(Web3.HTTPProvider(o.url(o.chain_port))),
            started.did("dataset"),
            started.did("dataset 2"),
            started.did("algorithm"),
        )
    finally:
        if started.process.poll() is None:
            interrupt(started, o)


def finished(client: ProviderClient, job_id: str) -> Job:
    return client.wait(job_id, timeout=90, interval=0.2)


def running(client: ProviderClient, job_id: str) -> Job:
    """The job's status once its algorithm runs."""
    deadline = time.monotonic() + 60
    while (job := client.status(job_id)).status != JobStatus.RUNNING:
        assert not job.finished, job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    return job


def every_result(client: ProviderClient, job: Job) -> dict[str, bytes]:
    """Each entry of ``results`` fetched by its index: the indexes run 0..n-1 and each body
    has the size its entry announced; one index past the last is refused."""
    assert sorted(r.index for r in job.results) == list(range(len(job.results))), job.results
    fetched: dict[str, bytes] = {}
    for entry in job.results:
        body = client.result(job.job_id, entry.index)
        assert len(body) == entry.filesize, entry
        fetched[entry.filename] = body
    with pytest.raises(ProviderRefused) as refused:
        client.result(job.job_id, len(job.results))
    assert (refused.value.status, refused.value.code) == (404, "result_not_found")
    return fetched


def refused(call: Callable[[], object]) -> tuple[int, str]:
    """The status and code the Provider refused ``call`` with."""
    with pytest.raises(ProviderRefused) as refusal:
        call()
    return refusal.value.status, refusal.value.code


def test_a_published_algorithm_by_did_on_the_sample_dataset(node: DevNode) -> None:
    with node.client(OWNER) as client:
        started = node.start(client, OWNER, ServiceRef(node.algorithm, "access"))
        assert (started.owner, started.input_dids) == (client.address, (node.dataset,))
        job = finished(client, started.job_id)
        assert (job.status, job.status_text) == (JobStatus.COMPLETED, "Job completed"), job
        assert job.algorithm_did == node.algorithm
        assert {r.type for r in job.results} == {"output", "algorithmLog", "configurationLog"}
        results = every_result(client, job)
    assert json.loads(results["result.json"]) == {"sum": SUM_FIRST}
    assert b"summed 100 squares" in results["algorithm.log"]


def test_a_raw_algorithm_on_the_sample_dataset(node: DevNode) -> None:
    code = 'open("/data/outputs/hello.txt", "w").write("hello, raw")\nprint("said hello")\n'
    with node.client(OWNER) as client:
        started = node.start(client, OWNER, raw(code))
        job = finished(client, started.job_id)
        assert (job.status, job.status_text) == (JobStatus.COMPLETED, "Job completed"), job
        assert job.algorithm_did == "raw"  # as the reference reports an unpublished one
        results = every_result(client, job)
    assert results["hello.txt"] == b"hello, raw"
    assert b"said hello" in results["algorithm.log"]


def test_additional_datasets_each_with_its_own_order(node: DevNode) -> None:
    inputs = [node.dataset, node.second_dataset]
    with node.client(OWNER) as client:
        (main, extra), algorithm = node.orders(client, OWNER, raw(SUM_INPUTS), inputs)
        assert main.transfer_tx_id != extra.transfer_tx_id
        started = client.start(main, algorithm, ENV, additional=[extra])
        assert started.input_dids == tuple(inputs)
        job = finished(client, started.job_id)
        assert (job.status, job.input_dids) == (JobStatus.COMPLETED, tuple(inputs)), job
        results = every_result(client, job)
    sums = json.loads(results["sums.json"])  # in the order of DIDS: main, then additional
    assert list(sums.items()) == [(node.dataset, SUM_FIRST), (node.second_dataset, SUM_SECOND)]
    assert b"read 2 inputs" in results["algorithm.log"]


def test_stop_ends_a_running_job_stopped_and_delete_removes_it(node: DevNode) -> None:
    sleeper = raw("import time\nprint('sleeping', flush=True)\ntime.sleep(120)\n")
    with node.client(OWNER) as client:
        job_id = node.start(client, OWNER, sleeper).job_id
        running(client, job_id)
        time.sleep(1)  # the engine lets the sandbox go just after it reports 40
        assert client.stop(job_id).job_id == job_id
        job = finished(client, job_id)
        assert (job.status, job.status_text) == (JobStatus.STOPPED, "Job stopped"), job
        assert "algorithm.log" in every_result(client, job)  # a stopped job's log, by index

        deleted = client.delete(job_id)
        assert (deleted.job_id, deleted.status) == (job_id, JobStatus.DELETED)
        assert refused(lambda: client.status(job_id)) == (404, "job_not_found")
        assert refused(lambda: client.result(job_id, 0)) == (404, "job_not_found")
        assert refused(lambda: client.delete(job_id)) == (404, "job_not_found")
        assert job_id not in [listed.job_id for listed in client.jobs()]


def test_a_second_consumer_can_neither_see_nor_touch_the_first_ones_job(node: DevNode) -> None:
    code = "import time\ntime.sleep(5)\nopen('/data/outputs/mine.txt', 'w').write('still mine')\n"
    with node.client(OWNER) as owner, node.client(STRANGER) as stranger:
        job_id = node.start(owner, OWNER, raw(code)).job_id
        running(owner, job_id)

        assert refused(lambda: stranger.status(job_id)) == (404, "job_not_found")
        assert refused(lambda: stranger.result(job_id, 0)) == (404, "job_not_found")
        assert (stranger.jobs(), stranger.jobs(node.dataset)) == ([], [])
        assert refused(lambda: stranger.stop(job_id)) == (404, "job_not_found")
        assert refused(lambda: stranger.delete(job_id)) == (404, "job_not_found")

        job = finished(owner, job_id)  # neither stopped (7) nor deleted
        assert (job.status, job.status_text) == (JobStatus.COMPLETED, "Job completed"), job
        assert every_result(owner, job)["mine.txt"] == b"still mine"
        assert job_id in [listed.job_id for listed in owner.jobs(node.dataset)]
