"""The kernel surface a sandboxed job reaches: namespaces, mounts, keyrings and the other
calls container runtimes refuse by default (real bwrap, hostile algorithms, root)."""

from __future__ import annotations

import json
import subprocess
import textwrap
import uuid
from pathlib import Path

import pytest

from ocean_provider.engine.sandbox import SandboxLimits, SandboxRun, SandboxSpec

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
LIMITS = SandboxLimits(
    wall_seconds=20, memory_bytes=256 * MIB, max_processes=32, output_bytes=10 * MIB
)
# Each probe makes one raw system call through libc and prints its errno (0: allowed).
KERNEL_PROBE = """
    import ctypes, errno, json, os, subprocess
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    NR = {"unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155,
          "keyctl": 250, "add_key": 248, "request_key": 249, "bpf": 321, "userfaultfd": 323,
          "perf_event_open": 298, "ptrace": 101, "process_vm_readv": 310, "kexec_load": 246,
          "init_module": 175, "delete_module": 176, "open_by_handle_at": 304, "clone": 56,
          "clone3": 435, "io_uring_setup": 425, "fsopen": 430, "open_tree": 428}
    CLONE_NEWUSER, CLONE_NEWNS, SIGCHLD = 0x10000000, 0x20000, 17
    KEY_SPEC_USER_KEYRING, KEYCTL_GET_KEYRING_ID, PTRACE_ATTACH = -4, 0, 16

    def call(name, *args):
        ctypes.set_errno(0)
        result = libc.syscall(NR[name], *[ctypes.c_long(a) for a in args])
        if result == 0 and name == "clone":
            os._exit(0)  # the child of a clone that was let through
        if result > 0 and name == "clone":
            os.waitpid(result, 0)
        return errno.errorcode.get(ctypes.get_errno(), "OK") if result == -1 else "OK"

    def tool(*argv):
        done = subprocess.run(argv, capture_output=True)
        return "OK" if done.returncode == 0 else "FAILED"

    report = {  # the tools first: a successful unshare below changes this process
        "unshare_tool": tool("unshare", "-U", "true"),
        "unshare_mount_tool": tool("unshare", "-Umr", "mount", "-t", "tmpfs", "x", "/tmp"),
        "unshare_user": call("unshare", CLONE_NEWUSER),
        "unshare_mount": call("unshare", CLONE_NEWNS),
        "clone_newuser": call("clone", CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0),
        "clone3": call("clone3", 0, 0),
        "setns": call("setns", 0, 0),
        "mount": call("mount", 0, 0, 0, 0, 0),
        "umount2": call("umount2", 0, 0),
        "pivot_root": call("pivot_root", 0, 0),
        "keyctl": call("keyctl", KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 1),
        "add_key": call("add_key", 0, 0, 0, 0, KEY_SPEC_USER_KEYRING),
        "request_key": call("request_key", 0, 0, 0, 0),
        "bpf": call("bpf", 0, 0, 0),
        "userfaultfd": call("userfaultfd", 0),
        "perf_event_open": call("perf_event_open", 0, 0, -1, -1, 0),
        "ptrace": call("ptrace", PTRACE_ATTACH, 1, 0, 0),
        "process_vm_readv": call("process_vm_readv", 1, 0, 0, 0, 0, 0),
        "kexec_load": call("kexec_load", 0, 0, 0, 0),
        "init_module": call("init_module", 0, 0, 0),
        "delete_module": call("delete_module", 0, 0),
        "open_by_handle_at": call("open_by_handle_at", 0, 0, 0),
        "io_uring_setup": call("io_uring_setup", 0, 0),
        "fsopen": call("fsopen", 0, 0),
        "open_tree": call("open_tree", 0, 0, 0),
        "fork": call("clone", SIGCHLD, 0, 0, 0, 0),
        "thread": tool("python3", "-c", "import threading as t; t.Thread(target=id).start()"),
    }
    report["seccomp"] = [line.split()[1] for line in open("/proc/self/status")
                         if line.startswith("Seccomp:")][0]
    print(json.dumps(report))
"""
REFUSED = {"EPERM", "ENOSYS", "FAILED"}


def make_data_dir(root: Path) -> Path:
    data_dir = root / "data"
    for name in ("inputs", "ddos", "transformations", "outputs", "logs"):
        (data_dir / name).mkdir(parents=True)
    return data_dir


def spec_for(data_dir: Path, code: str, **changes: object) -> SandboxSpec:
    (data_dir / "transformations" / "algorithm").write_text(textwrap.dedent(code))
    return SandboxSpec(
        data_dir=data_dir,
        argv=["/usr/bin/python3", "/data/transformations/algorithm", uuid.uuid4().hex],
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
        network=False,
        limits=LIMITS,
        log_path=data_dir / "logs" / "algorithm.log",
        **changes,  # type: ignore[arg-type]
    )


def last_json(path: Path) -> dict[str, str]:
    result: dict[str, str] = json.loads(path.read_text().strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def kernel_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    data_dir = make_data_dir(tmp_path_factory.mktemp("kernel"))
    spec = spec_for(data_dir, KERNEL_PROBE)

    outcome = SandboxRun.start(spec).wait()

    assert outcome.reason == "exited", spec.log_path.read_text()
    return last_json(spec.log_path)


@pytest.mark.parametrize(
    "call",
    [
        "unshare_user",
        "unshare_mount",
        "unshare_tool",
        "unshare_mount_tool",
        "clone_newuser",
        "clone3",
        "setns",
        "mount",
        "umount2",
        "pivot_root",
        "keyctl",
        "add_key",
        "request_key",
        "bpf",
        "userfaultfd",
        "perf_event_open",
        "ptrace",
        "process_vm_readv",
        "kexec_load",
        "init_module",
        "delete_module",
        "open_by_handle_at",
        "io_uring_setup",
        "fsopen",
        "open_tree",
    ],
)
def test_call_is_refused(kernel_report: dict[str, str], call: str) -> None:
    assert kernel_report[call] in REFUSED


def test_a_seccomp_filter_is_loaded(kernel_report: dict[str, str]) -> None:
    assert kernel_report["seccomp"] == "2"  # SECCOMP_MODE_FILTER


def test_processes_and_threads_still_start(kernel_report: dict[str, str]) -> None:
    assert (kernel_report["fork"], kernel_report["thread"]) == ("OK", "OK")


def test_the_host_has_user_namespaces() -> None:
    """Without them the refusals above would prove nothing."""
    done = subprocess.run(["unshare", "-U", "true"], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
