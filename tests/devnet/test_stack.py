"""``ocean-provider dev`` as a user runs it: the console script, real anvil, engine and
Provider. The first start deploys and publishes, and the sample algorithm computes on the
sample dataset as a consumer orders it; Ctrl-C leaves no process and no bound
port; a second start on the same folder reuses the chain and the samples, and one whose
``dev.json`` predates the second dataset publishes just that; a taken port is a clear
error before anything starts."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_account import Account
from web3 import Web3

from ocean_provider.auth.messages import job_message, result_message, start_message
from ocean_provider.devnet.assets import SAMPLE_CONTAINER, start_order
from ocean_provider.devnet.ports import free_port
from ocean_provider.devnet.samples import SAMPLE_ALGORITHM
from ocean_provider.devnet.stack import CONSUMER_KEYS, DevOptions, check_ports
from tests.conftest import Consumer

pytestmark = pytest.mark.integration

CLI = Path(sys.executable).with_name("ocean-provider")  # the console script in the venv


@dataclass
class Started:
    process: subprocess.Popen[str]
    output: str  # everything printed up to "ready"
    seconds: float  # until "ready"
    tree: set[int]  # the command and every process under it, once ready

    def did(self, kind: str) -> str:
        found = re.search(rf"^{kind} DID\s+(did:op:[0-9a-f]{{64}})", self.output, re.MULTILINE)
        assert found, self.output
        return found.group(1)


def options(state_dir: Path) -> DevOptions:
    ports: set[int] = set()
    while len(ports) < 4:
        ports.add(free_port())
    provider, engine, chain, files = sorted(ports)
    return DevOptions(state_dir, False, provider, engine, chain, files)


def argv(o: DevOptions) -> list[str]:
    return [str(CLI), "dev", "--state-dir", str(o.state_dir)] + [
        f"--provider-port={o.provider_port}",
        f"--engine-port={o.engine_port}",
        f"--chain-port={o.chain_port}",
        f"--files-port={o.files_port}",
    ]


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = {pid}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def start(o: DevOptions) -> Started:
    began = time.monotonic()
    process = subprocess.Popen(
        argv(o), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=o.state_dir.parent
    )
    assert process.stdout is not None
    lines: list[str] = []
    while not any("==> ready" in line for line in lines):
        line = process.stdout.readline()  # the stack gives up by itself within 60 s
        if not line:
            process.wait(10)
            pytest.fail(f"dev stack exited with {process.returncode}:\n{''.join(lines)}")
        lines.append(line)
    seconds = time.monotonic() - began
    return Started(process, "".join(lines), seconds, descendants(process.pid))


def interrupt(started: Started, o: DevOptions) -> str:
    """Ctrl-C; the rest of the output. Nothing of the stack may survive it."""
    started.process.send_signal(signal.SIGINT)
    rest, _ = started.process.communicate(timeout=30)
    assert started.process.returncode == 0, rest
    assert "==> stopped" in rest
    survivors = [pid for pid in started.tree if alive(pid)]
    assert survivors == [], survivors
    check_ports(o)  # raises PortInUse if any is still bound
    return rest


def initialize_compute(
    provider: str, dataset_did: str, algorithm_did: str | None = None
) -> requests.Response:
    """Fees for the sample algorithm, raw or (``algorithm_did``) published, on a dataset."""
    raw = {"rawcode": SAMPLE_ALGORITHM.decode(), "container": dict(SAMPLE_CONTAINER)}
    body: dict[str, Any] = {
        "datasets": [{"documentId": dataset_did, "serviceId": "compute"}],
        "algorithm": {"documentId": algorithm_did, "serviceId": "access"}
        if algorithm_did
        else {"meta": raw},
        "compute": {"env": "ocean-compute", "validUntil": int(time.time()) + 3600},
        "consumerAddress": Account.from_key(CONSUMER_KEYS[0]).address,
    }
    return requests.post(f"{provider}/api/services/initializeCompute", json=body, timeout=30)


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevOptions]:
    o = options(tmp_path_factory.mktemp("dev") / "state")
    o.state_dir.parent.mkdir(parents=True, exist_ok=True)
    yield o


@pytest.fixture(scope="module")
def first(state: DevOptions) -> Iterator[Started]:
    started = start(state)
    try:
        yield started
    finally:
        if started.process.poll() is None:
            started.process.terminate()  # only if a test failed midway (or was deselected)
            started.process.wait(30)
        if started.process.stdout is not None:
            started.process.stdout.close()


def test_the_first_start_deploys_publishes_and_serves(first: Started, state: DevOptions) -> None:
    assert "==> deploying" in first.output and "==> publishing" in first.output
    assert "chain id 8996" in first.output and str(state.state_dir / "address.json") in first.output
    for key in CONSUMER_KEYS:
        assert f"{Account.from_key(key).address}  {key}" in first.output
    provider = state.url(state.provider_port)
    assert requests.get(provider, timeout=10).status_code == 200
    envs = requests.get(
        f"{provider}/api/services/computeEnvironments", params={"chainId": 8996}, timeout=10
    )
    assert envs.status_code == 200, envs.text
    assert [env["id"] for env in envs.json()] == ["ocean-compute"]
    reply = initialize_compute(provider, first.did("dataset"))
    assert reply.status_code == 200, reply.text


def test_the_api_docs_page_and_document_are_served(first: Started, state: DevOptions) -> None:
    """What a newcomer opens first: GET / links the docs, the page and its UI files load
    from this node (no CDN), and the document names no other server, so "Try it out"
    calls the dev node itself."""
    provider = state.url(state.provider_port)
    assert f"API docs        {provider}/api/docs/" in first.output
    links = requests.get(provider, timeout=10).json()["apiDocs"]
    page = requests.get(provider + links["docs"], timeout=10)
    assert page.status_code == 200 and "swagger-ui" in page.text
    assert requests.get(provider + links["docs"] + "swagger-ui.css", timeout=10).ok
    document = requests.get(provider + links["openapi"], timeout=10).json()
    assert document.get("servers", []) in ([], [{"url": "/"}])
    assert {"/api/services/compute", "/api/services/initializeCompute"} <= set(document["paths"])


def test_the_second_dataset_is_published_recorded_and_trusts_the_sample_algorithm(
    first: Started, state: DevOptions
) -> None:
    second = first.did("dataset 2")
    assert second not in (first.did("dataset"), first.did("algorithm"))
    recorded = json.loads((state.state_dir / "dev.json").read_text())
    assert recorded["second_dataset_did"] == second
    assert recorded["dataset_did"] == first.did("dataset")
    reply = initialize_compute(state.url(state.provider_port), second, first.did("algorithm"))
    assert reply.status_code == 200, reply.text
    assert [item["datatoken"] for item in reply.json()["datasets"]] == [
        recorded["second_dataset_datatoken"]
    ]


def test_the_sample_algorithm_computes_on_the_sample_dataset(
    first: Started, state: DevOptions
) -> None:
    """As a consumer would: fees, two orders on chain, a signed start, status, the result."""
    provider, consumer = state.url(state.provider_port), Consumer(CONSUMER_KEYS[1])
    dataset, algorithm = first.did("dataset"), first.did("algorithm")
    body = {
        "datasets": [{"documentId": dataset, "serviceId": "compute"}],
        "algorithm": {"documentId": algorithm, "serviceId": "access"},
        "compute": {"env": "ocean-compute", "validUntil": int(time.time()) + 3600},
        "consumerAddress": consumer.address,
    }
    fees = requests.post(f"{provider}/api/services/initializeCompute", json=body, timeout=30)
    assert fees.status_code == 200, fees.text
    w3 = Web3(Web3.HTTPProvider(state.url(state.chain_port)))
    dataset_tx, algorithm_tx = (
        start_order(
            w3,
            item["datatoken"],
            consumer.key,
            consumer=consumer.address,
            service_index=0,
            provider_fee=item["providerFee"],
        )
        for item in (fees.json()["datasets"][0], fees.json()["algorithm"])
    )
    nonce = consumer.nonce()
    started = requests.post(
        f"{provider}/api/services/compute",
        json={
            "consumerAddress": consumer.address,
            "nonce": nonce,
            "signature": consumer.sign(start_message(consumer.address, dataset), nonce),
            "environment": "ocean-compute",
            "dataset": {"documentId": dataset, "serviceId": "compute", "transferTxId": dataset_tx},
            "algorithm": {
                "documentId": algorithm,
                "serviceId": "access",
                "transferTxId": algorithm_tx,
            },
        },
        timeout=60,
    )
    assert started.status_code == 200, started.text
    job = finished(provider, consumer, started.json()[0]["jobId"])
    assert (job["status"], job["statusText"]) == (70, "Job completed"), job
    index = next(r["index"] for r in job["results"] if r["filename"] == "result.json")
    nonce = consumer.nonce()
    signature = consumer.sign(result_message(consumer.address, job["jobId"], index), nonce)
    params = {"consumerAddress": consumer.address, "jobId": job["jobId"], "index": index}
    result = requests.get(
        f"{provider}/api/services/computeResult",
        params={**params, "nonce": nonce, "signature": signature},
        timeout=10,
    )
    assert result.json() == {"sum": sum(n * n for n in range(1, 101))}


def test_metrics_show_the_sample_job(first: Started, state: DevOptions) -> None:
    """The issue's done-when: after the job above, the engine's /metrics counts it as
    completed in its environment, and the Provider's counts the start it sent there."""
    engine = _samples(state.url(state.engine_port))
    completed = {("environment", "ocean-compute"), ("status", "70")}
    assert engine.get(("ocean_engine_jobs", frozenset(completed)), 0) >= 1, engine
    provider = _samples(state.url(state.provider_port))
    started = {("call", "start"), ("outcome", "ok")}
    assert provider.get(("ocean_provider_engine_calls_total", frozenset(started)), 0) >= 1
    route = {("route", "/api/services/compute"), ("method", "POST"), ("status", "200")}
    assert provider.get(("ocean_provider_http_requests_total", frozenset(route)), 0) >= 1


def _samples(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(f"{url}/metrics", timeout=10).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def finished(provider: str, consumer: Consumer, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        nonce = consumer.nonce()
        signature = consumer.sign(job_message(consumer.address, job_id, None), nonce)
        params = {"consumerAddress": consumer.address, "jobId": job_id}
        reply = requests.get(
            f"{provider}/api/services/compute",
            params={**params, "nonce": nonce, "signature": signature},
            timeout=10,
        )
        assert reply.status_code == 200, reply.text
        (job,) = reply.json()
        if job["dateFinished"] is not None:
            return dict(job)
        assert time.monotonic() < deadline, f"stuck at {job['status']} {job['statusText']}"
        time.sleep(0.2)


def demo(state: DevOptions, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [str(CLI), "demo", "--state-dir", str(state.state_dir), *extra]
    command.append(f"--chain-url={state.url(state.chain_port)}")
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_the_demo_runs_the_sample_job_and_prints_its_results(
    first: Started, state: DevOptions
) -> None:
    done = demo(state, "--consumer=2")
    assert done.returncode == 0, done.stdout + done.stderr
    for shown in ("==> nonce:", "initializeCompute", "ordered on chain 8996", "Job completed"):
        assert shown in done.stdout, done.stdout
    assert '{"sum": 338350}' in done.stdout and "summed 100 squares" in done.stdout


def test_the_demo_runs_your_file_and_fails_with_one_line(
    first: Started, state: DevOptions, tmp_path: Path
) -> None:
    mine = tmp_path / "mine.py"
    mine.write_text('open("/data/outputs/hello.txt", "w").write("hello from my file")\n')
    done = demo(state, f"--algorithm={mine}", "--consumer=2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "hello from my file" in done.stdout
    mine.write_text("raise SystemExit(3)\n")
    failed = demo(state, f"--algorithm={mine}", "--consumer=2")
    assert failed.returncode == 1
    last = failed.stdout.strip().splitlines()[-1]
    assert last == "demo failed: the job ended with status 41 (Algorithm failed: exit code 3)"


def test_the_demo_adds_the_second_dataset_as_an_additional_input(
    first: Started, state: DevOptions, tmp_path: Path
) -> None:
    mine = tmp_path / "all_inputs.py"
    mine.write_text(
        "import json, os\n"
        "for did in json.loads(os.environ['DIDS']):\n"
        "    rows = open(f'/data/inputs/{did}/0').read().split()[1:]\n"
        "    print(did, sum(int(row.split(',')[1]) for row in rows))\n"
    )
    second = first.did("dataset 2")
    done = demo(state, f"--algorithm={mine}", f"--additional={second}", "--consumer=2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"==> additional dataset {second}: ordered on chain 8996" in done.stdout
    assert f"{first.did('dataset')} 338350" in done.stdout, done.stdout
    assert f"{second} 2348350" in done.stdout, done.stdout


def test_ctrl_c_stops_everything(first: Started, state: DevOptions) -> None:
    assert len(first.tree) >= 6  # the command, anvil, files, engine and the Provider's master
    interrupt(first, state)
    assert (state.state_dir / "chain-state.json").stat().st_size > 0  # anvil dumped its chain


def test_a_second_start_reuses_the_chain_and_the_samples(first: Started, state: DevOptions) -> None:
    if first.process.poll() is None:
        interrupt(first, state)
    second = start(state)
    try:
        assert "==> reusing the chain" in second.output
        assert "==> deploying" not in second.output and "==> publishing" not in second.output
        assert second.did("dataset") == first.did("dataset")
        assert second.did("algorithm") == first.did("algorithm")
        assert second.did("dataset 2") == first.did("dataset 2")
        reply = initialize_compute(state.url(state.provider_port), second.did("dataset"))
        assert reply.status_code == 200, reply.text
    finally:
        if second.process.poll() is None:
            interrupt(second, state)
    assert second.seconds < 20  # no deployment, no publishing: the servers' boot only


def test_a_record_from_before_the_second_dataset_gets_just_that_one_published(
    first: Started, state: DevOptions
) -> None:
    if first.process.poll() is None:
        interrupt(first, state)
    record = state.state_dir / "dev.json"
    older = json.loads(record.read_text())
    del older["second_dataset_did"], older["second_dataset_datatoken"]
    record.write_text(json.dumps(older))
    third = start(state)
    try:
        assert "==> reusing the chain" in third.output
        assert "==> publishing the second sample dataset (dev.json predates it)" in third.output
        assert "==> publishing the sample algorithm" not in third.output
        assert (third.did("dataset"), third.did("algorithm")) == (
            first.did("dataset"),
            first.did("algorithm"),
        )
        second = third.did("dataset 2")
        assert second != first.did("dataset 2")  # a new asset on the kept chain
        now = json.loads(record.read_text())  # the rest kept, the new dataset added
        assert ({k: now[k] for k in older}, now["second_dataset_did"]) == (older, second)
        provider = state.url(state.provider_port)
        reply = initialize_compute(provider, second, third.did("algorithm"))
        assert reply.status_code == 200, reply.text
    finally:
        if third.process.poll() is None:
            interrupt(third, state)


def test_a_port_in_use_is_a_clear_error_before_anything_starts(tmp_path: Path) -> None:
    o = options(tmp_path / "state")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", o.engine_port))
        taken.listen()
        result = subprocess.run(argv(o), capture_output=True, text=True, timeout=30)
    assert result.returncode == 1, result.stdout + result.stderr
    message = f"port {o.engine_port} is already in use (the engine's); stop what uses it or pass"
    assert f"{message} --engine-port" in result.stderr
    assert not o.state_dir.exists()
