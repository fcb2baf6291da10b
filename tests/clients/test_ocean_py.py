"""ocean.py 3.1.2 (``ocean-lib``, in its own venv: it pins web3 6) makes the compute flow's
Provider calls against the dev node through ``DataServiceProvider``:
``get_c2d_environments``, ``sign_message`` (ocean.py has no nonce method; this is its nonce
step, ``GET /nonce``, before every signed call), ``initialize_compute``,
``start_compute_job``, ``compute_job_status``, ``compute_job_result``, ``stop_compute_job``
and ``delete_compute_job``. The orders between initialize and start are placed by our
Python client, since they are chain transactions and not Provider calls.

The venv is made once, from a Python 3.10 interpreter when the machine has one: there every
call runs as ocean.py ships it. Without 3.10 it is made from this Python (3.11), where
ocean.py's ``enforce_types`` raises ``TypeError: typing.Any cannot be used with
isinstance()`` on methods with an ``Any`` parameter, so the driver calls their undecorated
functions (``__wrapped__``); the requests they send are the same. ``pytest -s`` prints which ran.
"""

from __future__ import annotations

import glob
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ocean_provider.devnet.assets import SAMPLE_CONTAINER
from ocean_provider.devnet.stack import CONSUMER_KEYS
from tests.clients.conftest import SLEEPER, Driver, Node

pytestmark = pytest.mark.integration

FOLDER = Path(__file__).with_name("ocean_py")
VENV = Path(__file__).with_name(".venv-oceanpy")
INSTALLED = VENV / "installed"  # written once ocean-lib is in
ENV = "ocean-compute"


def python310() -> str | None:
    found = [
        shutil.which("python3.10"),
        *sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.10*/bin/python3.10"))),
    ]
    for candidate in filter(None, found):
        if subprocess.run([candidate, "-c", ""], capture_output=True).returncode == 0:
            return candidate  # a pyenv shim without 3.10 selected fails here
    return None


def install() -> None:
    shutil.rmtree(VENV, ignore_errors=True)
    base = python310() or sys.executable
    steps = (
        [base, "-m", "venv", str(VENV)],
        [str(VENV / "bin" / "pip"), "install", "-q", "ocean-lib==3.1.2"],
    )
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            pytest.fail(f"making ocean.py's venv: {' '.join(step)} failed:\n{done.stderr}")
    INSTALLED.write_text("ocean-lib==3.1.2\n")


@pytest.fixture(scope="module")
def ocean_py(node: Node) -> Driver:
    """The driver as consumer 2, in ocean.py's venv (made on the first run)."""
    if not INSTALLED.exists():
        install()
    return Driver(
        [str(VENV / "bin" / "python"), str(FOLDER / "provider_calls.py")], node, CONSUMER_KEYS[1]
    )


def finished(ocean_py: Driver, did: str, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        job = ocean_py("compute_job_status", did=did, jobId=job_id)
        job = job[0] if isinstance(job, list) else job
        if job["dateFinished"] is not None:
            return dict(job)
        assert time.monotonic() < deadline, f"stuck at {job['status']} {job['statusText']}"
        time.sleep(0.5)


def test_ocean_py_runs_a_job_and_fetches_its_result(ocean_py: Driver, node: Node) -> None:
    envs = ocean_py("get_c2d_environments")
    assert [env["id"] for env in envs] == [ENV], envs
    signed = ocean_py("sign_message", did=node.dataset)
    assert signed["nonce"] >= 1 and signed["signature"].startswith("0x"), signed
    dataset = {"documentId": node.dataset, "serviceId": "compute"}
    algorithm = {"documentId": node.algorithm, "serviceId": "access"}
    valid_until = int(time.time()) + 3600
    fees = ocean_py(
        "initialize_compute",
        datasets=[dataset],
        algorithm=algorithm,
        env=ENV,
        validUntil=valid_until,
    )
    dataset["transferTxId"] = node.pay(ocean_py.key, fees["datasets"][0])
    algorithm["transferTxId"] = node.pay(ocean_py.key, fees["algorithm"])
    reply = ocean_py.reply("start_compute_job", env=ENV, dataset=dataset, algorithm=algorithm)
    print("ocean.py on", "3.11+, __wrapped__" if reply["unwrapped"] else "3.10, as shipped")
    job = finished(ocean_py, node.dataset, reply["result"]["jobId"])
    assert (job["status"], job["statusText"]) == (70, "Job completed"), job
    index = next(r["index"] for r in job["results"] if r["filename"] == "result.json")
    result = ocean_py("compute_job_result", jobId=job["jobId"], index=index)
    assert result == {"sum": sum(n * n for n in range(1, 101))}


def test_ocean_py_stops_and_deletes_a_running_job(ocean_py: Driver, node: Node) -> None:
    dataset = {"documentId": node.dataset, "serviceId": "compute"}
    algorithm = {"meta": {"rawcode": SLEEPER, "container": dict(SAMPLE_CONTAINER)}}
    valid_until = int(time.time()) + 3600
    fees = ocean_py(
        "initialize_compute",
        datasets=[dataset],
        algorithm=algorithm,
        env=ENV,
        validUntil=valid_until,
    )
    dataset["transferTxId"] = node.pay(ocean_py.key, fees["datasets"][0])
    job_id = ocean_py("start_compute_job", env=ENV, dataset=dataset, algorithm=algorithm)["jobId"]
    stopped = ocean_py("stop_compute_job", did=node.dataset, jobId=job_id)
    assert (stopped["jobId"], stopped["stopreq"]) == (job_id, 1), stopped
    job = finished(ocean_py, node.dataset, job_id)
    assert job["status"] != 70, job  # stopped, not completed
    deleted = ocean_py("delete_compute_job", did=node.dataset, jobId=job_id)
    assert (deleted["jobId"], deleted["statusText"]) == (job_id, "Job deleted successfully")
    gone = ocean_py.run("compute_job_status", did=node.dataset, jobId=job_id)
    assert gone.returncode == 1 and "job_not_found" in gone.stderr + gone.stdout, gone.stderr
