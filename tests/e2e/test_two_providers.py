"""Two Provider processes (``ocean-provider serve`` on two ports) behind one provider
address, sharing one Redis (``REDIS_CONNECTION``) and one engine: a nonce, a signed message
and an order accepted by one are refused by the other, and the engine's replay cache takes
both Providers' signed calls, interleaved."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from ocean_provider.auth.messages import job_message, result_message
from ocean_provider.devnet.embedded import serve_directory, start_embedded_engine
from tests.conftest import Consumer
from tests.devchain import DevChain
from tests.e2e.test_published_assets import (
    finished,
    initialize,
    order,
    raw_algorithm,
    signed_job,
    start,
)
from tests.engine.conftest import environment
from tests.live_servers import redis_server, serve_provider
from tests.published_node import ENV, Node, publish_samples, write_sample_files

pytestmark = pytest.mark.integration

COMPUTE = "/api/services/compute"
RESULT = "/api/services/computeResult"


@dataclass
class Pair:
    one: Node  # the same chain, engine and assets, seen through each Provider
    two: Node


@pytest.fixture(scope="module")
def pair(devchain: DevChain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    root = tmp_path_factory.mktemp("two-providers")
    files = serve_directory(write_sample_files(root / "files"))
    engine = start_embedded_engine(
        root / "engine", [environment(ENV)], devchain.provider_key, PROVISION_SECONDS="30"
    )
    try:
        with redis_server(root) as redis_url:
            settings = {
                "NETWORK_URL": devchain.url,
                "PROVIDER_PRIVATE_KEY": devchain.provider_key,
                "ADDRESS_FILE": str(devchain.address_file),
                "OPERATOR_SERVICE_URL": engine.url,
                "REDIS_CONNECTION": redis_url,
                "ALLOW_PRIVATE_DOWNLOADS": "true",  # the files are served on loopback
                "REQUEST_TIMEOUT": "30",
            }
            (root / "one").mkdir()
            (root / "two").mkdir()
            with (
                serve_provider(root / "one", settings, workers=1) as one,
                serve_provider(root / "two", settings, workers=1) as two,
            ):
                samples = publish_samples(devchain, one.url, files.url)
                yield Pair(
                    Node(one.url, engine, devchain, *samples),
                    Node(two.url, engine, devchain, *samples),
                )
    finally:
        engine.close()
        files.close()


def finished_job(node: Node, consumer: Consumer) -> dict[str, Any]:
    fees = initialize(node, consumer, published=False)
    started = start(node, consumer, order(node, consumer, fees["datasets"][0]), raw_algorithm())
    assert started.status_code == 200, started.text
    return finished(node, consumer, started.json()[0]["jobId"])


def refusal(reply: requests.Response) -> tuple[int, str]:
    return reply.status_code, reply.json()["code"]


def test_a_nonce_used_on_one_provider_is_refused_by_the_other(pair: Pair) -> None:
    consumer = Consumer(pair.one.chain.consumer_key)
    job = finished_job(pair.one, consumer)
    params = signed_job(consumer, job["jobId"])
    assert requests.get(pair.one.provider + COMPUTE, params=params, timeout=10).status_code == 200
    nonce = requests.get(
        pair.two.provider + "/api/services/nonce",
        params={"userAddress": consumer.address},
        timeout=10,
    ).json()["nonce"]
    assert str(nonce) == params["nonce"]  # the other Provider knows the nonce just used
    replayed = requests.get(pair.two.provider + COMPUTE, params=params, timeout=10)
    assert refusal(replayed) == (400, "nonce_too_low")


def test_a_message_signed_for_one_provider_is_refused_by_the_other(pair: Pair) -> None:
    """A result download of index 1 signs ``consumer + jobId + "1" + N``: the same text is a
    status call for that job with the larger nonce ``1N``. The nonce passes; the message was
    recorded by the first Provider, so the second refuses it."""
    consumer = Consumer(pair.one.chain.consumer_key)
    job = finished_job(pair.one, consumer)
    assert len(job["results"]) > 1, job
    nonce = consumer.nonce()
    signature = consumer.sign(result_message(consumer.address, job["jobId"], 1), nonce)
    download = {"consumerAddress": consumer.address, "jobId": job["jobId"], "index": 1}
    got = requests.get(
        pair.one.provider + RESULT,
        params={**download, "nonce": nonce, "signature": signature},
        timeout=10,
    )
    assert got.status_code == 200, got.text
    as_status = {
        "consumerAddress": consumer.address,
        "jobId": job["jobId"],
        "nonce": "1" + nonce,
        "signature": signature,
    }
    assert job_message(consumer.address, job["jobId"], None) + as_status["nonce"] == (
        result_message(consumer.address, job["jobId"], 1) + nonce
    )
    replayed = requests.get(pair.two.provider + COMPUTE, params=as_status, timeout=10)
    assert refusal(replayed) == (400, "signature_reused")


def test_an_order_used_on_one_provider_is_refused_by_the_other(pair: Pair) -> None:
    consumer = Consumer(pair.one.chain.other_consumer_key)
    fees = initialize(pair.one, consumer, published=False)
    tx = order(pair.one, consumer, fees["datasets"][0])
    first = start(pair.one, consumer, tx, raw_algorithm())
    assert first.status_code == 200, first.text
    second = start(pair.two, consumer, tx, raw_algorithm())
    assert second.status_code == 400, second.text
    assert second.json()["error"] == {"dataset.transferTxId": "order_already_used"}
    finished(pair.one, consumer, first.json()[0]["jobId"])


def test_the_engine_takes_both_providers_signed_calls_interleaved(pair: Pair) -> None:
    """Each status call is signed by its Provider for the engine with a nanosecond nonce;
    48 at once through both, all answered (a strictly increasing nonce would refuse some)."""
    consumer = Consumer(pair.one.chain.consumer_key)
    job_id = finished_job(pair.two, consumer)["jobId"]

    def status(provider: str) -> int:
        query = {"consumerAddress": consumer.address, "jobId": job_id}  # job-id status access
        return requests.get(provider + COMPUTE, params=query, timeout=30).status_code

    providers = [pair.one.provider, pair.two.provider] * 24
    with ThreadPoolExecutor(16) as pool:
        assert list(pool.map(status, providers)) == [200] * len(providers)
