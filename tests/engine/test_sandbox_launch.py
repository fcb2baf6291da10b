"""A sandbox set up ahead of its algorithm: launched, then released or stopped.

The engine launches a job's sandbox while the job's inputs download and lets it
go only at status 40, so: nothing runs before ``release()``, what lands in the
mounted folders meanwhile is seen, the wall time counts from the release, and
the seccomp program an engine compiles once serves every run.
"""

from __future__ import annotations

import json
import textwrap
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from ocean_provider.engine.sandbox import (
    SandboxHost,
    SandboxLimits,
    SandboxRun,
    SandboxSpec,
    sandbox_available,
)
from ocean_provider.engine.sandbox.uids import SandboxUids

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
LIMITS = SandboxLimits(wall_seconds=20, memory_bytes=256 * MIB, max_processes=32, output_bytes=MIB)
NAMESPACE_PROBE = """
    import ctypes, json, os
    libc = ctypes.CDLL(None, use_errno=True)
    refused = libc.unshare(0x10000000) != 0 and ctypes.get_errno() == 1  # CLONE_NEWUSER, EPERM
    print(json.dumps({"uid": os.getuid(), "unshare_refused": refused}))
"""


@pytest.fixture(scope="module", autouse=True)
def _require_sandbox() -> None:
    problem = sandbox_available()
    if problem is not None:
        pytest.fail(problem)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    for name in ("inputs", "ddos", "transformations", "outputs", "logs"):
        (data / name).mkdir(parents=True)
    return data


def spec_for(data_dir: Path, code: str, uid: int, wall_seconds: float = 20) -> SandboxSpec:
    (data_dir / "transformations" / "algorithm").write_text(textwrap.dedent(code))
    return SandboxSpec(
        data_dir=data_dir,
        argv=["/usr/bin/python3", "/data/transformations/algorithm"],
        env={"PATH": "/usr/bin:/bin"},
        network=False,
        limits=replace(LIMITS, wall_seconds=wall_seconds),
        log_path=data_dir.parent / "algorithm.log",
        uid=uid,
        gid=uid,
        cgroup_prefix="launchtest",
    )


def test_a_stopped_launch_never_runs_the_algorithm(data_dir: Path) -> None:
    marker = f"ran-{uuid.uuid4().hex}"
    code = f"open('/data/outputs/{marker}', 'w').write('x')\nprint('{marker}')\n"
    with SandboxUids().lease() as uid:
        run = SandboxRun.launch(spec_for(data_dir, code, uid))
        run.stop()
        outcome = run.wait()
    assert outcome.reason == "stopped"
    assert not (data_dir / "outputs" / marker).exists()
    assert list(data_dir.parent.iterdir()) == [data_dir]  # no algorithm log, not even empty
    assert all(not d.exists() for d in run.cgroup_dirs)


def test_files_written_after_launch_are_seen_and_wall_time_starts_at_release(
    data_dir: Path,
) -> None:
    code = "print(open('/data/inputs/late.csv').read().strip())\n"
    with SandboxUids().lease() as uid:
        run = SandboxRun.launch(spec_for(data_dir, code, uid, wall_seconds=1))
        (data_dir / "inputs" / "late.csv").write_text("downloaded after the mounts\n")
        time.sleep(1.2)  # longer than the wall time: only the algorithm's own time counts
        run.release()
        outcome = run.wait()
    assert (outcome.reason, outcome.exit_code) == ("exited", 0)
    assert "downloaded after the mounts" in (data_dir.parent / "algorithm.log").read_text()


def test_release_twice_is_refused(data_dir: Path) -> None:
    with SandboxUids().lease() as uid:
        run = SandboxRun.launch(spec_for(data_dir, "print(1)\n", uid))
        run.release()
        with pytest.raises(RuntimeError):
            run.release()
        assert run.wait().exit_code == 0


def test_one_host_profile_serves_many_runs_with_the_same_filter(tmp_path: Path) -> None:
    host = SandboxHost.detect()
    for n in range(3):  # each run gets its own copy of the program, read from offset 0
        data = tmp_path / f"run{n}" / "data"
        for name in ("inputs", "ddos", "transformations", "outputs", "logs"):
            (data / name).mkdir(parents=True)
        with SandboxUids().lease() as uid:
            outcome = SandboxRun.start(spec_for(data, NAMESPACE_PROBE, uid), host).wait()
            log = (data.parent / "algorithm.log").read_text()
            assert (outcome.reason, outcome.exit_code) == ("exited", 0), log
            assert json.loads(log.strip().splitlines()[-1]) == {
                "uid": uid,
                "unshare_refused": True,
            }
