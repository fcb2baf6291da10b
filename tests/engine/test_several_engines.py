"""Two real local engines behind one Provider (``OPERATOR_SERVICES``), over HTTP on loopback.

As in ``test_through_provider``, only the chain-facing parts are fakes: the Provider is wired
from its settings (a router over one Operator-Service client per engine), and each engine runs
its jobs in bubblewrap.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from ocean_provider.app import create_app
from ocean_provider.devnet.embedded import EmbeddedEngine, serve_app
from tests.api.helpers import COMPUTE, RESULT, job_params, result_params, start_body
from tests.conftest import Consumer, FakeOrderVerifier, make_settings
from tests.engine.conftest import environment, start_engine
from tests.engine.test_through_provider import SUM_NUMBERS, ServedFiles, _status, _wait_finished

pytestmark = pytest.mark.integration

ENVS = "/api/services/computeEnvironments"


@dataclass
class Stack:
    provider: str
    engines: dict[str, EmbeddedEngine]  # by environment id
    closed: set[str]

    def close_engine(self, env_id: str) -> None:
        self.engines[env_id].close()
        self.closed.add(env_id)


@pytest.fixture
def stack(tmp_path: Path, file_server: str) -> Iterator[Stack]:
    """Engines ``a`` (environment ``cpu-a``) and ``b`` (``cpu-b``), one Provider over both."""
    engines = {
        f"cpu-{name}": start_engine(tmp_path / f"engine-{name}", [environment(f"cpu-{name}")])
        for name in ("a", "b")
    }
    listed = [{"name": env[-1], "url": engine.url} for env, engine in engines.items()]
    settings = make_settings(
        tmp_path, OPERATOR_SERVICE_URL="", OPERATOR_SERVICES=json.dumps(listed)
    )
    app = create_app(settings, ddos=ServedFiles(file_server), orders=FakeOrderVerifier())
    provider = serve_app(app, "provider")
    stack = Stack(provider.url, engines, set())
    try:
        yield stack
    finally:
        provider.close()
        for env_id, engine in engines.items():
            if env_id not in stack.closed:
                engine.close()


def _start(stack: Stack, consumer: Consumer, env: str, code: str) -> dict[str, Any]:
    body = start_body(consumer, environment=env)
    body["dataset"]["transferTxId"] = "0x" + f"{time.time_ns():064x}"  # an order per job
    body["algorithm"]["meta"]["rawcode"] = code
    reply = requests.post(stack.provider + COMPUTE, json=body, timeout=30)
    assert reply.status_code == 200, reply.text
    (job,) = reply.json()
    assert isinstance(job, dict)
    return job


def _running(stack: Stack, consumer: Consumer, job_id: str) -> None:
    deadline = time.monotonic() + 30
    while _status(stack.provider, consumer, job_id)["status"] != 40:
        assert time.monotonic() < deadline, "the job never ran"
        time.sleep(0.1)


def _knows(engine: EmbeddedEngine, engine_job_id: str) -> bool:
    return engine.context.store.get(engine_job_id) is not None


def test_a_job_on_each_engine_runs_is_stopped_deleted_and_downloaded(
    stack: Stack, consumer: Consumer
) -> None:
    listed = requests.get(stack.provider + ENVS, params={"chainId": 8996}, timeout=10).json()
    assert [(env["id"], env["reachable"]) for env in listed] == [("cpu-a", True), ("cpu-b", True)]

    for env, engine in stack.engines.items():
        name = env[-1]
        other = stack.engines["cpu-b" if name == "a" else "cpu-a"]
        started = _start(stack, consumer, env, SUM_NUMBERS)
        job_id = started["jobId"]
        assert job_id.startswith(f"{name}-")
        engine_id = job_id.removeprefix(f"{name}-")
        assert _knows(engine, engine_id) and not _knows(other, engine_id)

        job = _wait_finished(stack.provider, consumer, job_id)
        assert (job["status"], job["statusText"]) == (70, "Job completed"), job
        (output,) = (r for r in job["results"] if r["filename"] == "sum.txt")
        params = result_params(consumer, job_id, output["index"])
        download = requests.get(stack.provider + RESULT, params=params, timeout=10)
        assert (download.status_code, download.content) == (200, b"5050")
        assert f"jobId={job_id}&" in job["resultsUrls"][0]

        sleeper = _start(stack, consumer, env, "import time; time.sleep(60)")
        _running(stack, consumer, sleeper["jobId"])
        stopped = requests.put(
            stack.provider + COMPUTE, params=job_params(consumer, sleeper["jobId"]), timeout=10
        )
        assert stopped.status_code == 200, stopped.text
        job = _wait_finished(stack.provider, consumer, sleeper["jobId"])
        assert (job["status"], job["statusText"]) == (7, "Job stopped")

        for finished in (job_id, sleeper["jobId"]):
            deleted = requests.delete(
                stack.provider + COMPUTE, params=job_params(consumer, finished), timeout=10
            )
            assert deleted.status_code == 200 and deleted.json()[0]["status"] == 8
            assert not _knows(engine, finished.removeprefix(f"{name}-"))
            assert not (engine.storage / "jobs" / finished.removeprefix(f"{name}-")).exists()

    listing = requests.get(stack.provider + COMPUTE, params=job_params(consumer, None), timeout=10)
    assert listing.status_code == 200 and listing.json() == []


def test_a_down_engine_makes_only_its_own_jobs_and_environments_unavailable(
    stack: Stack, consumer: Consumer
) -> None:
    on_a = _start(stack, consumer, "cpu-a", "import time; time.sleep(60)")["jobId"]
    on_b = _start(stack, consumer, "cpu-b", "print('done')")["jobId"]
    _wait_finished(stack.provider, consumer, on_b)
    stack.close_engine("cpu-b")

    gone = requests.get(stack.provider + COMPUTE, params=job_params(consumer, on_b), timeout=10)
    assert (gone.status_code, gone.json()["code"]) == (503, "operator_unavailable")
    _running(stack, consumer, on_a)
    listing = requests.get(stack.provider + COMPUTE, params=job_params(consumer, None), timeout=10)
    assert [job["jobId"] for job in listing.json()] == [on_a]

    deadline = time.monotonic() + 10  # environments are cached for 2 s
    while True:
        listed = requests.get(stack.provider + ENVS, params={"chainId": 8996}, timeout=10).json()
        reachable = {env["id"]: env["reachable"] for env in listed}
        if reachable == {"cpu-a": True, "cpu-b": False}:
            break
        assert time.monotonic() < deadline, reachable
        time.sleep(0.2)
    refused = requests.post(
        stack.provider + COMPUTE, json=start_body(consumer, environment="cpu-b"), timeout=10
    )
    assert (refused.status_code, refused.json()["code"]) == (503, "operator_unavailable")

    stopped = requests.put(stack.provider + COMPUTE, params=job_params(consumer, on_a), timeout=10)
    assert stopped.status_code == 200, stopped.text
    assert _wait_finished(stack.provider, consumer, on_a)["status"] == 7
