"""End to end over HTTP: consumer -> Provider -> local engine -> bubblewrap -> results.

Only the chain-facing parts (DDO lookup, order checks) are fakes; the Provider, its
Operator-Service client, the engine and the sandbox are the real ones, each behind a
real HTTP server on loopback.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_account import Account

from ocean_provider.app import create_app
from ocean_provider.compute.interfaces import Asset
from ocean_provider.devnet.embedded import EmbeddedEngine, serve_app
from ocean_provider.operator.client import OperatorClient
from tests.api.helpers import COMPUTE, RESULT, job_params, result_params, start_body
from tests.conftest import (
    ALGO_DID,
    DATASET_DID,
    PROVIDER_KEY,
    TX,
    Consumer,
    FakeDdoResolver,
    FakeOrderVerifier,
    algo_ddo,
    dataset_ddo,
    make_settings,
)
from tests.engine.conftest import environment, start_engine
from tests.engine.jobs import workflow
from tests.live_servers import serve_provider

pytestmark = pytest.mark.integration

SUM_NUMBERS = """
import json, os, pathlib
did = json.loads(os.environ["DIDS"])[0]
numbers = [int(x) for x in (pathlib.Path("/data/inputs") / did / "0").read_text().split()]
pathlib.Path("/data/outputs/sum.txt").write_text(str(sum(numbers)))
print("summed", len(numbers), "numbers")
"""


class ServedFiles(FakeDdoResolver):
    """Resolves the test DDOs; the dataset's file is the file server's numbers.csv."""

    def __init__(self, files_url: str) -> None:
        super().__init__({DATASET_DID: dataset_ddo(trusted=[ALGO_DID]), ALGO_DID: algo_ddo()})
        self.files_url = files_url

    def service_files(self, asset: Asset, service_id: str) -> list[dict[str, Any]]:
        return [{"type": "url", "url": f"{self.files_url}/numbers.csv", "method": "GET"}]


@pytest.fixture
def stack(tmp_path: Path, file_server: str) -> Iterator[tuple[str, EmbeddedEngine]]:
    """A Provider on loopback wired to a real local engine; yields (provider URL, engine)."""
    engine = start_engine(tmp_path / "engine", [environment("ocean-compute")])
    backend = OperatorClient(engine.url, PROVIDER_KEY, connect_timeout=2, read_timeout=30)
    settings = make_settings(tmp_path, OPERATOR_SERVICE_URL=engine.url)
    app = create_app(
        settings, backend=backend, ddos=ServedFiles(file_server), orders=FakeOrderVerifier()
    )
    provider = serve_app(app, "provider")
    try:
        yield provider.url, engine
    finally:
        provider.close()
        backend.close()
        engine.close()


def _status(provider: str, consumer: Consumer, job_id: str) -> dict[str, Any]:
    reply = requests.get(provider + COMPUTE, params=job_params(consumer, job_id), timeout=10)
    assert reply.status_code == 200, reply.text
    (job,) = reply.json()
    assert isinstance(job, dict)
    return job


def _wait_finished(provider: str, consumer: Consumer, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        job = _status(provider, consumer, job_id)
        if job["dateFinished"] is not None:
            return job
        assert time.monotonic() < deadline, f"job stuck at {job['status']} {job['statusText']}"
        time.sleep(0.2)


def test_raw_algorithm_runs_and_its_output_downloads(
    stack: tuple[str, EmbeddedEngine], consumer: Consumer, other: Consumer
) -> None:
    provider, engine = stack
    body = start_body(consumer)
    body["algorithm"]["meta"]["rawcode"] = SUM_NUMBERS
    reply = requests.post(provider + COMPUTE, json=body, timeout=30)
    assert reply.status_code == 200, reply.text
    (started,) = reply.json()
    assert started["status"] == 1 and started["owner"] == consumer.address

    job = _wait_finished(provider, consumer, started["jobId"])
    assert (job["status"], job["statusText"]) == (70, "Job completed"), job
    assert job["inputDID"] == [DATASET_DID] and job["agreementId"] == TX
    names = {r["filename"]: r for r in job["results"]}
    assert set(names) == {"sum.txt", "algorithm.log", "configure.log"}
    assert len(job["resultsUrls"]) == 1 and "index=" in job["resultsUrls"][0]

    params = result_params(consumer, job["jobId"], names["sum.txt"]["index"])
    download = requests.get(provider + RESULT, params=params, timeout=10)
    assert download.status_code == 200, download.text
    assert download.content == b"5050"
    assert "sum.txt" in download.headers["Content-Disposition"]

    log_index = names["algorithm.log"]["index"]
    log = requests.get(provider + RESULT, params=result_params(consumer, job["jobId"], log_index))
    assert b"summed 100 numbers" in log.content

    stranger = requests.get(
        provider + RESULT, params=result_params(other, job["jobId"], log_index), timeout=10
    )
    assert stranger.status_code == 404

    deleted = requests.delete(provider + COMPUTE, params=job_params(consumer, job["jobId"]))
    assert deleted.status_code == 200 and deleted.json()[0]["status"] == 8
    assert not (engine.storage / "jobs" / job["jobId"]).exists()


def test_stop_through_the_provider(stack: tuple[str, EmbeddedEngine], consumer: Consumer) -> None:
    provider, _ = stack
    body = start_body(consumer)
    body["algorithm"]["meta"]["rawcode"] = "import time; time.sleep(60)"
    (started,) = requests.post(provider + COMPUTE, json=body, timeout=30).json()
    deadline = time.monotonic() + 30
    while _status(provider, consumer, started["jobId"])["status"] != 40:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    stopped = requests.put(provider + COMPUTE, params=job_params(consumer, started["jobId"]))
    assert stopped.status_code == 200, stopped.text
    job = _wait_finished(provider, consumer, started["jobId"])
    assert (job["status"], job["statusText"]) == (7, "Job stopped")


ROUNDS = 3
CALLERS = 48


@pytest.fixture
def served_provider(tmp_path: Path) -> Iterator[tuple[str, EmbeddedEngine]]:
    """``ocean-provider serve --workers 3`` (real gunicorn) in front of a real local engine."""
    engine = start_engine(tmp_path / "engine", [environment("ocean-compute")])
    settings = {
        "OPERATOR_SERVICE_URL": engine.url,
        "STORAGE_PATH": str(tmp_path / "nonces.db"),
        "REQUEST_TIMEOUT": "10",
    }
    try:
        with serve_provider(tmp_path, settings, workers=3) as served:
            yield served.url, engine
    finally:
        engine.close()


def test_concurrent_signed_status_through_three_workers_all_succeed(
    served_provider: tuple[str, EmbeddedEngine], file_server: str
) -> None:
    """Three Provider processes sign with one key; their calls reach the engine out of
    order. The engine's replay window takes each nonce once, so none is refused."""
    provider, engine = served_provider
    owner = Consumer(Account.create().key.hex())
    data = f"{file_server}/numbers.csv"
    (job,) = engine.client.start(owner.address, workflow("print(1)", data, env="ocean-compute"))
    callers = [owner] + [Consumer(Account.create().key.hex()) for _ in range(CALLERS - 1)]

    def status(consumer: Consumer) -> tuple[int, Any]:
        job_id = job.job_id if consumer is owner else None
        reply = requests.get(provider + COMPUTE, params=job_params(consumer, job_id), timeout=60)
        return reply.status_code, reply.json()

    for _ in range(ROUNDS):
        with ThreadPoolExecutor(CALLERS) as pool:
            replies = list(pool.map(status, callers))
        assert [code for code, _ in replies] == [200] * CALLERS, [r for r in replies if r[0] != 200]
        assert [j["jobId"] for j in replies[0][1]] == [job.job_id]
        assert all(body == [] for _, body in replies[1:])
