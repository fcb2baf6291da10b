"""Scheduling under maxJobs, and recovery after the engine is killed mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from ocean_provider.devnet.embedded import EmbeddedEngine
from ocean_provider.devnet.ports import free_port
from ocean_provider.operator.client import OperatorClient
from tests.conftest import PROVIDER_KEY
from tests.engine.conftest import PROVIDER_ADDRESS, environment, start_engine
from tests.engine.jobs import OWNER, submit, wait

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("data_url")]


def test_twenty_jobs_never_more_than_max_jobs_running(
    running_engine: EmbeddedEngine, data_url: str
) -> None:
    client = running_engine.client
    store = running_engine.context.store
    peak = 0
    sampling = True

    def sample() -> None:
        nonlocal peak
        while sampling:
            peak = max(peak, store.running_count("local"))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        ids = [submit(client, "import time; time.sleep(0.3)", data_url) for _ in range(20)]
        queued = [job.status for job in client.status(OWNER)]
        jobs = [wait(client, job_id, timeout=120) for job_id in ids]
    finally:
        sampling = False
        sampler.join()
    assert 1 in queued  # some waited in the FIFO queue
    assert [job.status for job in jobs] == [70] * 20
    assert peak == 2
    envs = client.environments(8996)
    assert envs[0]["maxJobs"] == 2 and envs[0]["currentJobs"] == 0


def _engine_process(storage: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ALLOWED_PROVIDERS": json.dumps([PROVIDER_ADDRESS]),
        "ENGINE_ENVIRONMENTS": json.dumps({"environments": [environment(maxJobs=1)]}),
        "ENGINE_STORAGE": str(storage),
        "ALLOW_PRIVATE_DOWNLOADS": "true",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "ocean_provider.cli", "engine", "--bind", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            health = requests.get(f"http://127.0.0.1:{port}/api/v1/operator/health", timeout=1)
            if health.status_code == 200:
                return proc
        except requests.RequestException:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("engine did not start")


def test_engine_killed_mid_run_recovers(tmp_path: Path, data_url: str) -> None:
    port = free_port()
    storage = tmp_path / "engine"
    proc = _engine_process(storage, port)
    client = OperatorClient(
        f"http://127.0.0.1:{port}", PROVIDER_KEY, connect_timeout=2, read_timeout=10, backoff=0.2
    )
    try:
        running = submit(client, "import time; time.sleep(60)", data_url)
        queued = submit(client, "print('after restart')", data_url)
        wait(client, running, until={40})
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        proc = _engine_process(storage, port)
        interrupted = wait(client, running, timeout=20)
        assert interrupted.status == 41
        assert "interrupted by an engine restart" in interrupted.status_text
        assert wait(client, queued, timeout=60).status == 70
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        client.close()


def test_job_queued_past_max_queue_wait_ends_42(tmp_path: Path, data_url: str) -> None:
    engine = start_engine(tmp_path / "e", [environment(maxJobs=1, maxQueueSeconds=1)])
    client = engine.client
    try:
        running = submit(client, "import time; time.sleep(30)", data_url)
        wait(client, running, until={40})
        queued = submit(client, "print(1)", data_url)
        job = wait(client, queued, timeout=20)  # 1 s of queue plus the deadline grace
        assert (job.status, job.status_text) == (42, "Job timed out: waited too long in the queue")
        (still,) = client.status(OWNER, running)
        assert still.status == 40
    finally:
        engine.close()


def test_shutdown_ends_running_jobs_with_a_clear_reason(tmp_path: Path, data_url: str) -> None:
    engine = start_engine(tmp_path / "e", [environment()])
    job_id = submit(engine.client, "import time; time.sleep(60)", data_url)
    wait(engine.client, job_id, until={40})
    engine.close()  # stops the sandbox and lets the job's thread publish
    record = engine.context.store.get(job_id)
    assert record is not None
    assert (record.job.status, record.job.status_text) == (
        41,
        "Algorithm failed: interrupted by an engine shutdown",
    )
