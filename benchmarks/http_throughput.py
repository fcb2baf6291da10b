"""Benchmark the Provider over HTTP: throughput per endpoint, and result downloads.

Starts three servers on loopback, each its own process group, storage in a temporary
directory: ``ocean-provider serve --workers N`` (real gunicorn) against an instant stub
engine (a raw WSGI app under gunicorn, several workers, standing in for the
Operator-Service API), and, as the ceiling, a Flask JSON hello app on the same gunicorn
setup as ``serve`` (``ocean_provider.cli._gunicorn``: same worker class and threads).

1. Throughput: wrk with one thread per connection (-tC -cC) drives ``GET /``, nonce,
   computeEnvironments and SIGNED status (each connection is one consumer sending
   pre-signed, single-use requests with increasing nonces), the hello app, and the stub
   directly (to show it is not the bottleneck). Endpoints are interleaved over several
   rounds, the order rotating per round. Every reply must be 2xx: any other status, socket
   error or running out of pre-signed requests voids the run (exit status 1). Prints
   req/s (median over rounds, with min-max), p50/p99 latency (median over rounds), the
   share of the ceiling (median of per-round ratios) and the CPU cores each process group
   used (server under test, stub, wrk) - all share this machine's cores.
2. Downloads: a file through the Provider's signed ``GET /api/services/computeResult``
   against the stub's direct getResult (curl, MB = 10^6 bytes, best and median of
   interleaved repetitions), a ranged request checked byte for byte, and the Provider
   worker's RSS (sampled every 5 ms) during each download: it must stay flat.

Progress goes to stderr, the results tables to stdout. Every wait is bounded; all servers
are stopped at the end (also on Ctrl-C or an error) and the temporary directory removed.

    sudo apt-get install -y wrk curl   # the load tools (not needed by CI)
    .venv/bin/python benchmarks/http_throughput.py [--duration 8] [--rounds 3] \\
        [--connections 16] [--download-mib 200] [--download-reps 5]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import requests
from eth_account import Account
from eth_utils.crypto import keccak
from flask import Flask, jsonify

from ocean_provider.auth.messages import job_message, result_message
from ocean_provider.auth.signing import sign_message
from ocean_provider.devnet.ports import free_port
from ocean_provider.wire.jobs import JobStatus, OperatorJob, ResultFile

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

HERE = Path(__file__).resolve().parent
LUA = HERE / "http_throughput.lua"
# Public test key (tests/conftest.py, anvil's); the chain is never contacted here.
PROVIDER_KEY = "0xfd5c1ccea015b6d663618850824154a3b3fb2882c46cefb05b9a93fea8c3d215"
OPERATOR = "/api/v1/operator"
STATUS = "/api/services/compute"
RESULT = "/api/services/computeResult"
# Provider settings a caller's shell might hold; the benchmark measures the defaults.
# fmt: off
CLEARED_SETTINGS = (
    "XDG_RUNTIME_DIR", "REDIS_CONNECTION", "ALLOW_UNSIGNED_STATUS", "LOG_LEVEL", "CHAIN_ID",
    "AQUARIUS_URL", "PROVIDER_URL", "UNIVERSAL_PRIVATE_KEY", "PROVIDER_FEE_TOKEN",
)
ENVIRONMENT = {  # as tests/api/helpers.py ENVIRONMENT
    "id": "ocean-compute", "cpuType": "x86_64", "nCPU": 1, "cpuNumber": 1, "nGPU": 0,
    "gpuType": "", "ramGB": 1, "diskGB": 2, "priceMin": 0, "desc": "local", "maxJobs": 2,
    "currentJobs": 0, "consumerAddress": "0x" + "c" * 40, "maxJobDuration": 60,
    "storageExpiry": 3600, "free": True,
}
# fmt: on
FLAT_RSS_MIB = 32  # a worker that buffered the file would grow by its whole size
START_SECONDS = 60
STOP_SECONDS = 15


def progress(message: str) -> None:
    print(f"[http-bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the served apps (run in child processes: --serve stub|hello) ----------------------------


def stub_engine(result_file: Path) -> WSGIApplication:
    """An instant Operator-Service: one completed job for whoever asks, environments, and
    ``result_file`` as every result (ranges honoured, sent with sendfile by gunicorn)."""
    size = result_file.stat().st_size
    result = ResultFile(index=0, filename="output.bin", filesize=size, type="output")
    template = OperatorJob(
        jobId="x",
        owner="x",
        status=JobStatus.COMPLETED,
        statusText="Job completed",
        dateCreated=1.7e9,
        dateFinished=1.7e9,
        results=[result],
        inputDID=["did:op:bench"],
    ).wire()
    environments = json.dumps([ENVIRONMENT]).encode()

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        path, query = environ["PATH_INFO"], parse_qs(environ.get("QUERY_STRING", ""))
        if path == f"{OPERATOR}/compute":
            owner, job = query.get("owner", [""])[0], query.get("jobId", ["job-1"])[0]
            body = json.dumps([{**template, "owner": owner, "jobId": job}]).encode()
        elif path == f"{OPERATOR}/environments":
            body = environments
        elif path == f"{OPERATOR}/getResult":
            return _file_reply(environ, start_response, result_file, size)
        else:
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b'{"error": "not found"}']
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    return app


def _file_reply(
    environ: WSGIEnvironment, start_response: StartResponse, path: Path, size: int
) -> Any:
    from werkzeug.http import parse_range_header

    start, stop, status = 0, size, "200 OK"
    headers = [("Content-Type", "application/octet-stream"), ("Accept-Ranges", "bytes")]
    headers.append(("Content-Disposition", 'attachment; filename="output.bin"'))
    asked = parse_range_header(environ.get("HTTP_RANGE"))
    if asked is not None and asked.units == "bytes" and len(asked.ranges) == 1:
        bounds = asked.range_for_length(size)
        if bounds is None:
            start_response("416 Range Not Satisfiable", [("Content-Range", f"bytes */{size}")])
            return [b""]
        (start, stop), status = bounds, "206 Partial Content"
        headers.append(("Content-Range", f"bytes {start}-{stop - 1}/{size}"))
    headers.append(("Content-Length", str(stop - start)))
    start_response(status, headers)
    handle = path.open("rb")
    handle.seek(start)
    return environ["wsgi.file_wrapper"](handle, 1 << 20)


def hello_app() -> Flask:
    app = Flask("hello")

    @app.get("/")
    def hello() -> Any:
        return jsonify(message="hello")

    return app


def run_stub(bind: str, workers: int, result_file: Path) -> None:
    from gunicorn.app.base import BaseApplication

    class _Stub(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in [("bind", bind), ("workers", workers), ("threads", 8)]:
                self.cfg.set(key, value)
            self.cfg.set("keepalive", 30)  # the Provider's pooled connections stay open
            self.cfg.set("control_socket_disable", True)

        def load(self) -> Any:
            return stub_engine(result_file)

    _Stub().run()


def run_hello(bind: str, workers: int) -> None:
    from ocean_provider.cli import _gunicorn  # what `ocean-provider serve` runs

    _gunicorn(hello_app, bind, workers, timeout=120)


# --- processes ------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def pids(self) -> list[int]:
        """The gunicorn master and its workers."""
        return [self.process.pid, *self.workers()]

    def workers(self) -> list[int]:
        kids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                stat = _proc_stat(int(entry.name))
                if stat and stat[1] == str(self.process.pid):
                    kids.append(int(entry.name))
        return kids


def _proc_stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name: [state, ppid, ..., utime, stime, ...]."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def cpu_seconds(pids: Sequence[int]) -> float:
    ticks = 0
    for pid in pids:
        stat = _proc_stat(pid)
        if stat:
            ticks += int(stat[11]) + int(stat[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@contextmanager
def served(
    name: str, argv: list[str], env: dict[str, str], root: Path, health: str
) -> Iterator[Server]:
    """Start ``argv`` (binding a free port, appended) in its own process group; hand it over
    once ``health`` answers 200; stop the whole group on the way out."""
    port = free_port()
    log = root / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*argv, "--bind", f"127.0.0.1:{port}"],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(name, f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_until_up(server, health)
        progress(f"{name} up at {server.url} (workers {server.workers()})")
        yield server
    finally:
        stop_group(process)


def _wait_until_up(server: Server, health: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{server.log.read_text()[-3000:]}")
        try:
            if requests.get(server.url + health, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} did not answer:\n{server.log.read_text()[-3000:]}")


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group we created for ``process``; SIGKILL it if it lingers."""
    for sig, wait in ((signal.SIGTERM, STOP_SECONDS), (signal.SIGKILL, 5)):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    try:  # workers outliving a dead master are still in the group
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_bounded(argv: list[str], timeout: float) -> tuple[int, str, str]:
    """Run a load tool in its own process group; kill the group if it overruns or we stop."""
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        out, err = process.communicate(timeout=timeout)
        return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")
    finally:
        if process.poll() is None:
            stop_group(process)


# --- consumers and pre-signed requests ------------------------------------------------------


class Consumer:
    """A deterministic benchmark identity with its own strictly increasing nonces."""

    _nonces = time.time_ns()

    def __init__(self, name: str) -> None:
        self.key = "0x" + keccak(text=f"http_throughput {name}").hex()
        self.address = str(Account.from_key(self.key).address)
        self.job_id = "job-" + keccak(text=name).hex()[:16]

    def signed(self, message: str) -> tuple[str, str]:
        Consumer._nonces += 1
        nonce = str(Consumer._nonces)
        return nonce, sign_message(message + nonce, self.key)

    def status_path(self) -> str:
        nonce, sig = self.signed(job_message(self.address, self.job_id, None))
        return (
            f"{STATUS}?consumerAddress={self.address}&jobId={self.job_id}"
            f"&nonce={nonce}&signature={sig}"
        )

    def result_path(self, index: int = 0) -> str:
        nonce, sig = self.signed(result_message(self.address, self.job_id, index))
        return (
            f"{RESULT}?consumerAddress={self.address}&jobId={self.job_id}&index={index}"
            f"&nonce={nonce}&signature={sig}"
        )


@dataclass
class StatusPool:
    """Pre-signed status paths, one queue per connection; what wrk sent is dropped after a
    run (sent or not answered, a signed request is never offered twice)."""

    consumers: list[Consumer]
    queues: list[deque[str]] = field(init=False)

    def __post_init__(self) -> None:
        self.queues = [deque() for _ in self.consumers]

    def top_up(self, per_connection: int) -> list[list[str]]:
        started, signed = time.monotonic(), 0
        for consumer, queue in zip(self.consumers, self.queues, strict=True):
            while len(queue) < per_connection:
                queue.append(consumer.status_path())
                signed += 1
        if signed:
            progress(f"signed {signed} status requests in {time.monotonic() - started:.1f} s")
        return [list(queue) for queue in self.queues]

    def spend(self, made: Sequence[int] | None) -> None:
        for i, queue in enumerate(self.queues):
            if made is None or i >= len(made):
                queue.clear()  # unknown: treat every path as used
            else:
                for _ in range(min(made[i], len(queue))):
                    queue.popleft()


# --- wrk runs -------------------------------------------------------------------------------


@dataclass
class Run:
    label: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    failures: int  # non-2xx + socket errors
    exhausted: int
    made: list[int]
    sample: str
    cores: dict[str, float]  # process group -> CPU cores used during the run


def run_wrk(
    label: str,
    url: str,
    paths: list[list[str]],
    once: bool,
    seconds: int,
    work: Path,
    groups: dict[str, list[int]],
) -> Run:
    """One wrk run, one connection per thread, thread i sending ``paths[i]``."""
    folder = Path(tempfile.mkdtemp(dir=work))
    for i, thread_paths in enumerate(paths):
        (folder / f"paths-{i}.txt").write_text("\n".join(thread_paths) + "\n")
    conns = str(len(paths))
    argv = ["wrk", "-t", conns, "-c", conns, "-d", f"{seconds}s", "--timeout", "10s"]
    argv += ["-s", str(LUA), url, "--", str(folder), "once" if once else "cycle"]
    cpu_before = {name: cpu_seconds(pids) for name, pids in groups.items()}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    code, out, err = run_bounded(argv, timeout=seconds + 60)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cores = {name: (cpu_seconds(groups[name]) - cpu) / wall for name, cpu in cpu_before.items()}
    cores["wrk"] = (after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime) / wall
    shutil.rmtree(folder, ignore_errors=True)
    values = {
        line[3:].partition(" ")[0]: line[3:].partition(" ")[2]
        for line in out.splitlines()
        if line.startswith("@@ ")
    }
    if code != 0 or "requests" not in values:
        raise RuntimeError(f"wrk failed ({code}) on {label}:\n{out}\n{err}")
    errors = sum(int(n) for n in values["errors"].split()[:3] + values["errors"].split()[4:])
    duration = int(values["duration_us"]) / 1e6
    return Run(
        label=label,
        rps=int(values["requests"]) / duration,
        p50_ms=int(values["p50_us"]) / 1000,
        p99_ms=int(values["p99_us"]) / 1000,
        requests=int(values["requests"]),
        failures=int(values["non2xx"]) + errors,
        exhausted=int(values["exhausted"]),
        made=[int(n) for n in values["made"].split()],
        sample=values.get("sample", ""),
        cores=cores,
    )


# --- throughput -----------------------------------------------------------------------------


@dataclass
class Target:
    label: str
    server: str  # which server it hits (its CPU is the "server" column)
    paths: Callable[[], list[list[str]]]  # per connection
    signed: bool = False


def targets(connections: int, consumers: list[Consumer]) -> list[Target]:
    def same(path: str) -> Callable[[], list[list[str]]]:
        return lambda: [[path]] * connections

    nonce = "/api/services/nonce?userAddress="
    owner, job = consumers[0].address, consumers[0].job_id
    return [
        Target("ceiling: Flask hello, same gunicorn", "hello", same("/")),
        Target("GET /", "provider", same("/")),
        Target("GET nonce", "provider", lambda: [[nonce + c.address] for c in consumers]),
        Target("GET computeEnvironments", "provider", same("/api/services/computeEnvironments")),
        Target("GET compute (signed status)", "provider", list, signed=True),
        Target(
            "stub engine direct: compute",
            "stub",
            same(f"{OPERATOR}/compute?owner={owner}&jobId={job}"),
        ),
        Target(
            "stub engine direct: environments",
            "stub",
            same(f"{OPERATOR}/environments?chainId=8996"),
        ),
    ]


@dataclass
class Throughput:
    servers: dict[str, Server]
    pool: StatusPool
    connections: int
    work: Path
    status_rate: float = 0.0  # highest seen: sizes the next batch of signatures
    runs: dict[str, list[Run]] = field(default_factory=dict)

    def measure(self, target: Target, seconds: int, record: bool = True) -> Run:
        for _ in range(3):
            run = self._once(target, seconds)
            if not run.exhausted:
                break
            progress(f"{target.label}: ran out of pre-signed requests; again with more")
            self.status_rate = max(self.status_rate * 2, run.rps * 4)
        if record:
            self.runs.setdefault(target.label, []).append(run)
        progress(
            f"{target.label}: {run.rps:,.0f} req/s, p50 {run.p50_ms:.1f} ms, "
            f"p99 {run.p99_ms:.1f} ms, failures {run.failures}"
            + (f" e.g. {run.sample!r}" if run.failures else "")
        )
        return run

    def _once(self, target: Target, seconds: int) -> Run:
        server = self.servers[target.server]
        groups = {"server": server.pids()}
        groups["stub"] = self.servers["stub"].pids() if target.server != "stub" else []
        if not target.signed:
            return run_wrk(
                target.label, server.url, target.paths(), False, seconds, self.work, groups
            )
        budget = math.ceil(self.status_rate * seconds * 1.5 / self.connections) + 20
        paths = self.pool.top_up(budget)
        try:
            run = run_wrk(target.label, server.url, paths, True, seconds, self.work, groups)
        except BaseException:
            self.pool.spend(None)
            raise
        self.pool.spend(run.made)
        self.status_rate = max(self.status_rate, run.rps)
        return run


def measure_throughput(bench: Throughput, plan: list[Target], args: argparse.Namespace) -> None:
    progress(f"warm-up: {args.warmup} s per endpoint (not recorded)")
    for target in plan:
        run = bench.measure(target, args.warmup, record=False)
        if target.label.startswith("ceiling"):
            bench.status_rate = run.rps  # no status rate can beat the ceiling's
        if target.signed:
            bench.status_rate = run.rps  # sizes the signatures of the rounds
        if run.failures:
            raise RuntimeError(f"{target.label} fails in warm-up: {run.sample!r}")
    for round_ in range(args.rounds):
        order = plan[round_ % len(plan) :] + plan[: round_ % len(plan)]
        progress(f"round {round_ + 1}/{args.rounds}: {', '.join(t.label for t in order)}")
        for target in order:
            bench.measure(target, args.duration)


# --- downloads ------------------------------------------------------------------------------


@dataclass
class Download:
    mb_per_s: float
    peak_rss: int = 0  # the Provider worker that grew most: its peak and its growth
    growth: int = 0


def curl(url: str, size: int, timeout: float) -> float:
    """Seconds to fetch ``url`` to /dev/null; refuses anything but a complete 200."""
    argv = ["curl", "-sS", "-o", "/dev/null", "--max-time", str(timeout)]
    argv += ["-w", "%{http_code} %{size_download} %{time_total}", url]
    code, out, err = run_bounded(argv, timeout + 10)
    status, got, seconds = (out.split() + ["", "", ""])[:3]
    if code != 0 or status != "200" or int(got or 0) != size:
        raise RuntimeError(f"download failed: curl {code}, HTTP {status}, {got} bytes {err}")
    return float(seconds)


def sampled_download(url: str, size: int, workers: list[int]) -> Download:
    """Download through the Provider while sampling its workers' RSS every 5 ms."""
    baseline = {pid: rss_bytes(pid) for pid in workers}
    peaks = dict(baseline)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            for pid in workers:
                peaks[pid] = max(peaks[pid], rss_bytes(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        seconds = curl(url, size, timeout=300)
    finally:
        done.set()
        sampler.join(timeout=5)
    grown = max(workers, key=lambda pid: peaks[pid] - baseline[pid])
    return Download(size / seconds / 1e6, peaks[grown], peaks[grown] - baseline[grown])


def check_range(provider: Server, consumer: Consumer, result_file: Path) -> None:
    """A signed ranged download through the Provider: 206 and the file's very bytes."""
    with result_file.open("rb") as handle:
        handle.seek(1_000_000)
        expected = handle.read(1000)
    reply = requests.get(
        provider.url + consumer.result_path(),
        headers={"Range": "bytes=1000000-1000999"},
        timeout=30,
    )
    if reply.status_code != 206 or reply.content != expected:
        raise RuntimeError(f"ranged result download: HTTP {reply.status_code}, wrong bytes")


def measure_downloads(
    provider: Server, stub: Server, result_file: Path, reps: int
) -> tuple[list[float], list[Download]]:
    size = result_file.stat().st_size
    consumer = Consumer("download")
    direct_url = f"{stub.url}{OPERATOR}/getResult?owner={consumer.address}&jobId=j&index=0"
    check_range(provider, consumer, result_file)
    direct: list[float] = []
    through: list[Download] = []
    for rep in range(reps + 1):  # the first of each warms up and is not recorded
        speed = size / curl(direct_url, size, timeout=300) / 1e6
        download = sampled_download(provider.url + consumer.result_path(), size, provider.workers())
        if rep:
            direct.append(speed)
            through.append(download)
        progress(
            f"download {rep}/{reps}{' (warm-up)' if not rep else ''}: direct {speed:,.0f} MB/s, "
            f"Provider {download.mb_per_s:,.0f} MB/s, worker RSS +{download.growth >> 20} MiB"
        )
    return direct, through


# --- report ---------------------------------------------------------------------------------


def measured_code() -> str:
    """Where the measured ``ocean_provider`` comes from, and its git state."""
    import ocean_provider

    where = Path(ocean_provider.__file__).resolve().parent.parent
    git = ["git", "-C", str(where)]
    _, head, _ = run_bounded([*git, "rev-parse", "--short", "HEAD"], timeout=30)
    _, changed, _ = run_bounded([*git, "status", "--porcelain", "ocean_provider"], timeout=30)
    state = f"git {head.strip()}, {len(changed.splitlines())} files changed" if head else "no git"
    return f"ocean_provider from {where} ({state})"


def report_throughput(bench: Throughput, plan: list[Target], args: argparse.Namespace) -> bool:
    ceiling = bench.runs[plan[0].label]
    print(f"\n{measured_code()}")
    print(
        f"HTTP throughput: wrk -t{args.connections} -c{args.connections}, {args.rounds} rounds"
        f" x {args.duration} s, interleaved; Provider: ocean-provider serve --workers "
        f"{args.workers}; stub engine: gunicorn {args.stub_workers} workers x 8 threads; "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"{'endpoint':36} {'req/s':>7} {'(min-max)':>15} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'ceiling':>8} {'failed':>7}  CPU cores: server stub wrk"
    )
    ok = True
    for target in plan:
        runs = bench.runs[target.label]
        rps = [r.rps for r in runs]
        share = statistics.median(r.rps / c.rps for r, c in zip(runs, ceiling, strict=True))
        failed = sum(r.failures + r.exhausted for r in runs)
        ok = ok and failed == 0
        cores = {k: statistics.median(r.cores[k] for r in runs) for k in runs[0].cores}
        print(
            f"{target.label:36} {statistics.median(rps):7,.0f} "
            f"{f'{min(rps):,.0f}-{max(rps):,.0f}':>15} "
            f"{statistics.median(r.p50_ms for r in runs):7.1f} "
            f"{statistics.median(r.p99_ms for r in runs):7.1f} {share:8.0%} {failed:7d}  "
            f"{cores['server']:10.2f} {cores['stub']:4.2f} {cores['wrk']:4.2f}"
        )
    return ok


def report_downloads(direct: list[float], through: list[Download], size: int) -> bool:
    speeds = [d.mb_per_s for d in through]
    print(f"\nResult download: {size >> 20} MiB, {len(direct)} repetitions (curl; MB = 10^6 B)")
    print(f"{'path':34} {'best MB/s':>10} {'median MB/s':>12} {'of direct':>10}")
    print(
        f"{'stub engine getResult, direct':34} {max(direct):10,.0f} "
        f"{statistics.median(direct):12,.0f} {'100%':>10}"
    )
    print(
        f"{'Provider computeResult (signed)':34} {max(speeds):10,.0f} "
        f"{statistics.median(speeds):12,.0f} "
        f"{statistics.median(speeds) / statistics.median(direct):10.0%}"
    )
    worst = max(through, key=lambda d: d.growth)
    flat = worst.growth < FLAT_RSS_MIB << 20
    print(
        f"Provider worker RSS during downloads: peak {worst.peak_rss / 2**20:.0f} MiB, "
        f"growth at most {worst.growth / 2**20:.1f} MiB "
        f"({'flat' if flat else 'NOT flat'}: limit {FLAT_RSS_MIB} MiB)"
    )
    return flat


# --- main -----------------------------------------------------------------------------------


def write_result_file(path: Path, mib: int) -> None:
    block = os.urandom(1 << 20)
    with path.open("wb") as out:
        for _ in range(mib):
            out.write(block)


def start_servers(stack: ExitStack, root: Path, args: argparse.Namespace) -> dict[str, Server]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_SETTINGS}
    env["HOME"] = str(root)
    me = [sys.executable, str(Path(__file__).resolve())]
    result = str(root / "result.bin")
    stub_argv = [*me, "--serve", "stub", "--workers", str(args.stub_workers), "--file", result]
    stub = stack.enter_context(served("stub", stub_argv, env, root, f"{OPERATOR}/environments"))
    hello_argv = [*me, "--serve", "hello", "--workers", str(args.workers)]
    hello = stack.enter_context(served("hello", hello_argv, env, root, "/"))
    entry = Path(sys.executable).with_name("ocean-provider")
    serve = [str(entry)] if entry.exists() else [sys.executable, "-m", "ocean_provider.cli"]
    provider_env = {
        **env,
        "NETWORK_URL": "http://127.0.0.1:8545",
        "PROVIDER_PRIVATE_KEY": PROVIDER_KEY,
        "OPERATOR_SERVICE_URL": stub.url,
        "STORAGE_PATH": str(root / "provider" / "nonces.db"),
        # thousands of req/s from one loopback address: what serving costs, not a flood
        "RATE_LIMITS": "off",
    }
    argv = [*serve, "serve", "--workers", str(args.workers)]
    provider = stack.enter_context(served("provider", argv, provider_env, root, "/"))
    return {"stub": stub, "hello": hello, "provider": provider}


def run_parts(stack: ExitStack, root: Path, args: argparse.Namespace) -> bool:
    write_result_file(root / "result.bin", args.download_mib)
    servers = start_servers(stack, root, args)
    consumers = [Consumer(f"consumer {i}") for i in range(args.connections)]
    plan = targets(args.connections, consumers)
    bench = Throughput(servers, StatusPool(consumers), args.connections, root)
    measure_throughput(bench, plan, args)
    progress("result downloads")
    direct, through = measure_downloads(
        servers["provider"], servers["stub"], root / "result.bin", args.download_reps
    )
    ok = report_throughput(bench, plan, args)
    return report_downloads(direct, through, args.download_mib << 20) and ok


def benchmark(args: argparse.Namespace) -> int:
    for tool in ("wrk", "curl"):
        if shutil.which(tool) is None:
            progress(f"{tool} is not installed: sudo apt-get install -y {tool}")
            return 2
    return run_in_tempdir(
        "http-bench-",
        lambda stack, root: run_parts(stack, root, args),
        args.log_dir,
        stopping="stopping servers",
        invalid="some requests failed or memory grew",
    )


def run_in_tempdir(
    prefix: str,
    run: Callable[[ExitStack, Path], bool],
    log_dir: Path | None,
    *,
    stopping: str,
    invalid: str,
) -> int:
    """``run`` in a temporary folder whose servers ``run`` registers on the stack: all of
    them stopped at the end, their logs kept in ``log_dir`` if given; the exit code."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp, ExitStack() as stack:
        root = Path(tmp)
        try:
            ok = run(stack, root)
        finally:
            progress(stopping)
            stack.close()  # first, so that the logs are complete
            if log_dir:
                log_dir.mkdir(parents=True, exist_ok=True)
                for log in root.glob("*.log"):
                    shutil.copy(log, log_dir / log.name)
    if not ok:
        print(f"\nINVALID: {invalid}; see above.", file=sys.stderr)
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--duration", type=int, default=8, help="seconds per endpoint per round")
    add("--rounds", type=int, default=3, help="interleaved rounds")
    add("--connections", type=int, default=16, help="wrk connections (one thread each)")
    add("--warmup", type=int, default=2, help="unrecorded seconds per endpoint first")
    add("--workers", type=int, default=2, help="gunicorn workers of the Provider and hello")
    add("--stub-workers", type=int, default=2, help="gunicorn workers of the stub engine")
    add("--download-mib", type=int, default=200, help="size of the result file")
    add("--download-reps", type=int, default=5, help="downloads each way")
    add("--log-dir", type=Path, help="keep the servers' logs (gunicorn and access) here")
    add("--serve", choices=["stub", "hello"], help=argparse.SUPPRESS)
    add("--bind", help=argparse.SUPPRESS)
    add("--file", type=Path, help=argparse.SUPPRESS)
    return parser


def _interrupted(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.serve == "stub":
        run_stub(args.bind, args.workers, args.file)
        return 0
    if args.serve == "hello":
        run_hello(args.bind, args.workers)
        return 0
    signal.signal(signal.SIGTERM, _interrupted)  # stop the servers on SIGTERM too
    try:
        return benchmark(args)
    except KeyboardInterrupt:
        progress("interrupted; servers stopped")
        return 130


if __name__ == "__main__":
    sys.exit(main())
