"""``ocean-provider demo``: one compute job as a consumer runs it, against ``ocean-provider dev``.

Reads what the dev node published (``dev.json`` in its state folder), then, with the
consumer client: the nonce, initializeCompute, the orders on chain with the Provider's
fees, the signed start, the job's status live (status text and elapsed time), and the
results and the algorithm's log. ``--algorithm FILE`` runs your own Python file as a raw
algorithm on the sample dataset (or on ``--dataset DID``); ``--additional DID`` adds an input
(``additionalDatasets``, each with its own order), such as the second sample dataset. The
exit code is 0 when the job completed, 1 with a one-line reason otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

import requests
from web3 import Web3

from ocean_provider.client import (
    ClientError,
    FeeItem,
    Job,
    Ordered,
    ProviderClient,
    RawAlgorithm,
    ServiceRef,
    order,
)
from ocean_provider.devnet.anvil import DEV_CHAIN_ID
from ocean_provider.devnet.assets import SAMPLE_CONTAINER
from ocean_provider.devnet.samples import DEV_ENVIRONMENT
from ocean_provider.devnet.stack import CONSUMER_KEYS, DevOptions, StateDir

Say = Callable[[str], None]
COMPLETED = 70
DEFAULT_STATE = DevOptions(Path(".local/dev")).state_dir
SHOWN_BYTES = 4096  # of each result printed; the rest is summarised


class DemoFailed(Exception):
    """The one-line reason the demo stops."""


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    try:
        job = _demo(args, out)
    except DemoFailed as failed:
        print(f"demo failed: {failed}", file=out, flush=True)
        return 1
    except ClientError as refused:
        print(f"demo failed: the Provider refused: {refused}", file=out, flush=True)
        return 1
    except requests.RequestException as exc:
        reason = f"cannot reach the dev node ({type(exc).__name__}); is `scripts/up` running?"
        print(f"demo failed: {reason}", file=out, flush=True)
        return 1
    if job.status != COMPLETED:
        reason = f"the job ended with status {job.status} ({job.status_text})"
        print(f"demo failed: {reason}", file=out, flush=True)
        return 1
    return 0


def _demo(args: argparse.Namespace, out: TextIO) -> Job:
    state = StateDir(args.state_dir.resolve())
    if not state.published.exists():
        raise DemoFailed(f"no dev node in {state.root}: start one with `scripts/up`")
    sample = json.loads(state.published.read_text())
    dataset_dids = [args.dataset or sample["dataset_did"], *args.additional]
    consumer_key = CONSUMER_KEYS[args.consumer]
    w3 = Web3(Web3.HTTPProvider(args.chain_url, request_kwargs={"timeout": 30}))
    with ProviderClient(sample["provider_url"], consumer_key) as client:
        say = _printer(out)
        say(f"consumer {client.address}, Provider {sample['provider_url']}")
        say(f"nonce: {client.nonce()}")
        algorithm = _algorithm(args.algorithm, sample["algorithm_did"], say)
        datasets = [ServiceRef(did, args.service) for did in dataset_dids]
        env = str(DEV_ENVIRONMENT["id"])
        valid_until = int(time.time()) + 3600
        fees = client.initialize(datasets, algorithm, env, valid_until)
        say(f"initializeCompute: provider fee of {_amount(fees.datasets[0])} for {env}")
        if len(fees.datasets) != len(datasets):
            raise DemoFailed(f"initializeCompute priced {len(fees.datasets)} of the datasets")
        ordered = [
            Ordered(ref.did, ref.service_id, _pay(w3, consumer_key, item, say, what))
            for ref, item, what in zip(datasets, fees.datasets, _names(datasets), strict=True)
        ]
        algorithm_order = _order_algorithm(w3, consumer_key, algorithm, fees.algorithm, say)
        started = client.start(ordered[0], algorithm_order, env, additional=ordered[1:])
        say(f"job {started.job_id} started")
        job = _follow(client, started.job_id, out, args.timeout)
        _show_results(client, job, out)
        return job


def _algorithm(file: Path | None, sample_did: str, say: Say) -> ServiceRef | RawAlgorithm:
    """``file`` as a raw algorithm, or the sample algorithm by DID."""
    if file is None:
        say(f"algorithm: {sample_did} (published)")
        return ServiceRef(sample_did, "access")
    say(f"algorithm: your file {file} (raw)")
    return RawAlgorithm(container=dict(SAMPLE_CONTAINER), rawcode=file.read_text())


def _names(datasets: Sequence[ServiceRef]) -> list[str]:
    return ["dataset"] + [f"additional dataset {ref.did}" for ref in datasets[1:]]


def _order_algorithm(
    w3: Web3, key: str, algorithm: ServiceRef | RawAlgorithm, fee: FeeItem | None, say: Say
) -> Ordered | RawAlgorithm:
    """A published algorithm ordered with its ``fee``; a raw one as it is."""
    if isinstance(algorithm, RawAlgorithm):
        return algorithm
    if fee is None:
        raise DemoFailed("initializeCompute returned no fee for the algorithm")
    return Ordered(algorithm.did, algorithm.service_id, _pay(w3, key, fee, say, "algorithm"))


def _pay(w3: Web3, key: str, item: FeeItem, say: Say, what: str) -> str:
    if item.valid_order and item.provider_fee is None:
        say(f"{what}: the earlier order {item.valid_order} still covers this job")
        return item.valid_order
    if item.provider_fee is None or not item.datatoken:
        raise DemoFailed(f"initializeCompute returned no provider fee for the {what}")
    tx = order(w3, key, item.datatoken, item.provider_fee, service_index=0)
    say(f"{what}: ordered on chain {DEV_CHAIN_ID}, tx {tx}")
    return tx


def _follow(client: ProviderClient, job_id: str, out: TextIO, timeout: float) -> Job:
    """Poll until the job ends, showing its status and the time since the start."""
    started = time.monotonic()
    live = out.isatty()
    last = ""
    while True:
        job = client.status(job_id)
        elapsed = time.monotonic() - started
        line = f"[{elapsed:6.1f} s] {job.status:3d} {job.status_text}"
        if live:
            print("\r" + line.ljust(60), end="", file=out, flush=True)
        elif job.status_text != last:
            print(line, file=out, flush=True)
        last = job.status_text
        if job.finished:
            if live:
                print(file=out, flush=True)
            return job
        if elapsed > timeout:
            raise DemoFailed(f"the job did not finish within {timeout:.0f} s ({last})")
        time.sleep(0.5)


def _show_results(client: ProviderClient, job: Job, out: TextIO) -> None:
    print("results:", file=out)
    for result in sorted(job.results, key=lambda r: r.index):
        print(f"  [{result.index}] {result.filename} ({result.filesize} bytes)", file=out)
    for result in sorted(job.results, key=lambda r: r.index):
        if result.filename == "configure.log":
            continue
        body = client.result(job.job_id, result.index)
        text = body[:SHOWN_BYTES].decode("utf-8", errors="replace").rstrip()
        more = f"\n  ... {len(body) - SHOWN_BYTES} more bytes" if len(body) > SHOWN_BYTES else ""
        print(f"--- {result.filename} ---\n{text}{more}", file=out)
    out.flush()


def _printer(out: TextIO) -> Say:
    def say(line: str) -> None:
        print(f"==> {line}", file=out, flush=True)

    return say


def _amount(item: FeeItem) -> str:
    fee = item.provider_fee
    return "nothing (a still-valid order)" if fee is None else f"{fee.amount} ({fee.token})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocean-provider demo", description=__doc__)
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE)
    parser.add_argument("--algorithm", type=Path, help="your Python file, run as a raw algorithm")
    parser.add_argument("--dataset", help="another dataset's DID (its compute service)")
    parser.add_argument(
        "--additional",
        action="append",
        default=[],
        metavar="DID",
        help="another input, ordered too (additionalDatasets); repeat for more",
    )
    parser.add_argument("--service", default="compute", help="the dataset's compute service id")
    parser.add_argument("--chain-url", default=DevOptions(DEFAULT_STATE).url(8545))
    parser.add_argument("--consumer", type=int, choices=range(len(CONSUMER_KEYS)), default=0)
    parser.add_argument("--timeout", type=float, default=300)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.algorithm is not None and not args.algorithm.is_file():
        print(f"demo failed: {args.algorithm} is not a file", flush=True)
        return 1
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
