"""Ocean's own ``pod-configuration`` 1.1.1 (the first pod of a job on Ocean's Kubernetes
engine; ``tests/pod_configuration``, unmodified) provisions a job through this Provider.

On anvil with Ocean's contracts: an algorithm and a dataset published as Ocean's clients
publish them, ordered by the user (payer) for the environment's operator (consumer), a
start through our Provider to an Operator-Service stand-in that records the body it is
sent, as Ocean's Operator-Service stores it. pod-configuration then gets that workflow as
operator-engine hands it over (``workflow.json``, the operator's key, PostgreSQL with the
``jobs`` row), fetches the DDOs from an Aquarius stand-in, each input and the algorithm
through our ``fileinfo`` and ``download`` (the real order check, the real fetcher, a real
file server), and writes its status into PostgreSQL: 30, with Ocean's folder layout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_account import Account

from ocean_provider.app import create_app
from ocean_provider.auth.messages import start_message
from ocean_provider.devnet.assets import (
    PublishedAsset,
    start_order,
)
from ocean_provider.devnet.embedded import serve_app, serve_directory
from ocean_provider.devnet.stub_engine import json_stub
from ocean_provider.wire.jobs import ACCEPTS_FILES
from tests.api.helpers import ENVIRONMENT, engine_job
from tests.conftest import Consumer, make_settings
from tests.devchain import DevChain
from tests.e2e.postgres import Postgres, postgres_server
from tests.published_node import NUMBERS, SUM_ALGORITHM, publish_samples, write_sample_files

pytestmark = pytest.mark.integration

POD_CONFIGURATION = Path(__file__).parents[1] / "pod_configuration"
OPERATOR_KEY = "0x" + "07" * 32  # the operator-engine's OPERATOR_PRIVATE_KEY (test key)
OPERATOR = str(Account.from_key(OPERATOR_KEY).address)
ENV = "ocean-compute"
DATABASE = "computedb"


@dataclass
class Cluster:
    """What Ocean's Kubernetes side would be: Operator-Service, Aquarius, PostgreSQL."""

    provider: str
    chain: DevChain
    dataset: PublishedAsset
    algorithm: PublishedAsset
    started: list[dict[str, Any]]  # the bodies POST /compute brought to Operator-Service
    db: Postgres
    files_url: str  # the file server: never in a reply of ours


@pytest.fixture(scope="module")
def pod_configuration() -> Path:
    """``npm ci`` once if ``node_modules`` is missing; the program's entry point."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.fail(f"pod-configuration needs {tool} on PATH (apt-get install nodejs npm)")
    if not (POD_CONFIGURATION / "node_modules" / "web3").is_dir():
        done = subprocess.run(
            # no install scripts: the native addons web3 may build all have JS fallbacks
            ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=POD_CONFIGURATION,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"npm ci in {POD_CONFIGURATION} failed:\n{done.stdout}{done.stderr}")
    return POD_CONFIGURATION / "src" / "index.js"


def _serve(server: Any) -> None:
    threading.Thread(target=server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def cluster(devchain: DevChain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("pod-configuration")
    ddos: dict[str, Any] = {}
    started: list[dict[str, Any]] = []

    def operator_post(path: str, body: Any) -> Any:
        started.append(body)
        return [engine_job(body["owner"], f"job{len(started)}", agreementId=body["agreementId"])]

    # Ocean's engine announces no ACCEPTS_FILES: it gets no decrypted file in the workflow
    announced = {k: v for k, v in ENVIRONMENT.items() if k != ACCEPTS_FILES}
    environments = [{**announced, "id": ENV, "consumerAddress": OPERATOR}]
    operator_service = json_stub(lambda path: environments, operator_post)
    aquarius = json_stub(lambda path: ddos.get(path.rsplit("/", 1)[-1]))
    for server in (operator_service, aquarius):
        _serve(server)
    files = serve_directory(write_sample_files(root / "files"))
    settings = make_settings(
        root,
        NETWORK_URL=devchain.url,
        PROVIDER_PRIVATE_KEY=devchain.provider_key,
        ADDRESS_FILE=str(devchain.address_file),
        OPERATOR_SERVICE_URL=f"http://127.0.0.1:{operator_service.server_port}",
        AQUARIUS_URL=f"http://127.0.0.1:{aquarius.server_port}",  # the workflow's metadataUri
        ALLOW_PRIVATE_DOWNLOADS="true",  # the files are served on loopback
        REQUEST_TIMEOUT="30",
    )
    provider = serve_app(create_app(settings), "provider")
    try:
        dataset, algorithm, extra = publish_samples(devchain, provider.url, files.url)
        ddos.update({asset.did: asset.ddo for asset in (dataset, algorithm, extra)})
        with postgres_server() as db:
            db.sql(f"CREATE DATABASE {DATABASE}")
            db.sql(JOBS_TABLE, DATABASE)
            yield Cluster(provider.url, devchain, dataset, algorithm, started, db, files.url)
    finally:
        provider.close()
        files.close()
        for server in (operator_service, aquarius):
            server.shutdown()
            server.server_close()


# operator-service's table (admin_routes.py init_pgsql_compute), the columns a job row uses
JOBS_TABLE = """CREATE TABLE jobs (
    agreementId varchar(255) NOT NULL, workflowId varchar(255) NOT NULL, owner varchar(255),
    status int, statusText varchar(255), dateCreated timestamp default NOW(),
    dateFinished timestamp default NULL, namespace varchar(255), workflow text)"""


def start_job(cluster: Cluster, user: Consumer, consumer: str) -> dict[str, Any]:
    """initializeCompute, the two orders (``consumer`` named, ``user`` pays), POST /compute;
    the body Operator-Service received."""
    body: dict[str, Any] = {
        "datasets": [{"documentId": cluster.dataset.did, "serviceId": "compute"}],
        "algorithm": {"documentId": cluster.algorithm.did, "serviceId": "access"},
        "compute": {"env": ENV, "validUntil": int(time.time()) + 3600},
        "consumerAddress": user.address,
    }
    reply = requests.post(
        f"{cluster.provider}/api/services/initializeCompute", json=body, timeout=30
    )
    assert reply.status_code == 200, reply.text
    fees = reply.json()

    def order(item: dict[str, Any]) -> str:
        return start_order(
            cluster.chain.w3,
            item["datatoken"],
            user.key,
            consumer=consumer,
            service_index=0,
            provider_fee=item["providerFee"],
        )

    nonce = user.nonce()
    start = {
        "consumerAddress": user.address,
        "nonce": nonce,
        "signature": user.sign(start_message(user.address, cluster.dataset.did), nonce),
        "environment": ENV,
        "dataset": {
            "documentId": cluster.dataset.did,
            "serviceId": "compute",
            "transferTxId": order(fees["datasets"][0]),
        },
        "algorithm": {
            "documentId": cluster.algorithm.did,
            "serviceId": "access",
            "transferTxId": order(fees["algorithm"]),
        },
    }
    reply = requests.post(f"{cluster.provider}/api/services/compute", json=start, timeout=60)
    assert reply.status_code == 200, reply.text
    return cluster.started[-1]


def configure(cluster: Cluster, program: Path, job: dict[str, Any], root: Path) -> int:
    """Run pod-configuration as operator-engine's configure pod does; its status in the
    ``jobs`` row afterwards."""
    job_id = f"job{len(cluster.started)}"
    workflow = root / "workflow.json"  # the configmap: the workflow Operator-Service stored
    workflow.write_text(json.dumps(job["workflow"]))
    assert cluster.files_url not in workflow.read_text()  # the algorithm's pod can read it
    volume = root / "data"
    volume.mkdir()
    cluster.db.sql(
        "INSERT INTO jobs (agreementId, workflowId, owner, status, statusText, namespace) "
        f"VALUES ('{job['agreementId']}', '{job_id}', '{job['owner']}', 20, "
        f"'Configuring volumes', '{ENV}')",
        DATABASE,
    )
    done = subprocess.run(
        [str(shutil.which("node")), str(program), "--workflow", str(workflow)]
        + ["--path", str(volume), "--workflowid", job_id, "--verbose"],
        env={  # what operator-engine gives the configure pod, and no more
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PRIVATE_KEY": OPERATOR_KEY,
            **cluster.db.environ(DATABASE),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    (root / "configure.log").write_text(done.stdout + done.stderr)
    assert done.returncode == 0, done.stdout + done.stderr
    row = cluster.db.sql(
        f"SELECT status, statusText FROM jobs WHERE workflowId = '{job_id}'", DATABASE
    )
    status, text = row.split("|")
    assert done.stdout.count(f"Updated {job_id} with status {status}") == 1, done.stdout
    assert text == {"30": "Provisioning success", "31": "Data provisioning failed"}[status]
    return int(status)


def test_pod_configuration_provisions_a_job_through_the_provider(
    cluster: Cluster, pod_configuration: Path, tmp_path: Path
) -> None:
    user = Consumer(cluster.chain.consumer_key)
    job = start_job(cluster, user, consumer=OPERATOR)
    assert configure(cluster, pod_configuration, job, tmp_path) == 30
    data = tmp_path / "data"
    dataset = cluster.dataset.did.removeprefix("did:op:")
    assert (data / "inputs" / dataset / "0").read_text() == NUMBERS
    assert (data / "transformations" / "algorithm").read_bytes() == SUM_ALGORITHM
    for asset in (cluster.dataset, cluster.algorithm):
        ddo = json.loads((data / "ddos" / asset.did.removeprefix("did:op:")).read_text())
        assert ddo["id"] == asset.did
    assert (data / "logs" / "algorithm.log").exists() and (data / "outputs").is_dir()
    log = (tmp_path / "configure.log").read_text()  # it prints our fileinfo replies
    assert "index: 0" in log and cluster.files_url not in log


def test_an_order_for_the_user_is_not_the_operators(
    cluster: Cluster, pod_configuration: Path, tmp_path: Path
) -> None:
    """Orders that name the user as consumer: our start takes them (the user signs), but the
    operator's download is refused (``order_wrong_consumer``), so the job ends in 31."""
    user = Consumer(cluster.chain.consumer_key)
    job = start_job(cluster, user, consumer=user.address)
    assert configure(cluster, pod_configuration, job, tmp_path) == 31
    dataset = cluster.dataset.did.removeprefix("did:op:")
    assert (tmp_path / "data" / "inputs" / dataset / "0").read_bytes() == b""  # got's empty file
    assert "Response code 400" in (tmp_path / "configure.log").read_text()
