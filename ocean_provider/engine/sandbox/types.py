"""Value types shared by the sandbox runner modules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

MIB = 1024 * 1024
NOBODY = 65534
RUNTIME_ROOT = PurePosixPath("/opt/runtime")

OutcomeReason = Literal[
    "exited", "timeout", "memory", "processes", "output_limit", "stopped", "error"
]


class SandboxError(Exception):
    """The sandbox could not be set up (bwrap missing, bad spec, cgroup failure)."""


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one run.

    ``max_processes`` counts the algorithm's processes *and threads*.
    ``tmp_bytes`` sizes each private tmpfs (/tmp and /dev/shm); their pages are
    also charged to the memory cgroup, so they count against ``memory_bytes``.
    """

    wall_seconds: float
    memory_bytes: int
    max_processes: int
    output_bytes: int
    tmp_bytes: int = 64 * MIB
    cpus: float | None = None  # CPU time per wall second (cgroup cpu quota); None: no cap


@dataclass(frozen=True)
class RuntimeMount:
    """A host directory (an interpreter's install) mounted read-only at ``target``,
    a path under RUNTIME_ROOT: never at its host path, whose parents (a home
    folder, say) bwrap would otherwise create inside."""

    source: Path
    target: PurePosixPath


@dataclass(frozen=True)
class SandboxSpec:
    """What to run and how.

    ``data_dir`` holds inputs/, ddos/, transformations/ (mounted read-only)
    and outputs/, logs/ (writable) and appears as /data inside. Nothing else
    is writable except the private tmpfs mounts /tmp and /dev/shm.
    ``ro_binds`` are extra host paths mounted read-only at the same path.
    ``runtime_mounts`` bring an interpreter's install in under RUNTIME_ROOT.
    ``env`` is the complete environment inside (bwrap only adds PWD=workdir).
    ``uid``/``gid`` is the unprivileged identity, both inside and on the host;
    the engine leases one per running job (sandbox.uids).
    ``cgroup_prefix`` starts the names of the run's cgroups: one per engine
    (``sandbox.limits.cgroup_prefix``), so an engine sweeps only its own.
    """

    data_dir: Path
    argv: Sequence[str]
    env: Mapping[str, str]
    network: bool
    limits: SandboxLimits
    log_path: Path
    workdir: str = "/data"
    ro_binds: Sequence[Path] = ()
    runtime_mounts: Sequence[RuntimeMount] = ()
    uid: int = NOBODY
    gid: int = NOBODY
    cgroup_prefix: str = "run"


@dataclass(frozen=True)
class SandboxOutcome:
    """How a run ended. ``exit_code`` is None when the runner killed it."""

    exit_code: int | None
    reason: OutcomeReason
    detail: str
    duration: float
