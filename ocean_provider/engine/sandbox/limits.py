"""Resource enforcement for sandbox runs: cgroup v1, rlimits, output size."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import resource
import signal
import stat
import time
from collections.abc import Iterable
from pathlib import Path

from ocean_provider.engine.sandbox.types import SandboxError, SandboxLimits

logger = logging.getLogger(__name__)

CGROUP_MOUNT = Path("/sys/fs/cgroup")
CGROUP_PARENT = "ocean-engine"
# The bwrap process acting as pid 1 of the sandbox sits in the pids cgroup too.
BWRAP_INIT_PROCESSES = 1
ENTRY_MIN_BYTES = 512
CPU_PERIOD_US = 100_000


class RunCgroups:
    """The per-run memory, pids and cpu cgroups (v1); any may be missing."""

    def __init__(
        self, memory_dir: Path | None, pids_dir: Path | None, cpu_dir: Path | None = None
    ) -> None:
        self.memory_dir = memory_dir
        self.pids_dir = pids_dir
        self.cpu_dir = cpu_dir

    @classmethod
    def create(cls, run_id: str, limits: SandboxLimits) -> RunCgroups:
        """Create the cgroups that are available; log the ones that are not."""
        memory_dir = _make_cgroup("memory", run_id)
        pids_dir = _make_cgroup("pids", run_id)
        cpu_dir = _make_cgroup("cpu", run_id) if limits.cpus else None
        groups = cls(memory_dir, pids_dir, cpu_dir)
        try:
            groups._configure(limits)
        except OSError as exc:
            groups.remove()
            raise SandboxError(f"cannot configure cgroups: {exc}") from exc
        return groups

    @property
    def dirs(self) -> tuple[Path, ...]:
        return tuple(d for d in (self.memory_dir, self.pids_dir, self.cpu_dir) if d is not None)

    def _configure(self, limits: SandboxLimits) -> None:
        if self.memory_dir is not None:
            _write(self.memory_dir / "memory.limit_in_bytes", limits.memory_bytes)
            memsw = self.memory_dir / "memory.memsw.limit_in_bytes"
            if memsw.exists():  # no escape into swap
                _write(memsw, limits.memory_bytes)
        if self.pids_dir is not None:
            total = limits.max_processes + BWRAP_INIT_PROCESSES
            _write(self.pids_dir / "pids.max", total)
        if self.cpu_dir is not None and limits.cpus:
            _write(self.cpu_dir / "cpu.cfs_period_us", CPU_PERIOD_US)
            _write(self.cpu_dir / "cpu.cfs_quota_us", max(1000, int(limits.cpus * CPU_PERIOD_US)))

    def attach(self, pid: int) -> None:
        """Move ``pid`` into every cgroup; its future children inherit them."""
        for directory in self.dirs:
            _write(directory / "cgroup.procs", pid)

    def oom_kills(self) -> int:
        """Processes killed by the OOM killer (falls back to failcnt hits)."""
        if self.memory_dir is None:
            return 0
        fields = _read_fields(self.memory_dir / "memory.oom_control")
        if "oom_kill" in fields:
            return fields["oom_kill"]
        return _read_int(self.memory_dir / "memory.failcnt")

    def pids_limit_hits(self) -> int:
        """How often a fork/clone failed because pids.max was reached."""
        if self.pids_dir is None:
            return 0
        return _read_fields(self.pids_dir / "pids.events").get("max", 0)

    def members(self) -> set[int]:
        pids: set[int] = set()
        for directory in self.dirs:
            pids.update(_read_pids(directory / "cgroup.procs"))
        return pids

    def kill_all(self) -> None:
        """SIGKILL every process still in the cgroups."""
        for pid in self.members():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def remove(self, timeout: float = 5.0) -> None:
        """Kill leftovers, wait until the cgroups are empty, remove them."""
        deadline = time.monotonic() + timeout
        while self.members() and time.monotonic() < deadline:
            self.kill_all()
            time.sleep(0.05)
        for directory in self.dirs:
            _remove_cgroup(directory, deadline)


def cgroup_prefix(jobs_dir: Path) -> str:
    """The prefix of the run cgroups of the engine whose runs live in ``jobs_dir``.

    Engines on one host share the ``ocean-engine`` parents; each names its runs'
    cgroups ``<prefix>-<run>`` and sweeps only its own.
    """
    digest = hashlib.sha256(str(jobs_dir.resolve()).encode()).hexdigest()
    return f"e{digest[:16]}"


def remove_stale_cgroups(jobs_dir: Path) -> int:
    """Remove the empty run cgroups this engine (``jobs_dir``) left when killed mid-run.

    Another engine's cgroups stay, even empty: it may have just created them.
    """
    own = f"{cgroup_prefix(jobs_dir)}-"
    removed = 0
    for controller in ("memory", "pids", "cpu"):
        parent = CGROUP_MOUNT / controller / CGROUP_PARENT
        if not parent.is_dir():
            continue
        for directory in parent.iterdir():
            if directory.name.startswith(own) and directory.is_dir():
                removed += _try_rmdir(directory)
    if removed:
        logger.info("removed %d cgroup(s) left by an earlier run of this engine", removed)
    return removed


def _try_rmdir(directory: Path) -> int:
    """1 if ``directory`` was removed; 0 if it is gone or still in use."""
    try:
        directory.rmdir()
    except OSError:
        return 0
    return 1


def _make_cgroup(controller: str, run_id: str) -> Path | None:
    hierarchy = CGROUP_MOUNT / controller
    if not (hierarchy / "cgroup.procs").exists():
        logger.warning("cgroup v1 %s controller unavailable; using rlimits", controller)
        return None
    directory = hierarchy / CGROUP_PARENT / run_id
    try:
        directory.mkdir(parents=True)
    except OSError as exc:
        logger.warning("cannot create %s (%s); using rlimits", directory, exc)
        return None
    return directory


def _remove_cgroup(directory: Path, deadline: float) -> None:
    while True:
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if time.monotonic() >= deadline:
                logger.error("cannot remove cgroup %s: %s", directory, exc)
                return
            time.sleep(0.05)


def _write(path: Path, value: int) -> None:
    path.write_text(f"{value}\n")


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def _read_fields(path: Path) -> dict[str, int]:
    """Parse ``key value`` lines such as memory.oom_control or pids.events."""
    fields: dict[str, int] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return fields
    for line in lines:
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            fields[key] = int(value)
    return fields


def _read_pids(path: Path) -> list[int]:
    try:
        return [int(line) for line in path.read_text().split()]
    except (OSError, ValueError):
        return []


def apply_rlimits(pid: int, limits: SandboxLimits, cgroups: RunCgroups) -> None:
    """Set rlimits on ``pid`` (inherited by the algorithm).

    RLIMIT_FSIZE (output_bytes) lets no single file grow past the output cap: the
    write that would cross it is cut short there. RLIMIT_AS / RLIMIT_NPROC stand in
    for missing cgroups.
    """
    wanted: dict[int, int] = {
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_FSIZE: limits.output_bytes,
    }
    if cgroups.memory_dir is None:
        wanted[resource.RLIMIT_AS] = limits.memory_bytes
    if cgroups.pids_dir is None:
        # Counts every process of the sandbox uid on the host.
        wanted[resource.RLIMIT_NPROC] = limits.max_processes
    for which, value in wanted.items():
        resource.prlimit(pid, which, (value, value))


def output_usage(roots: Iterable[Path], stop_above: int) -> int:
    """Bytes used under ``roots`` (directories or single files).

    Each entry inside a root directory counts its apparent size but at least
    ENTRY_MIN_BYTES, so millions of empty files or directories cannot exhaust
    the host's inodes. A single-file root (the algorithm log, which the engine
    creates) counts its size alone. Symlinks are not followed. Stops once the
    total exceeds ``stop_above``.
    """
    total = 0
    pending: list[str] = []
    for root in roots:
        if root.is_dir():
            pending.append(str(root))
        elif root.exists():
            total += root.stat().st_size
    while pending and total <= stop_above:
        total += _scan_dir(pending.pop(), pending)
    return total


def _scan_dir(directory: str, pending: list[str]) -> int:
    """Sizes of the entries of ``directory``; queues its subdirectories."""
    total = 0
    with contextlib.suppress(OSError), os.scandir(directory) as entries:
        for entry in entries:
            with contextlib.suppress(OSError):  # vanished meanwhile
                size = entry.stat(follow_symlinks=False).st_size
                total += max(size, ENTRY_MIN_BYTES)
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
    return total


def namespace_pids(ns_init: int) -> list[int]:
    """Host pids of every process in the pid namespace whose pid 1 is ``ns_init``."""
    try:
        namespace = os.stat(f"/proc/{ns_init}/ns/pid").st_ino
    except OSError:
        return []
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(f"/proc/{name}/ns/pid").st_ino == namespace:
                    pids.append(int(name))
    return pids


def unlinked_usage(pids: Iterable[int], device: int) -> int:
    """Bytes of deleted-but-open regular files on ``device`` held by ``pids``.

    A file written after its last name is gone escapes a scan of the
    directories, yet fills the disk all the same.
    """
    seen: set[int] = set()
    total = 0
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        with contextlib.suppress(OSError):
            for fd in os.listdir(fd_dir):
                with contextlib.suppress(OSError):  # closed meanwhile
                    info = os.stat(f"{fd_dir}/{fd}")
                    if (
                        stat.S_ISREG(info.st_mode)
                        and info.st_nlink == 0
                        and info.st_dev == device
                        and info.st_ino not in seen
                    ):
                        seen.add(info.st_ino)
                        total += max(info.st_size, ENTRY_MIN_BYTES)
    return total
