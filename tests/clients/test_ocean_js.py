"""ocean.js 3.4.6 (npm ``@oceanprotocol/lib``, with ethers 5) makes the compute flow's Provider
calls against the dev node, each through its ``ProviderInstance`` unchanged, with an ethers
Wallet on the dev chain (8996) as signer: ``getComputeEnvironments``, ``getNonce``,
``initializeCompute``, ``computeStart``, ``computeStatus`` (unsigned in ocean.js 3.x),
``getComputeResultUrl`` (a signed URL, fetched here), ``computeStop`` and ``computeDelete``.
No workaround. Only the orders between initializeCompute and start are placed by our Python
client, since they are chain transactions and not Provider calls.

The first run installs the pinned packages (``npm ci`` from ``ocean_js/package-lock.json``).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from ocean_provider.devnet.assets import SAMPLE_CONTAINER
from ocean_provider.devnet.stack import CONSUMER_KEYS
from tests.clients.conftest import SLEEPER, Driver, Node

pytestmark = pytest.mark.integration

FOLDER = Path(__file__).with_name("ocean_js")
ENV = "ocean-compute"


@pytest.fixture(scope="module")
def ocean_js(node: Node) -> Driver:
    """The node script as consumer 1, with ``npm ci`` run once if ``node_modules`` is missing."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.fail(f"ocean.js needs {tool} on PATH (apt-get install nodejs npm)")
    if not (FOLDER / "node_modules" / "@oceanprotocol" / "lib").is_dir():
        done = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=FOLDER,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            pytest.fail(f"npm ci in {FOLDER} failed:\n{done.stdout}{done.stderr}")
    return Driver(["node", str(FOLDER / "provider_calls.cjs")], node, CONSUMER_KEYS[0])


def finished(ocean_js: Driver, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        (job,) = ocean_js("computeStatus", jobId=job_id)
        if job["dateFinished"] is not None:
            return dict(job)
        assert time.monotonic() < deadline, f"stuck at {job['status']} {job['statusText']}"
        time.sleep(0.5)


def test_ocean_js_runs_a_job_and_fetches_its_result(ocean_js: Driver, node: Node) -> None:
    envs = ocean_js("environments")
    assert [env["id"] for env in envs["8996"]] == [ENV], envs  # keyed by chain id
    assert isinstance(ocean_js("nonce"), int)
    dataset = {"documentId": node.dataset, "serviceId": "compute"}
    algorithm = {"documentId": node.algorithm, "serviceId": "access"}
    valid_until = int(time.time()) + 3600
    fees = ocean_js(
        "initializeCompute",
        datasets=[dataset],
        algorithm=algorithm,
        env=ENV,
        validUntil=valid_until,
    )
    dataset["transferTxId"] = node.pay(ocean_js.key, fees["datasets"][0])
    algorithm["transferTxId"] = node.pay(ocean_js.key, fees["algorithm"])
    (started,) = ocean_js("computeStart", env=ENV, dataset=dataset, algorithm=algorithm)
    job = finished(ocean_js, started["jobId"])
    assert (job["status"], job["statusText"]) == (70, "Job completed"), job
    index = next(r["index"] for r in job["results"] if r["filename"] == "result.json")
    url = ocean_js("getComputeResultUrl", jobId=job["jobId"], index=index)
    result = requests.get(url, timeout=10)
    assert result.json() == {"sum": sum(n * n for n in range(1, 101))}


def test_ocean_js_stops_and_deletes_a_running_job(ocean_js: Driver, node: Node) -> None:
    dataset = {"documentId": node.dataset, "serviceId": "compute"}
    algorithm = {"meta": {"rawcode": SLEEPER, "container": dict(SAMPLE_CONTAINER)}}
    valid_until = int(time.time()) + 3600
    fees = ocean_js(
        "initializeCompute",
        datasets=[dataset],
        algorithm=algorithm,
        env=ENV,
        validUntil=valid_until,
    )
    dataset["transferTxId"] = node.pay(ocean_js.key, fees["datasets"][0])
    (started,) = ocean_js("computeStart", env=ENV, dataset=dataset, algorithm=algorithm)
    job_id = started["jobId"]
    stopped = ocean_js("computeStop", did=node.dataset, jobId=job_id)
    assert [job["jobId"] for job in stopped] == [job_id], stopped
    job = finished(ocean_js, job_id)
    assert job["status"] != 70, job  # stopped, not completed
    (deleted,) = ocean_js("computeDelete", did=node.dataset, jobId=job_id)
    assert (deleted["jobId"], deleted["statusText"]) == (job_id, "Job deleted successfully")
    gone = ocean_js.run("computeStatus", jobId=job_id)
    assert gone.returncode == 1 and '"code":"job_not_found"' in gone.stderr, gone.stderr
