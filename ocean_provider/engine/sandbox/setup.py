"""Host checks, spec validation and data-dir preparation for sandbox runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ocean_provider.engine.sandbox import bwrap as bw
from ocean_provider.engine.sandbox.seccomp import compile_program, seccomp_problem
from ocean_provider.engine.sandbox.types import NOBODY, SandboxError, SandboxSpec

BWRAP_ENV = {"PATH": "/usr/bin:/bin"}
CGROUP_PREFIX = re.compile(r"[A-Za-z0-9]{1,32}")  # no "-": one prefix never starts another


@dataclass(frozen=True)
class SandboxHost:
    """What every run on this host shares, worked out once per engine (``detect``):
    the bwrap binary, the compiled seccomp program and the system and /etc binds."""

    bwrap: str
    seccomp_program: bytes
    offline_binds: tuple[bw.Bind, ...]
    online_binds: tuple[bw.Bind, ...]

    @classmethod
    def detect(cls) -> SandboxHost:
        """Raises SandboxError if sandboxed runs cannot work here."""
        problem = host_problem()
        if problem is not None:
            raise SandboxError(problem)
        return cls(
            bwrap=bwrap_path(),
            seccomp_program=compile_program(),
            offline_binds=tuple(bw.host_binds(network=False)),
            online_binds=tuple(bw.host_binds(network=True)),
        )

    def binds(self, network: bool) -> tuple[bw.Bind, ...]:
        return self.online_binds if network else self.offline_binds


def probe_host() -> str | None:
    """Run a trivial sandbox; None if it works, else what is missing."""
    problem = host_problem()
    if problem is not None:
        return problem
    probe = [
        bwrap_path(),
        *["--unshare-pid", "--unshare-net", "--die-with-parent"],
        *bw.system_bind_args(),
        *["--proc", "/proc", "--dev", "/dev", "--"],
        *bw.setpriv_args(NOBODY, NOBODY),
        "true",
    ]
    try:
        result = subprocess.run(probe, capture_output=True, timeout=10, env=BWRAP_ENV, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap does not work here: {exc}"
    if result.returncode != 0:
        error = result.stderr.decode(errors="replace").strip()
        return f"bubblewrap does not work here: {error or result.returncode}"
    return None


def host_problem() -> str | None:
    """What is missing for sandboxed runs, without launching anything."""
    if shutil.which("bwrap", path=BWRAP_ENV["PATH"]) is None:
        return "bwrap not found: install the Debian package bubblewrap"
    if not os.access(bw.SETPRIV, os.X_OK):
        return f"{bw.SETPRIV} not found: install the Debian package util-linux"
    if os.geteuid() != 0:
        return "the compute engine must run as root to drop algorithms to an unprivileged uid"
    return seccomp_problem()


def bwrap_path() -> str:
    """The bwrap binary, looked up in the fixed system PATH only."""
    return shutil.which("bwrap", path=BWRAP_ENV["PATH"]) or "bwrap"


def output_roots(spec: SandboxSpec) -> list[Path]:
    """Paths counted against ``output_bytes``: outputs/, logs/ and the log file."""
    roots = [spec.data_dir / name for name in bw.WRITABLE_DATA]
    if not any(spec.log_path.is_relative_to(root) for root in roots):
        roots.append(spec.log_path)
    return roots


def validate_spec(spec: SandboxSpec) -> None:
    """Raise SandboxError for a spec that cannot be run safely."""
    limits = spec.limits
    if not spec.argv:
        raise SandboxError("argv is empty")
    if not spec.workdir.startswith("/"):
        raise SandboxError(f"workdir {spec.workdir!r} must be absolute")
    if limits.wall_seconds <= 0 or min(limits.memory_bytes, limits.output_bytes) <= 0:
        raise SandboxError(f"limits must be positive: {limits}")
    if limits.max_processes < 1 or limits.tmp_bytes <= 0:
        raise SandboxError(f"limits must be positive: {limits}")
    if spec.uid <= 0 or spec.gid <= 0:
        raise SandboxError("the sandbox uid/gid must not be root")
    if not CGROUP_PREFIX.fullmatch(spec.cgroup_prefix):
        raise SandboxError(f"cgroup_prefix {spec.cgroup_prefix!r} must be letters and digits")
    if not spec.data_dir.is_dir():
        raise SandboxError(f"data_dir {spec.data_dir} is not a directory")
    bw.validate_ro_binds(spec.ro_binds)
    bw.validate_runtime_mounts(spec.runtime_mounts)
    bw.validate_env(spec.env)


def prepare_data_dir(spec: SandboxSpec) -> None:
    """Create missing /data subdirs; hand the writable ones to the sandbox uid."""
    for name in (*bw.READ_ONLY_DATA, *bw.WRITABLE_DATA):
        (spec.data_dir / name).mkdir(exist_ok=True)
    for name in bw.WRITABLE_DATA:
        _chown_tree(spec.data_dir / name, spec.uid, spec.gid)
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for directory, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            os.chown(os.path.join(directory, name), uid, gid, follow_symlinks=False)
