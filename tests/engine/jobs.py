"""Submit jobs to a running engine and wait for them (helpers for engine tests)."""

from __future__ import annotations

import itertools
import time
from typing import Any

from ocean_provider.compute.interfaces import Asset
from ocean_provider.compute.workflow import PreparedAlgorithm, PreparedInput, build_workflow
from ocean_provider.operator.client import OperatorClient
from ocean_provider.wire.jobs import OperatorJob

OWNER = "0xA78deb2Fa79463945C247991075E2a0e98Ba7A09"
DID = "did:op:" + "d" * 64
_tx = itertools.count(1)
DATA_URL: list[str] = [""]  # set by the data_url fixture


def workflow(
    code: str,
    files_url: str | None,
    *,
    image: str = "python",
    env: str = "local",
    network: bool = False,
) -> dict[str, Any]:
    """A raw-code job over one URL dataset, built by the Provider's own workflow builder."""
    url = DATA_URL[0] if files_url == "DATA_URL" else files_url
    dataset = PreparedInput(
        asset=Asset(did=DID, chain_id=8996, ddo={"id": DID}),
        service_id="c",
        tx_id=f"0xagree{next(_tx)}",
        files=[{"type": "url", "url": url, "method": "GET"}] if url else [],
        allow_network=network,
    )
    algorithm = PreparedAlgorithm(
        container={"entrypoint": "python $ALGO", "image": image, "tag": "3.11"},
        rawcode=code,
        customdata={"threshold": 50},
    )
    return build_workflow(
        environment=env,
        chain_id=8996,
        inputs=[dataset],
        algorithm=algorithm,
        metadata_uri=None,
        with_files=True,  # our engine takes the files in the workflow
    )


def submit(client: OperatorClient, code: str, files_url: str | None = None, **kw: Any) -> str:
    jobs = client.start(OWNER, workflow(code, files_url, **kw))
    assert jobs[0].status == 1
    return jobs[0].job_id


def wait(
    client: OperatorClient, job_id: str, until: set[int] | None = None, timeout: float = 60
) -> OperatorJob:
    """Poll until the job reaches one of ``until`` (default: any terminal state)."""
    deadline = time.monotonic() + timeout
    while True:
        (job,) = client.status(OWNER, job_id)
        done = job.date_finished is not None if until is None else job.status in until
        if done:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} stuck at {job.status} {job.status_text}")
        time.sleep(0.1)


def read_result(client: OperatorClient, job: OperatorJob, kind_or_name: str) -> bytes:
    match = [r for r in job.results if kind_or_name in (r.type, r.filename)]
    assert match, f"no result {kind_or_name} in {job.results}"
    stream = client.result(OWNER, job.job_id, match[0].index, None)
    return b"".join(stream.chunks())
