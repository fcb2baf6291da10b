"""Benchmark the local compute engine: start latency and throughput.

Starts a real engine (real bubblewrap) and a small dataset file server, both on
loopback, with storage in a temporary directory, then measures:

1. start latency: from just before ``POST /compute`` to the algorithm's first
   statement (it prints ``time.time()`` as its first log line), over ``--jobs``
   sequential jobs on an environment with ``maxJobs`` 1; p50, p95 and max; and
   from the job's acceptance (its ``dateCreated``, stamped by the engine when it
   queues the job) to that same line;
2. the floor: the same first line from the same interpreter started without a
   sandbox (its own startup, e.g. ``site`` and any ``.pth`` imports, which no
   engine change removes);
3. throughput: ``--throughput-jobs`` trivial jobs submitted at once to an
   environment with ``maxJobs`` 2; jobs per minute and how many completed (70).

Progress goes to stderr, the results table to stdout. Every wait is bounded.

    .venv/bin/python benchmarks/engine_latency.py [--jobs 20] [--throughput-jobs 30]
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account

from ocean_provider.compute.interfaces import Asset
from ocean_provider.compute.workflow import PreparedAlgorithm, PreparedInput, build_workflow
from ocean_provider.devnet.embedded import serve_directory, start_embedded_engine
from ocean_provider.engine.environments import python_runtime
from ocean_provider.operator.client import OperatorClient
from ocean_provider.wire.jobs import TERMINAL, JobStatus, OperatorJob

LATENCY_ENV = "latency"
THROUGHPUT_ENV = "throughput"
DATASET = "numbers.csv"
DID = "did:op:" + "b" * 64
POLL_SECONDS = 0.05
LATENCY_CODE = "import time\nprint(repr(time.time()), flush=True)\n"
TRIVIAL_CODE = "print(1)\n"
TERMINAL_CODES = frozenset(int(s) for s in TERMINAL)
_agreements = itertools.count(1)


def progress(message: str) -> None:
    print(f"[engine-bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- servers -------------------------------------------------------------------------------


def environment(env_id: str, max_jobs: int) -> dict[str, Any]:
    return {
        "id": env_id,
        "desc": f"benchmark, maxJobs {max_jobs}",
        "maxJobs": max_jobs,
        "maxJobDuration": 60,
        "ramGB": 0.5,
        "maxProcesses": 32,
        "maxOutputMB": 8,
        "storageExpiry": 3600,
        "maxQueueSeconds": 3600,
    }


# --- jobs ----------------------------------------------------------------------------------


def workflow(code: str, data_url: str, env: str) -> dict[str, Any]:
    """A raw-code python job over one URL dataset, built as the Provider builds it."""
    dataset = PreparedInput(
        asset=Asset(did=DID, chain_id=8996, ddo={"id": DID}),
        service_id="compute",
        tx_id=f"0xbench{next(_agreements)}",
        files=[{"type": "url", "url": data_url, "method": "GET"}],
    )
    algorithm = PreparedAlgorithm(
        container={"entrypoint": "python $ALGO", "image": "python", "tag": "3.11"}, rawcode=code
    )
    return build_workflow(
        environment=env,
        chain_id=8996,
        inputs=[dataset],
        algorithm=algorithm,
        metadata_uri=None,
        with_files=True,  # the local engine takes the files in the workflow
    )


def submit(client: OperatorClient, owner: str, code: str, data_url: str, env: str) -> str:
    jobs = client.start(owner, workflow(code, data_url, env))
    if not jobs:
        raise RuntimeError("the engine returned no job for POST /compute")
    return jobs[0].job_id


def wait_terminal(
    client: OperatorClient, owner: str, job_id: str, timeout: float
) -> OperatorJob | None:
    """Poll one job until it is terminal; None if ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = client.status(owner, job_id)
        if jobs and jobs[0].status in TERMINAL_CODES:
            return jobs[0]
        if time.monotonic() >= deadline:
            return None
        time.sleep(POLL_SECONDS)


def read_result(client: OperatorClient, owner: str, job: OperatorJob, kind: str) -> bytes:
    match = [r for r in job.results if r.type == kind]
    if not match:
        raise RuntimeError(f"job {job.job_id} has no {kind} result")
    stream = client.result(owner, job.job_id, match[0].index, None)
    return b"".join(stream.chunks())


def algorithm_start(log_text: bytes) -> float:
    lines = log_text.decode("utf-8", "replace").strip().splitlines()
    if not lines:
        raise RuntimeError("the algorithm log is empty")
    return float(lines[0])


# --- measurements --------------------------------------------------------------------------


@dataclass
class LatencyResult:
    samples_ms: list[float]
    failures: list[str]
    accepted_ms: list[float] = field(default_factory=list)


def measure_latency(
    client: OperatorClient, owner: str, data_url: str, count: int, timeout: float
) -> LatencyResult:
    """Sequential jobs: time from just before POST /compute to the algorithm's first line."""
    result = LatencyResult([], [])
    for n in range(1, count + 1):
        t_post = time.time()
        job_id = submit(client, owner, LATENCY_CODE, data_url, LATENCY_ENV)
        job = wait_terminal(client, owner, job_id, timeout)
        if job is None:
            result.failures.append(f"{job_id}: not terminal after {timeout:g}s")
            progress(f"latency job {n}/{count}: timed out ({job_id})")
            client.stop(owner, job_id, None)
            continue
        if job.status != JobStatus.COMPLETED:
            result.failures.append(f"{job_id}: ended {job.status} {job.status_text}")
            progress(f"latency job {n}/{count}: ended {job.status} {job.status_text}")
            continue
        try:
            t_algo = algorithm_start(read_result(client, owner, job, "algorithmLog"))
        except (RuntimeError, ValueError) as exc:
            result.failures.append(f"{job_id}: {exc}")
            progress(f"latency job {n}/{count}: unreadable log ({exc})")
            continue
        latency_ms = (t_algo - t_post) * 1000
        result.samples_ms.append(latency_ms)
        if job.date_created is not None:
            result.accepted_ms.append((t_algo - job.date_created) * 1000)
        progress(f"latency job {n}/{count}: {latency_ms:.0f} ms")
    return result


def measure_interpreter(count: int) -> list[float]:
    """The engine's default Python runtime, unsandboxed: spawn to the same first line."""
    executable = python_runtime().executable
    samples = []
    for _ in range(count):
        t_spawn = time.time()
        out = subprocess.run(
            [executable, "-c", LATENCY_CODE],
            capture_output=True,
            env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"},
            timeout=30,
            check=True,
        )
        samples.append((algorithm_start(out.stdout) - t_spawn) * 1000)
    return samples


@dataclass
class ThroughputResult:
    submitted: int
    elapsed_s: float
    statuses: dict[str, int]
    completed: int
    all_terminal: bool

    @property
    def terminal(self) -> int:
        return sum(self.statuses[job_id] in TERMINAL_CODES for job_id in self.statuses)

    @property
    def jobs_per_minute(self) -> float:
        return self.terminal * 60 / self.elapsed_s if self.elapsed_s > 0 else math.nan


def measure_throughput(
    client: OperatorClient, owner: str, data_url: str, count: int, timeout: float
) -> ThroughputResult:
    """Submit ``count`` jobs at once (one POST per job, back to back), wait for all to end."""
    t_start = time.time()
    job_ids = [submit(client, owner, TRIVIAL_CODE, data_url, THROUGHPUT_ENV) for _ in range(count)]
    progress(f"throughput: {count} jobs submitted in {time.time() - t_start:.2f}s")
    deadline = time.monotonic() + timeout
    statuses: dict[str, int] = {}
    finished: dict[str, float] = {}
    reported = -1
    while True:
        for job in client.status(owner):  # this owner only has the throughput jobs
            if job.job_id in job_ids:
                statuses[job.job_id] = job.status
                if job.date_finished is not None:
                    finished[job.job_id] = job.date_finished
        done = sum(statuses.get(job_id) in TERMINAL_CODES for job_id in job_ids)
        if done != reported and (done % 5 == 0 or done == count):
            progress(f"throughput: {done}/{count} terminal")
            reported = done
        if done == count or time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS * 2)
    all_terminal = done == count
    # the engine stamps dateFinished with the same clock; fall back to now if a job never ended
    end = max(finished.values()) if all_terminal and finished else time.time()
    if not all_terminal:
        progress(f"throughput: timed out after {timeout:g}s with {done}/{count} terminal")
        for job_id in job_ids:
            if statuses.get(job_id) not in TERMINAL_CODES:
                client.stop(owner, job_id, None)
    return ThroughputResult(
        submitted=count,
        elapsed_s=end - t_start,
        statuses={job_id: statuses.get(job_id, 0) for job_id in job_ids},
        completed=sum(statuses.get(job_id) == JobStatus.COMPLETED for job_id in job_ids),
        all_terminal=all_terminal,
    )


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def table(rows: Sequence[tuple[str, str | None]]) -> str:
    """Two aligned columns; a row whose value is None is a section heading."""
    width = max(len(name) for name, value in rows if value is not None)
    return "\n".join(name if value is None else f"{name:<{width}}  {value}" for name, value in rows)


def distribution(name: str, samples: Sequence[float]) -> list[tuple[str, str | None]]:
    if not samples:
        return [(name, "n/a")]
    p50, p95 = percentile(samples, 50), percentile(samples, 95)
    return [(name, f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {max(samples):.0f} ms")]


def report(
    latency: LatencyResult,
    latency_jobs: int,
    interpreter: Sequence[float],
    throughput: ThroughputResult,
) -> str:
    samples = latency.samples_ms
    counts: dict[int, int] = {}
    for status in throughput.statuses.values():
        counts[status] = counts.get(status, 0) + 1
    ended = ", ".join(f"{status}: {n}" for status, n in sorted(counts.items()))
    rows: list[tuple[str, str | None]] = [
        ("Start latency (POST /compute -> algorithm's first line), maxJobs 1", None),
        ("  jobs measured", f"{len(samples)}/{latency_jobs}"),
        ("  p50", f"{percentile(samples, 50):.0f} ms" if samples else "n/a"),
        ("  p95", f"{percentile(samples, 95):.0f} ms" if samples else "n/a"),
        ("  max", f"{max(samples):.0f} ms" if samples else "n/a"),
        ("  min", f"{min(samples):.0f} ms" if samples else "n/a"),
        *distribution("  accepted (dateCreated) -> first line", latency.accepted_ms),
        *distribution("  floor: the interpreter alone, unsandboxed", interpreter),
        ("Throughput (trivial jobs submitted at once), maxJobs 2", None),
        ("  jobs submitted", str(throughput.submitted)),
        ("  jobs ended 70 (completed)", f"{throughput.completed}/{throughput.submitted}"),
        ("  final statuses", ended),
        ("  wall time, first POST to last end", f"{throughput.elapsed_s:.2f} s"),
        ("  jobs per minute", f"{throughput.jobs_per_minute:.1f}"),
    ]
    if not throughput.all_terminal:
        rows.append(("  WARNING", "timed out before every job ended"))
    for failure in latency.failures:
        rows.append(("  latency failure", failure))
    return table(rows)


# --- main ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=20, help="sequential latency jobs (20)")
    parser.add_argument(
        "--throughput-jobs", type=int, default=30, help="jobs submitted at once (30)"
    )
    parser.add_argument(
        "--job-timeout", type=float, default=120, help="seconds to wait for one latency job"
    )
    parser.add_argument(
        "--throughput-timeout",
        type=float,
        default=600,
        help="seconds to wait for all throughput jobs",
    )
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.throughput_jobs < 1:
        parser.error("--jobs and --throughput-jobs must be at least 1")
    return args


def run(args: argparse.Namespace, workdir: Path) -> str:
    files = workdir / "files"
    files.mkdir()
    (files / DATASET).write_text("".join(f"{i}\n" for i in range(1, 101)))
    provider_key = "0x" + bytes(Account.create().key).hex().removeprefix("0x")
    cleanups: list[Callable[[], None]] = []
    try:
        file_server = serve_directory(files)
        cleanups.append(file_server.close)
        engine = start_embedded_engine(
            workdir / "engine",
            [environment(LATENCY_ENV, 1), environment(THROUGHPUT_ENV, 2)],
            provider_key,
            PROVISION_SECONDS="60",
            LOG_LEVEL="WARNING",
        )
        cleanups.append(engine.close)
        progress(f"engine at {engine.url}, dataset at {file_server.url}/{DATASET}")
        data_url = f"{file_server.url}/{DATASET}"
        latency_owner = str(Account.create().address)
        throughput_owner = str(Account.create().address)
        progress(f"latency: {args.jobs} sequential jobs")
        latency = measure_latency(
            engine.client, latency_owner, data_url, args.jobs, args.job_timeout
        )
        progress(f"interpreter alone: {args.jobs} starts")
        interpreter = measure_interpreter(args.jobs)
        progress(f"throughput: {args.throughput_jobs} jobs at once")
        throughput = measure_throughput(
            engine.client, throughput_owner, data_url, args.throughput_jobs, args.throughput_timeout
        )
        return report(latency, args.jobs, interpreter, throughput)
    finally:
        progress("shutting down")
        for cleanup in reversed(cleanups):
            cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request access log
    with tempfile.TemporaryDirectory(prefix="engine-bench-") as tmp:
        text = run(args, Path(tmp))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
