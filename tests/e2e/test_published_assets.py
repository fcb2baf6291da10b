"""Production wiring end to end, no fakes: anvil with Ocean's contracts, assets published
the way Ocean clients publish them (files encrypted through our endpoint, ``setMetaData``
with flags), DDOs resolved from the chain, initializeCompute, ``startOrder`` with the
provider fee, ``POST /compute``, the real engine in bubblewrap, and computeResult.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from ocean_provider.auth.messages import job_message, result_message, start_message
from ocean_provider.devnet.assets import SAMPLE_CONTAINER, start_order
from tests.conftest import Consumer
from tests.devchain import DevChain
from tests.published_node import ENV, SUM_ALGORITHM, Node, published_node

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def node(devchain: DevChain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    with published_node(devchain, tmp_path_factory.mktemp("node")) as published:
        yield published


def initialize(node: Node, consumer: Consumer, *, published: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "datasets": [{"documentId": node.dataset.did, "serviceId": "compute"}],
        "algorithm": {"documentId": node.algorithm.did, "serviceId": "access"}
        if published
        else raw_algorithm(),
        "compute": {"env": ENV, "validUntil": int(time.time()) + 3600},
        "consumerAddress": consumer.address,
    }
    reply = requests.post(node.provider + "/api/services/initializeCompute", json=body, timeout=30)
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


def order(node: Node, consumer: Consumer, item: dict[str, Any]) -> str:
    return start_order(
        node.chain.w3,
        item["datatoken"],
        consumer.key,
        consumer=consumer.address,
        service_index=0,
        provider_fee=item["providerFee"],
    )


def raw_algorithm(code: bytes = SUM_ALGORITHM) -> dict[str, Any]:
    return {"meta": {"rawcode": code.decode(), "container": dict(SAMPLE_CONTAINER)}}


def signed_job(consumer: Consumer, job_id: str) -> dict[str, Any]:
    nonce = consumer.nonce()
    return {
        "consumerAddress": consumer.address,
        "jobId": job_id,
        "nonce": nonce,
        "signature": consumer.sign(job_message(consumer.address, job_id, None), nonce),
    }


def start(
    node: Node,
    consumer: Consumer,
    dataset_tx: str,
    algorithm: dict[str, Any],
    additional: list[dict[str, Any]] | None = None,
) -> Any:
    nonce = consumer.nonce()
    body: dict[str, Any] = {
        "consumerAddress": consumer.address,
        "nonce": nonce,
        "signature": consumer.sign(start_message(consumer.address, node.dataset.did), nonce),
        "environment": ENV,
        "dataset": {
            "documentId": node.dataset.did,
            "serviceId": "compute",
            "transferTxId": dataset_tx,
        },
        "algorithm": algorithm,
    }
    if additional:
        body["additionalDatasets"] = additional
    return requests.post(node.provider + "/api/services/compute", json=body, timeout=60)


def finished(node: Node, consumer: Consumer, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while True:
        params = signed_job(consumer, job_id)
        reply = requests.get(node.provider + "/api/services/compute", params=params, timeout=10)
        assert reply.status_code == 200, reply.text
        (job,) = reply.json()
        if job["dateFinished"] is not None:
            return dict(job)
        assert time.monotonic() < deadline, f"stuck at {job['status']} {job['statusText']}"
        time.sleep(0.2)


def result(node: Node, consumer: Consumer, job: dict[str, Any], name: str) -> bytes:
    index = next(r["index"] for r in job["results"] if r["filename"] == name)
    nonce = consumer.nonce()
    params = {
        "consumerAddress": consumer.address,
        "jobId": job["jobId"],
        "index": index,
        "nonce": nonce,
        "signature": consumer.sign(result_message(consumer.address, job["jobId"], index), nonce),
    }
    reply = requests.get(node.provider + "/api/services/computeResult", params=params, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.content


def test_published_algorithm_on_published_dataset(node: Node) -> None:
    consumer = Consumer(node.chain.consumer_key)
    fees = initialize(node, consumer, published=True)
    dataset_tx = order(node, consumer, fees["datasets"][0])
    algorithm_tx = order(node, consumer, fees["algorithm"])
    algorithm = {
        "documentId": node.algorithm.did,
        "serviceId": "access",
        "transferTxId": algorithm_tx,
    }
    reply = start(node, consumer, dataset_tx, algorithm)
    assert reply.status_code == 200, reply.text
    job = finished(node, consumer, reply.json()[0]["jobId"])
    assert (job["status"], job["statusText"]) == (70, "Job completed"), job
    assert job["inputDID"] == [node.dataset.did] and job["algoDID"] == node.algorithm.did
    assert result(node, consumer, job, "sum.txt") == b"5050"
    assert b"summed 100 numbers" in result(node, consumer, job, "algorithm.log")

    again = start(node, consumer, dataset_tx, algorithm)  # the same orders, a second job
    assert again.status_code == 400 and again.json()["code"] == "order_already_used"


def test_raw_algorithm_on_published_dataset(node: Node) -> None:
    consumer = Consumer(node.chain.other_consumer_key)
    fees = initialize(node, consumer, published=False)
    assert "algorithm" not in fees
    reply = start(node, consumer, order(node, consumer, fees["datasets"][0]), raw_algorithm())
    assert reply.status_code == 200, reply.text
    job = finished(node, consumer, reply.json()[0]["jobId"])
    assert (job["status"], job["statusText"]) == (70, "Job completed"), job
    assert result(node, consumer, job, "sum.txt") == b"5050"


def test_a_decrypted_file_url_never_reaches_the_consumer(node: Node) -> None:
    consumer = Consumer(node.chain.consumer_key)
    fees = initialize(node, consumer, published=True)
    text = repr(fees)
    assert "numbers.csv" not in text and "sum.py" not in text
    ddo_files = node.dataset.ddo["services"][0]["files"]
    assert isinstance(ddo_files, str) and ddo_files.startswith("0x")  # encrypted on chain


def test_an_unknown_did_is_refused(node: Node) -> None:
    consumer = Consumer(node.chain.consumer_key)
    body = {
        "datasets": [{"documentId": "did:op:" + "0" * 64, "serviceId": "compute"}],
        "algorithm": raw_algorithm(),
        "compute": {"env": ENV, "validUntil": int(time.time()) + 3600},
        "consumerAddress": consumer.address,
    }
    reply = requests.post(node.provider + "/api/services/initializeCompute", json=body, timeout=30)
    assert reply.status_code == 400 and reply.json()["code"] == "did_not_found"


COUNT_INPUTS = b"""
import json, os, pathlib
dids = json.loads(os.environ["DIDS"])
sizes = [len((pathlib.Path("/data/inputs") / did / "0").read_text().split()) for did in dids]
pathlib.Path("/data/outputs/inputs.txt").write_text(" ".join(map(str, sizes)))
"""


def test_additional_datasets_each_with_its_own_order(node: Node) -> None:
    consumer = Consumer(node.chain.consumer_key)
    main = initialize(node, consumer, published=False)["datasets"][0]
    body = {
        "datasets": [{"documentId": node.extra.did, "serviceId": "compute"}],
        "algorithm": raw_algorithm(),
        "compute": {"env": ENV, "validUntil": int(time.time()) + 3600},
        "consumerAddress": consumer.address,
    }
    reply = requests.post(node.provider + "/api/services/initializeCompute", json=body, timeout=30)
    extra_tx = order(node, consumer, reply.json()["datasets"][0])
    additional = [{"documentId": node.extra.did, "serviceId": "compute", "transferTxId": extra_tx}]
    started = start(
        node, consumer, order(node, consumer, main), raw_algorithm(COUNT_INPUTS), additional
    )
    assert started.status_code == 200, started.text
    job = finished(node, consumer, started.json()[0]["jobId"])
    assert (job["status"], job["inputDID"]) == (70, [node.dataset.did, node.extra.did]), job
    assert result(node, consumer, job, "inputs.txt") == b"100 100"


def test_stop_delete_and_a_second_consumer_who_cannot_touch_the_job(node: Node) -> None:
    owner = Consumer(node.chain.consumer_key)
    stranger = Consumer(node.chain.other_consumer_key)
    fees = initialize(node, owner, published=False)
    sleeper = raw_algorithm(b"import time\nprint('sleeping', flush=True)\ntime.sleep(60)\n")
    started = start(node, owner, order(node, owner, fees["datasets"][0]), sleeper)
    assert started.status_code == 200, started.text
    job_id = started.json()[0]["jobId"]
    compute = node.provider + "/api/services/compute"

    for method in ("GET", "PUT", "DELETE"):  # the stranger sees and touches nothing
        reply = requests.request(method, compute, params=signed_job(stranger, job_id), timeout=10)
        assert (reply.status_code, reply.json()["code"]) == (404, "job_not_found"), method
    nonce = stranger.nonce()
    peek = {
        "consumerAddress": stranger.address,
        "jobId": job_id,
        "index": 0,
        "nonce": nonce,
        "signature": stranger.sign(result_message(stranger.address, job_id, 0), nonce),
    }
    reply = requests.get(node.provider + "/api/services/computeResult", params=peek, timeout=10)
    assert reply.status_code == 404

    deadline = time.monotonic() + 60
    while requests.get(compute, params=signed_job(owner, job_id), timeout=10).json()[0][
        "status"
    ] not in (40, 70):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    stopped = requests.put(compute, params=signed_job(owner, job_id), timeout=10)
    assert stopped.status_code == 200, stopped.text
    job = finished(node, owner, job_id)
    assert (job["status"], job["statusText"]) == (7, "Job stopped"), job
    by_index = sorted(job["results"], key=lambda r: r["index"])
    assert [r["index"] for r in by_index] == list(range(len(by_index)))
    result(node, owner, job, "algorithm.log")  # a stopped job's log downloads by its index

    deleted = requests.delete(compute, params=signed_job(owner, job_id), timeout=10)
    assert deleted.status_code == 200, deleted.text
    gone = requests.get(compute, params=signed_job(owner, job_id), timeout=10)
    assert gone.status_code == 404
