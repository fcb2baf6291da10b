"""Tests of the bubblewrap sandbox runner against real bwrap and cgroups (root)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from ocean_provider.engine.environments import python_runtime
from ocean_provider.engine.sandbox import (
    SandboxError,
    SandboxLimits,
    SandboxOutcome,
    SandboxRun,
    SandboxSpec,
    sandbox_available,
)
from ocean_provider.engine.sandbox import limits as sandbox_limits
from ocean_provider.engine.sandbox.runtime import place_runtime
from ocean_provider.engine.sandbox.types import RUNTIME_ROOT, RuntimeMount

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
DEBIAN_PYTHON = "/usr/bin/python3"
SANDBOX_ROOT = {"bin", "data", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc"}
SANDBOX_ROOT |= {"sbin", "tmp", "usr"}
ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
LIMITS = SandboxLimits(
    wall_seconds=20, memory_bytes=256 * MIB, max_processes=32, output_bytes=10 * MIB
)
FORK_BOMB = """
    import os, time
    while True:
        try:
            os.fork()
        except OSError:
            time.sleep(0.01)
"""


@pytest.fixture(scope="module", autouse=True)
def _require_sandbox() -> None:
    problem = sandbox_available()
    if problem is not None:
        pytest.fail(problem)


@dataclass
class Job:
    """A data dir laid out like Ocean's /data plus a unique argv marker."""

    data_dir: Path
    token: str

    @property
    def log_path(self) -> Path:
        return self.data_dir / "logs" / "algorithm.log"

    def spec(self, code: str, **changes: Any) -> SandboxSpec:
        algorithm = self.data_dir / "transformations" / "algorithm"
        algorithm.write_text(textwrap.dedent(code))
        spec = SandboxSpec(
            data_dir=self.data_dir,
            argv=[DEBIAN_PYTHON, "/data/transformations/algorithm", self.token],
            env=ENV,
            network=False,
            limits=LIMITS,
            log_path=self.log_path,
        )
        return replace(spec, **changes)

    def log(self) -> str:
        return self.log_path.read_text()

    def report(self) -> dict[str, Any]:
        """The JSON object an algorithm printed as its last log line."""
        result: dict[str, Any] = json.loads(self.log().strip().splitlines()[-1])
        return result


@pytest.fixture
def job(tmp_path: Path) -> Job:
    data_dir = tmp_path / "data"
    for name in ("inputs", "ddos", "transformations", "outputs", "logs"):
        (data_dir / name).mkdir(parents=True)
    return Job(data_dir, f"sandbox-test-{uuid.uuid4().hex}")


@pytest.fixture
def fallback_uid(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> int:
    """Pretend cgroup v1 is not mounted so the rlimit fallbacks are used.

    Returns a host uid of its own for the run: RLIMIT_NPROC counts every process
    of a uid host-wide, so sharing 65534 with concurrent sandboxes would skew it.
    """
    monkeypatch.setattr(sandbox_limits, "CGROUP_MOUNT", tmp_path / "no-cgroups")
    return 100_000 + uuid.uuid4().int % 900_000


@pytest.fixture
def root_only() -> Iterator[Path]:
    """Root-only host paths outside /tmp (the sandbox's /tmp is its own tmpfs):
    a 0600 file ``key.txt`` and a 0700 directory ``private``."""
    directory = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="sandbox-test-"))
    (directory / "key.txt").write_text("root secret")
    (directory / "key.txt").chmod(0o600)
    (directory / "private").mkdir(mode=0o700)
    yield directory
    shutil.rmtree(directory)


def run(spec: SandboxSpec) -> SandboxOutcome:
    return SandboxRun.start(spec).wait()


def processes_with(token: str) -> list[int]:
    """Host pids whose command line mentions ``token``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if token.encode() in cmdline:
            found.append(int(entry.name))
    return found


SLEEPER = """
    import os, time
    if os.fork() == 0:
        time.sleep(60)
    open("/data/outputs/started", "w").close()
    time.sleep(60)
"""


def wait_for_file(path: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def wait_sampling(sandbox: SandboxRun, token: str) -> tuple[SandboxOutcome, int]:
    """wait(), while recording the most processes seen at once."""
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, len(processes_with(token)))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        return sandbox.wait(), peak
    finally:
        done.set()
        sampler.join()


def test_algorithm_reads_inputs_and_writes_outputs(job: Job) -> None:
    (job.data_dir / "inputs" / "did1").mkdir()
    (job.data_dir / "inputs" / "did1" / "0").write_text("3 4 5\n")
    code = """
        import os, sys
        numbers = open("/data/inputs/did1/0").read().split()
        total = sum(int(n) for n in numbers)
        os.makedirs("/data/outputs/sub/dir")
        open("/data/outputs/result.txt", "w").write(str(total))
        open("/data/outputs/sub/dir/nested.txt", "w").write("nested")
        print("ALGO_STDOUT total", total, "root", os.path.exists("/root"), flush=True)
        print("ALGO_STDERR", sys.version_info[:2], file=sys.stderr)
    """
    outcome = run(with_engine_python(job.spec(code)))

    assert (outcome.reason, outcome.exit_code, outcome.detail) == ("exited", 0, "exit code 0")
    outputs = job.data_dir / "outputs"
    assert (outputs / "result.txt").read_text() == "12"
    assert (outputs / "sub" / "dir" / "nested.txt").read_text() == "nested"
    assert (outputs / "result.txt").stat().st_uid == 65534
    assert "ALGO_STDOUT total 12 root False" in job.log()
    assert "ALGO_STDERR (3, 11)" in job.log()


def with_engine_python(spec: SandboxSpec) -> SandboxSpec:
    """Run ``spec`` on the engine's own Python runtime, placed as the engine places it."""
    runtime = python_runtime()
    placed = place_runtime(runtime.aliases[0], runtime.executable, runtime.mounts)
    return replace(
        spec,
        argv=[placed.executable, *spec.argv[1:]],
        env={**spec.env, **placed.env()},
        runtime_mounts=placed.mounts,
    )


RUNTIME_PROBE = """
    import json, os, sys
    chain, path = {}, os.path.realpath(sys.executable)
    while path != "/":
        path = os.path.dirname(path)
        chain[path] = sorted(os.listdir(path))
    print(json.dumps({"root": sorted(os.listdir("/")), "chain": chain,
                      "prefix": sys.prefix, "home": os.path.exists(os.path.expanduser("~root"))}))
"""


def test_runtime_is_mounted_where_no_home_folder_shows(job: Job) -> None:
    spec = with_engine_python(job.spec(RUNTIME_PROBE))

    outcome = run(spec)

    assert outcome.reason == "exited", job.log()
    report = job.report()
    assert report["prefix"] == "/opt/runtime/python"
    assert report["chain"]["/opt"] == ["runtime"]
    assert report["chain"]["/opt/runtime"] == ["python"]
    assert set(report["root"]) <= SANDBOX_ROOT | {"opt"}
    assert "root" not in report["root"]  # this host's Python lives under /root/.pyenv
    assert report["home"] is False


def test_exit_code_is_kept(job: Job) -> None:
    outcome = run(job.spec("raise SystemExit(1)"))

    assert (outcome.reason, outcome.exit_code, outcome.detail) == ("exited", 1, "exit code 1")


def test_wall_time_limit_kills_everything(job: Job) -> None:
    limits = replace(LIMITS, wall_seconds=2)
    sandbox = SandboxRun.start(job.spec("while True: pass", limits=limits))

    outcome = sandbox.wait()

    assert (outcome.reason, outcome.exit_code) == ("timeout", None)
    assert outcome.detail == "killed after 2.0s wall time limit"
    assert 2 <= outcome.duration < 4
    assert processes_with(job.token) == []
    assert not any(d.exists() for d in sandbox.cgroup_dirs)


def test_memory_limit(job: Job) -> None:
    limits = replace(LIMITS, memory_bytes=128 * MIB)

    outcome = run(job.spec('hog = "x" * (1 << 30)', limits=limits))

    assert outcome.reason == "memory"
    assert outcome.detail == "memory limit 128 MiB exceeded"
    assert outcome.exit_code not in (None, 0)


def test_memory_limit_falls_back_to_rlimit_as(job: Job, fallback_uid: int) -> None:
    limits = replace(LIMITS, memory_bytes=128 * MIB)
    spec = job.spec('hog = "x" * (1 << 30)', limits=limits, uid=fallback_uid, gid=fallback_uid)
    sandbox = SandboxRun.start(spec)

    outcome = sandbox.wait()

    assert sandbox.cgroup_dirs == ()
    assert (outcome.reason, outcome.exit_code) == ("exited", 1)
    assert "MemoryError" in job.log()


def test_fork_bomb_is_contained(job: Job) -> None:
    limits = replace(LIMITS, wall_seconds=10, max_processes=32)
    sandbox = SandboxRun.start(job.spec(FORK_BOMB, limits=limits))

    outcome, peak = wait_sampling(sandbox, job.token)

    assert (outcome.reason, outcome.exit_code) == ("processes", None)
    assert outcome.detail == "process limit 32 reached"
    assert outcome.duration < 10 + 3
    assert peak <= 32 + 2  # the algorithm's processes + the two bwrap processes
    assert processes_with(job.token) == []


def test_fork_bomb_falls_back_to_rlimit_nproc(job: Job, fallback_uid: int) -> None:
    limits = replace(LIMITS, wall_seconds=2, max_processes=16)
    spec = job.spec(FORK_BOMB, limits=limits, uid=fallback_uid, gid=fallback_uid)
    sandbox = SandboxRun.start(spec)

    outcome, peak = wait_sampling(sandbox, job.token)

    assert (outcome.reason, outcome.exit_code) == ("timeout", None)
    assert outcome.duration < 2 + 3
    assert peak <= 16 + 2
    assert processes_with(job.token) == []


def test_output_limit_single_file(job: Job) -> None:
    code = """
        with open("/data/outputs/big.bin", "wb") as out:
            while True:
                out.write(b"x" * (1 << 20))
    """
    limits = replace(LIMITS, output_bytes=5 * MIB)

    outcome = run(job.spec(code, limits=limits))

    assert outcome.reason == "output_limit"
    assert outcome.detail == "output limit 5 MiB exceeded"
    assert "File too large" in job.log()  # RLIMIT_FSIZE stopped the write
    assert (job.data_dir / "outputs" / "big.bin").stat().st_size == 5 * MIB


EXACT_WRITERS = {
    "python": [
        DEBIAN_PYTHON,
        "-c",
        "with open('/data/outputs/out.bin', 'wb') as out: out.write(b'x' * {size})",
    ],
    "shell": ["/bin/sh", "-c", "head -c {size} /dev/zero > /data/outputs/out.bin"],
}


@pytest.mark.parametrize("writer", sorted(EXACT_WRITERS))
@pytest.mark.parametrize(
    ("extra", "reason"), [(0, "exited"), (1, "output_limit")], ids=["cap", "cap+1"]
)
def test_output_cap_is_exact(
    job: Job, tmp_path: Path, writer: str, extra: int, reason: str
) -> None:
    cap = 1 * MIB
    argv = [arg.format(size=cap + extra) for arg in EXACT_WRITERS[writer]]
    log_path = tmp_path / "admin" / "algorithm.log"  # where the engine keeps it
    spec = replace(job.spec("pass"), argv=argv, limits=replace(LIMITS, output_bytes=cap))

    outcome = run(replace(spec, log_path=log_path))

    assert (outcome.reason, outcome.exit_code == 0) == (reason, extra == 0), log_path.read_text()
    assert (job.data_dir / "outputs" / "out.bin").stat().st_size == cap


def test_output_limit_many_files(job: Job) -> None:
    code = """
        import time
        for i in range(1000):
            open(f"/data/outputs/part{i}", "wb").write(b"x" * (1 << 20))
            time.sleep(0.05)
    """
    limits = replace(LIMITS, output_bytes=5 * MIB)

    outcome = run(job.spec(code, limits=limits))

    assert (outcome.reason, outcome.exit_code) == ("output_limit", None)
    assert len(list((job.data_dir / "outputs").iterdir())) < 20
    assert processes_with(job.token) == []


UNLINKED_WRITER = """
    import os, time
    held = []
    for i in range(16):
        f = open(f"/data/outputs/gone{i}", "wb")
        os.unlink(f"/data/outputs/gone{i}")
        f.write(b"x" * (1 << 20))
        f.flush()
        held.append(f)
    time.sleep(30)
"""


@pytest.mark.parametrize("cgroups", [True, False], ids=["cgroups", "proc-scan"])
def test_output_limit_counts_deleted_open_files(
    job: Job, cgroups: bool, request: pytest.FixtureRequest
) -> None:
    owner = {} if cgroups else {"uid": request.getfixturevalue("fallback_uid")}
    if owner:
        owner["gid"] = owner["uid"]
    limits = replace(LIMITS, output_bytes=5 * MIB)

    outcome = run(job.spec(UNLINKED_WRITER, limits=limits, **owner))

    assert (outcome.reason, outcome.exit_code) == ("output_limit", None)
    assert outcome.duration < 10


def test_output_limit_counts_empty_entries(job: Job) -> None:
    code = """
        import os
        for i in range(100_000):
            open(f"/data/outputs/empty{i}", "w").close()
    """
    limits = replace(LIMITS, output_bytes=256 * 1024)  # 512 entries at 512 bytes each

    outcome = run(job.spec(code, limits=limits))

    assert outcome.reason == "output_limit"


def test_tmp_is_a_small_private_tmpfs(job: Job) -> None:
    code = """
        import os
        open("/tmp/small", "wb").write(b"x" * 100_000)
        print("TMP_SMALL_OK", flush=True)
        open("/tmp/big", "wb").write(b"x" * (2 << 20))
    """
    limits = replace(LIMITS, tmp_bytes=1 * MIB)

    outcome = run(job.spec(code, limits=limits))

    assert (outcome.reason, outcome.exit_code) == ("exited", 1)
    assert "TMP_SMALL_OK" in job.log()
    assert "No space left on device" in job.log()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(5)
    yield server
    server.close()


CONNECT = """
    import socket
    try:
        socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
        print("NET_OK")
    except OSError as exc:
        print("NET_BLOCKED", exc)
    print("INTERFACES", sorted(line.split(":")[0].strip()
                               for line in open("/proc/net/dev").readlines()[2:]))
"""


def test_network_disabled(job: Job, listener: socket.socket) -> None:
    port = listener.getsockname()[1]

    outcome = run(job.spec(CONNECT.format(port=port), network=False))

    assert outcome.reason == "exited"
    assert "NET_BLOCKED" in job.log()
    assert "NET_OK" not in job.log()
    assert "INTERFACES ['lo']" in job.log()


def test_network_enabled(job: Job, listener: socket.socket) -> None:
    port = listener.getsockname()[1]

    outcome = run(job.spec(CONNECT.format(port=port), network=True))

    assert outcome.reason == "exited"
    assert "NET_OK" in job.log()
    connection, _ = listener.accept()  # the sandbox really reached the host
    connection.close()


FILESYSTEM_PROBE = """
    import json, os

    def attempt(action, path):
        try:
            if action == "read":
                open(path).read()
            elif action == "list":
                os.listdir(path)
            else:
                open(path, "w").write("x")
            return "ok"
        except OSError as exc:
            return type(exc).__name__

    status = dict(line.split(":\\t") for line in open("/proc/self/status").read().splitlines()
                  if line.startswith(("Cap", "NoNewPrivs")))
    report = {{
        "shadow": attempt("read", "/etc/shadow"),
        "host_secret": attempt("read", "{secret}"),
        "root_only_file": attempt("read", "{root_only}/key.txt"),
        "root_only_dir": attempt("list", "{root_only}/private"),
        "root": os.path.exists("/root"),
        "sys": os.path.exists("/sys"),
        "write_inputs": attempt("write", "/data/inputs/new.txt"),
        "write_data": attempt("write", "/data/new.txt"),
        "write_etc": attempt("write", "/etc/new.txt"),
        "write_usr": attempt("write", "/usr/new.txt"),
        "write_root_dir": attempt("write", "/new.txt"),
        "write_outputs": attempt("write", "/data/outputs/ok.txt"),
        "write_logs": attempt("write", "/data/logs/extra.txt"),
        "write_tmp": attempt("write", "/tmp/scratch.txt"),
        "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getgroups()],
        "caps": sorted(set(v.strip() for k, v in status.items() if k.startswith("Cap"))),
        "no_new_privs": status["NoNewPrivs"].strip(),
        "fds": sorted(os.listdir("/proc/self/fd")),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    }}
    print(json.dumps(report))
"""


def test_filesystem_and_privileges(job: Job, tmp_path: Path, root_only: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("PROVIDER SECRET")
    secret.chmod(0o644)
    code = FILESYSTEM_PROBE.format(secret=secret, root_only=root_only)
    binds = [root_only / "key.txt", root_only / "private"]

    outcome = run(job.spec(code, ro_binds=binds))

    assert outcome.reason == "exited", job.log()
    report = job.report()
    assert report["shadow"] == "FileNotFoundError"  # not mounted at all
    assert report["host_secret"] == "FileNotFoundError"
    assert report["root_only_file"] == "PermissionError"  # not root on the host
    assert report["root_only_dir"] == "PermissionError"
    assert report["root"] is False
    assert report["sys"] is False
    for target in ("inputs", "data", "etc", "usr", "root_dir"):
        assert report[f"write_{target}"] == "OSError", target  # EROFS
    assert report["write_outputs"] == report["write_logs"] == report["write_tmp"] == "ok"
    assert report["ids"] == [65534, 65534, 65534, []]
    assert report["caps"] == ["0000000000000000"]
    assert report["no_new_privs"] == "1"
    assert report["fds"] == ["0", "1", "2", "3"]  # 3 is listdir's own fd
    assert report["pids"] == [1, 2]  # bwrap's init and the algorithm only
    assert (job.data_dir / "outputs" / "ok.txt").read_text() == "x"
    assert not (job.data_dir / "inputs" / "new.txt").exists()


def test_stop_kills_the_tree_quickly(job: Job) -> None:
    sandbox = SandboxRun.start(job.spec(SLEEPER))
    wait_for_file(job.data_dir / "outputs" / "started")
    assert len(processes_with(job.token)) == 4  # bwrap, its init, algorithm, child
    results: list[SandboxOutcome] = []
    waiter = threading.Thread(target=lambda: results.append(sandbox.wait()))
    waiter.start()

    stop_time = time.monotonic()
    sandbox.stop()
    waiter.join(timeout=10)

    assert time.monotonic() - stop_time < 3
    assert [(r.reason, r.exit_code, r.detail) for r in results] == [("stopped", None, "stopped")]
    assert processes_with(job.token) == []
    with pytest.raises(ProcessLookupError):
        os.kill(sandbox.pid, 0)
    assert not any(d.exists() for d in sandbox.cgroup_dirs)


def test_multiprocessing_works_inside(job: Job) -> None:
    code = """
        import multiprocessing

        def square(x):
            return x * x

        if __name__ == "__main__":
            with multiprocessing.Pool(2) as pool:
                print("POOL", pool.map(square, range(5)))
    """
    outcome = run(job.spec(code))

    assert outcome.reason == "exited", job.log()
    assert "POOL [0, 1, 4, 9, 16]" in job.log()


def test_concurrent_runs_are_independent(tmp_path: Path) -> None:
    jobs = [Job(tmp_path / name, f"sandbox-test-{uuid.uuid4().hex}") for name in "ab"]
    for item in jobs:
        for name in ("inputs", "ddos", "transformations", "outputs", "logs"):
            (item.data_dir / name).mkdir(parents=True)
    sleeper = SandboxRun.start(jobs[0].spec("import time; time.sleep(30)"))
    worker = SandboxRun.start(jobs[1].spec("import time; time.sleep(0.5); print('WORKER_DONE')"))
    assert set(sleeper.cgroup_dirs).isdisjoint(worker.cgroup_dirs)
    results: dict[str, SandboxOutcome] = {}
    threads = [
        threading.Thread(target=lambda: results.update(sleeper=sleeper.wait())),
        threading.Thread(target=lambda: results.update(worker=worker.wait())),
    ]
    for thread in threads:
        thread.start()

    threads[1].join(timeout=10)
    sleeper.stop()
    threads[0].join(timeout=10)

    assert results["worker"].reason == "exited"
    assert "WORKER_DONE" in jobs[1].log()
    assert results["sleeper"].reason == "stopped"
    assert processes_with(jobs[0].token) == []


def test_stop_after_the_end_changes_nothing(job: Job) -> None:
    sandbox = SandboxRun.start(job.spec("pass"))
    first = sandbox.wait()

    sandbox.stop()

    assert sandbox.wait() is first
    assert first.reason == "exited"


ENGINE_SCRIPT = """
import sys
from pathlib import Path
from ocean_provider.engine.sandbox import SandboxLimits, SandboxRun, SandboxSpec

data_dir, token, prefix = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
spec = SandboxSpec(
    data_dir=data_dir,
    argv=["/usr/bin/python3", "/data/transformations/algorithm", token],
    env={"PATH": "/usr/bin:/bin"},
    network=False,
    limits=SandboxLimits(
        wall_seconds=60, memory_bytes=1 << 28, max_processes=8, output_bytes=1 << 20
    ),
    log_path=data_dir / "logs" / "algorithm.log",
    cgroup_prefix=prefix,
)
run = SandboxRun.start(spec)
print(" ".join(str(d) for d in run.cgroup_dirs), flush=True)
run.wait()
"""


def test_sandbox_dies_with_a_killed_engine(job: Job, tmp_path: Path) -> None:
    job.spec(SLEEPER)  # writes the algorithm
    prefix = sandbox_limits.cgroup_prefix(tmp_path)
    engine = subprocess.Popen(
        [sys.executable, "-c", ENGINE_SCRIPT, str(job.data_dir), job.token, prefix],
        cwd=Path(__file__).parents[2],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert engine.stdout is not None
    cgroup_dirs = [Path(d) for d in engine.stdout.readline().split()]
    engine.stdout.close()
    wait_for_file(job.data_dir / "outputs" / "started")

    engine.kill()  # SIGKILL: no chance to clean up
    engine.wait()

    deadline = time.monotonic() + 3
    while processes_with(job.token) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(job.token) == []
    # only the cgroup dirs are left behind; the next engine's start sweeps them
    # (members may take a moment to leave once they are dead)
    while any(d.exists() for d in cgroup_dirs) and time.monotonic() < deadline + 3:
        sandbox_limits.remove_stale_cgroups(tmp_path)
        time.sleep(0.05)
    assert not any(d.exists() for d in cgroup_dirs)


def test_an_engine_sweeps_only_its_own_cgroups(job: Job, tmp_path: Path) -> None:
    engines = [tmp_path / "engine-a" / "jobs", tmp_path / "engine-b" / "jobs"]
    prefixes = [sandbox_limits.cgroup_prefix(jobs_dir) for jobs_dir in engines]
    assert prefixes[0] != prefixes[1]
    assert (
        sandbox_limits.cgroup_prefix(tmp_path / "engine-a" / ".." / "engine-a" / "jobs")
        == (prefixes[0])
    )
    runs = [SandboxRun.start(job.spec("pass", cgroup_prefix=prefix)) for prefix in prefixes]
    dirs = [run.cgroup_dirs for run in runs]
    for sandbox in runs:
        sandbox.wait()
    for run_dirs, prefix in zip(dirs, prefixes, strict=True):
        assert run_dirs and all(d.name.startswith(f"{prefix}-") for d in run_dirs)
        for directory in run_dirs:  # as if each engine had been killed mid-run
            directory.mkdir()

    sandbox_limits.remove_stale_cgroups(engines[0])

    assert not any(d.exists() for d in dirs[0])
    assert all(d.exists() for d in dirs[1])  # engine b may have just made them
    sandbox_limits.remove_stale_cgroups(engines[1])
    assert not any(d.exists() for d in dirs[1])


def test_only_spec_env_is_visible(job: Job, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVIDER_PRIVATE_KEY", "0xdeadbeefsecret")
    env = {**ENV, "ALGO_SETTING": "42"}

    outcome = run(job.spec("import json, os; print(json.dumps(dict(os.environ)))", env=env))

    assert outcome.reason == "exited"
    assert job.report() == {**env, "PWD": "/data"}  # bwrap sets PWD on --chdir
    assert "deadbeef" not in job.log()


def test_setup_failure_is_reported_as_error(job: Job) -> None:
    outcome = run(job.spec("print('never')", workdir="/does/not/exist"))

    assert (outcome.reason, outcome.exit_code) == ("error", None)
    assert "never" not in job.log()


@pytest.mark.parametrize(
    "changes",
    [
        {"argv": []},
        {"workdir": "relative"},
        {"ro_binds": [Path("/")]},
        {"ro_binds": [Path("/proc/self")]},
        {"ro_binds": [Path("/does/not/exist")]},
        {"limits": replace(LIMITS, memory_bytes=0)},
        {"uid": 0},
        {"env": {"BAD=NAME": "x"}},
        {"cgroup_prefix": "a-b"},
        {"runtime_mounts": [RuntimeMount(Path(sys.base_prefix), PurePosixPath("/usr/x"))]},
        {"runtime_mounts": [RuntimeMount(Path(sys.base_prefix), RUNTIME_ROOT)]},
        {"runtime_mounts": [RuntimeMount(Path("/missing"), RUNTIME_ROOT / "x")]},
        {"runtime_mounts": [RuntimeMount(Path("/usr"), RUNTIME_ROOT / "x" / ".." / "y")]},
        {
            "runtime_mounts": [
                RuntimeMount(Path("/usr"), RUNTIME_ROOT / "x"),
                RuntimeMount(Path("/bin"), RUNTIME_ROOT / "x" / "y"),
            ]
        },
        {"cgroup_prefix": ""},
    ],
)
def test_invalid_spec_raises(job: Job, changes: dict[str, Any]) -> None:
    with pytest.raises(SandboxError):
        SandboxRun.start(job.spec("pass", **changes))


def test_missing_data_dir_raises(job: Job) -> None:
    spec = replace(job.spec("pass"), data_dir=job.data_dir / "missing")

    with pytest.raises(SandboxError, match="not a directory"):
        SandboxRun.start(spec)


CPU_BURNER = """
    import time
    start = time.monotonic()
    while time.monotonic() - start < 1.5:
        pass
    print(round(time.process_time(), 2))
"""


def test_cpu_quota_caps_cpu_time(job: Job) -> None:
    sandbox = SandboxRun.start(job.spec(CPU_BURNER, limits=replace(LIMITS, cpus=0.25)))
    cpu_dirs = [d for d in sandbox.cgroup_dirs if (d / "cpu.cfs_quota_us").exists()]
    assert [(d / "cpu.cfs_quota_us").read_text().strip() for d in cpu_dirs] == ["25000"]

    outcome = sandbox.wait()

    assert outcome.reason == "exited"
    assert float(job.log().split()[-1]) < 0.25 * 1.5 + 0.2  # unthrottled it would be ~1.5
