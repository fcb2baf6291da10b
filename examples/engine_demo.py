"""Run one job on the local engine, no chain needed, and show what happens.

Starts the real engine in this process (real bubblewrap; run as root, as the
engine itself must), serves a small CSV over loopback as the dataset, submits a
raw Python algorithm that sums it, prints each status change, then the outputs
and the algorithm log. Storage is a temporary directory, removed at the end.

    .venv/bin/python examples/engine_demo.py [--code my_algorithm.py]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

from eth_account import Account

from ocean_provider.compute.interfaces import Asset
from ocean_provider.compute.workflow import PreparedAlgorithm, PreparedInput, build_workflow
from ocean_provider.devnet.embedded import serve_directory, start_embedded_engine
from ocean_provider.operator.client import OperatorClient
from ocean_provider.wire.jobs import OperatorJob

DID = "did:op:" + "de" * 32
SAMPLE_ALGORITHM = """\
import json, os, pathlib
did = json.loads(os.environ["DIDS"])[0]
numbers = [float(x) for x in (pathlib.Path("/data/inputs") / did / "0").read_text().split()]
print(f"read {len(numbers)} numbers")
result = {"count": len(numbers), "sum": sum(numbers), "mean": sum(numbers) / len(numbers)}
pathlib.Path("/data/outputs/summary.json").write_text(json.dumps(result, indent=2))
"""
ENVIRONMENT = {"id": "demo", "desc": "demo", "maxJobs": 1, "maxJobDuration": 60, "ramGB": 0.5}


def job_workflow(code: str, data_url: str) -> dict[str, object]:
    dataset = PreparedInput(
        asset=Asset(did=DID, chain_id=8996, ddo={"id": DID}),
        service_id="compute",
        tx_id="0xdemo",
        files=[{"type": "url", "url": data_url, "method": "GET"}],
    )
    algorithm = PreparedAlgorithm(
        container={"entrypoint": "python $ALGO", "image": "python", "tag": "3.11"}, rawcode=code
    )
    return build_workflow(
        environment="demo",
        chain_id=8996,
        inputs=[dataset],
        algorithm=algorithm,
        metadata_uri=None,
        with_files=True,  # the local engine takes the files in the workflow
    )


def follow(engine_client: OperatorClient, owner: str, job_id: str) -> OperatorJob:
    """Print each status change until the job ends."""
    last = None
    while True:
        (job,) = engine_client.status(owner, job_id)
        if job.status != last:
            print(f"  status {job.status:>2}  {job.status_text}")
            last = job.status
        if job.date_finished is not None:
            return job
        time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description="Run one job on the local engine.")
    parser.add_argument("--code", type=Path, help="a Python algorithm (default: a summing one)")
    args = parser.parse_args()
    code = args.code.read_text() if args.code else SAMPLE_ALGORITHM
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    provider_key = Account.create().key.to_0x_hex()
    owner = str(Account.create().address)
    with tempfile.TemporaryDirectory(prefix="engine-demo-") as tmp:
        files = Path(tmp) / "files"
        files.mkdir()
        (files / "numbers.csv").write_text("".join(f"{i}\n" for i in range(1, 11)))
        server = serve_directory(files)
        engine = start_embedded_engine(Path(tmp) / "engine", [ENVIRONMENT], provider_key)
        try:
            data_url = f"{server.url}/numbers.csv"
            print(f"engine at {engine.url}; dataset {data_url}")
            (started,) = engine.client.start(owner, job_workflow(code, data_url))
            print(f"job {started.job_id}")
            job = follow(engine.client, owner, started.job_id)
            for result in job.results:
                stream = engine.client.result(owner, job.job_id, result.index, None)
                body = b"".join(stream.chunks()).decode("utf-8", "replace")
                print(f"\n--- result {result.index}: {result.filename} ({result.type})")
                print(body.rstrip())
            return 0 if job.status == 70 else 1
        finally:
            engine.close()
            server.close()


if __name__ == "__main__":
    sys.exit(main())
