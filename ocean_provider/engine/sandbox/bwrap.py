"""Builds the bubblewrap command line for a sandbox run.

bwrap is run by root *without* a user namespace: as root, ``--unshare-user
--uid 65534`` would map the sandbox uid onto host uid 0, so the algorithm would
still own every root-owned file it can see. Instead bwrap sets up the
namespaces and mounts as root, keeps only CAP_SETUID/SETGID/SETPCAP, and runs
``setpriv`` which switches to an unprivileged host uid/gid, clears groups and
every capability set and sets no_new_privs before exec'ing the algorithm.
bwrap loads the seccomp filter (sandbox.seccomp) just before it execs setpriv.
"""

from __future__ import annotations

import json
import os
import select
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ocean_provider.engine.sandbox.types import (
    RUNTIME_ROOT,
    RuntimeMount,
    SandboxError,
    SandboxSpec,
)

SETPRIV = "/usr/bin/setpriv"
DATA_ROOT = PurePosixPath("/data")
READ_ONLY_DATA = ("inputs", "ddos", "transformations")
WRITABLE_DATA = ("outputs", "logs")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
ETC_ENTRIES = (
    "alternatives",
    "ca-certificates.conf",
    "gai.conf",
    "host.conf",
    "hosts",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "mime.types",
    "nsswitch.conf",
    "os-release",
    "protocols",
    "services",
    "ssl/certs",
    "ssl/openssl.cnf",
)
RESERVED = tuple(
    PurePosixPath(p)
    for p in ("/data", "/proc", "/dev", "/tmp", "/etc/passwd", "/etc/group", str(RUNTIME_ROOT))
)
KEPT_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")

Bind = tuple[str, str, str]  # (bwrap option, source, destination)


@dataclass(frozen=True)
class BwrapFds:
    """File descriptors handed to bwrap (all must be in ``pass_fds``)."""

    block: int
    status: int
    passwd: int
    group: int
    seccomp: int

    def all(self) -> tuple[int, ...]:
        return (self.block, self.status, self.passwd, self.group, self.seccomp)


def build_argv(
    bwrap: str, spec: SandboxSpec, fds: BwrapFds, host: Sequence[Bind] | None = None
) -> list[str]:
    """Full argv: bwrap options, then setpriv, then the algorithm command.

    ``host`` are the system and /etc binds (``host_binds(spec.network)``), which an
    engine works out once; None works them out now.
    """
    return [
        bwrap,
        *_namespace_args(spec.network),
        *_filesystem_args(spec, fds, host_binds(spec.network) if host is None else host),
        *_env_args(spec.env),
        "--chdir",
        spec.workdir,
        "--block-fd",
        str(fds.block),
        "--json-status-fd",
        str(fds.status),
        "--seccomp",  # loaded just before setpriv is exec'd; see sandbox.seccomp
        str(fds.seccomp),
        "--",
        *setpriv_args(spec.uid, spec.gid),
        *spec.argv,
    ]


def setpriv_args(uid: int, gid: int) -> list[str]:
    """Drop to ``uid``/``gid`` with no groups, no capabilities, no_new_privs."""
    return [
        SETPRIV,
        f"--reuid={uid}",
        f"--regid={gid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--ambient-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]


def _namespace_args(network: bool) -> list[str]:
    args = ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
    if not network:
        args.append("--unshare-net")
    args += ["--hostname", "sandbox", "--die-with-parent", "--new-session"]
    args += ["--cap-drop", "ALL"]
    for cap in KEPT_CAPS:  # only for setpriv; it drops them before exec
        args += ["--cap-add", cap]
    return args


def _filesystem_args(spec: SandboxSpec, fds: BwrapFds, host: Sequence[Bind]) -> list[str]:
    binds = list(host)
    binds += [("--ro-bind", str(p), str(p)) for p in spec.ro_binds]
    binds += [("--ro-bind", str(m.source), str(m.target)) for m in spec.runtime_mounts]
    data = _data_binds(spec.data_dir)
    dests = [b[2] for b in binds + data] + ["/etc/passwd", "/etc/group", "/tmp"]
    args = _parent_dirs(dests)
    for op, src, dest in binds:
        args += [op, src, dest]
    args += ["--ro-bind-data", str(fds.passwd), "/etc/passwd"]
    args += ["--ro-bind-data", str(fds.group), "/etc/group"]
    args += ["--proc", "/proc", "--dev", "/dev"]
    for tmpfs in ("/tmp", "/dev/shm"):  # /dev/shm: POSIX semaphores, multiprocessing
        args += ["--perms", "1777", "--size", str(spec.limits.tmp_bytes), "--tmpfs", tmpfs]
    for op, src, dest in data:
        args += [op, src, dest]
    return [*args, "--remount-ro", "/"]


def system_bind_args() -> list[str]:
    """Read-only /usr and the /bin, /lib... dirs or their symlinks."""
    return [arg for bind in _system_binds() for arg in bind]


def host_binds(network: bool) -> list[Bind]:
    """Read-only system dirs and the /etc entries a job may see (resolv.conf only with
    network). Fixed for a host, so an engine builds them once: /etc entries are bound
    with ``--ro-bind-try``, so one that appears or vanishes later needs no rebuild."""
    return [*_system_binds(), *_etc_binds(network)]


def _system_binds() -> list[Bind]:
    binds: list[Bind] = []
    for name in SYSTEM_DIRS:
        path = Path(name)
        if path.is_symlink():
            binds.append(("--symlink", str(path.readlink()), name))
        elif path.is_dir():
            binds.append(("--ro-bind", name, name))
    return binds


def _etc_binds(network: bool) -> list[Bind]:
    entries = [*ETC_ENTRIES, *_python_config_dirs()]
    if network:
        entries.append("resolv.conf")
    return [("--ro-bind-try", f"/etc/{entry}", f"/etc/{entry}") for entry in entries]


def _python_config_dirs() -> list[str]:
    """Debian's /etc/python3* (sitecustomize and friends)."""
    return sorted(p.name for p in Path("/etc").glob("python3*"))


def _data_binds(data_dir: Path) -> list[Bind]:
    binds = []
    for name in READ_ONLY_DATA:
        binds.append(("--ro-bind", str(data_dir / name), str(DATA_ROOT / name)))
    for name in WRITABLE_DATA:
        binds.append(("--bind", str(data_dir / name), str(DATA_ROOT / name)))
    return binds


def _parent_dirs(dests: Iterable[str]) -> list[str]:
    """``--dir`` with mode 0755 for every parent bwrap would create as 0700."""
    dest_set = {PurePosixPath(d) for d in dests}
    parents: set[PurePosixPath] = set()
    for dest in dest_set:
        parents.update(p for p in dest.parents if p != PurePosixPath("/"))
    needed = [p for p in parents if not _inside_any(p, dest_set)]
    args: list[str] = []
    for parent in sorted(needed, key=lambda p: (len(p.parts), str(p))):
        args += ["--perms", "0755", "--dir", str(parent)]
    return args


def _inside_any(path: PurePosixPath, mounts: set[PurePosixPath]) -> bool:
    return any(path == m or m in path.parents for m in mounts)


def _env_args(env: Mapping[str, str]) -> list[str]:
    args = ["--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args


def validate_env(env: Mapping[str, str]) -> None:
    """Raise SandboxError for names bwrap --setenv cannot take."""
    for key in env:
        if not key or "=" in key or "\0" in key:
            raise SandboxError(f"invalid environment variable name {key!r}")


def validate_ro_binds(paths: Iterable[Path]) -> None:
    """Extra binds must be absolute, existing and not clash with managed paths."""
    for path in paths:
        posix = PurePosixPath(path)
        if not posix.is_absolute() or posix == PurePosixPath("/") or not path.exists():
            raise SandboxError(f"ro_bind {path} must be an existing absolute path, not /")
        if any(posix == r or r in posix.parents for r in RESERVED):
            raise SandboxError(f"ro_bind {path} overlaps a path the sandbox manages")


def validate_runtime_mounts(mounts: Iterable[RuntimeMount]) -> None:
    """Runtime mounts take existing host dirs to distinct paths under RUNTIME_ROOT."""
    targets: set[PurePosixPath] = set()
    for mount in mounts:
        source = PurePosixPath(mount.source)
        if not source.is_absolute() or source == PurePosixPath("/") or not mount.source.is_dir():
            raise SandboxError(f"runtime {mount.source} must be an existing absolute dir, not /")
        if RUNTIME_ROOT not in mount.target.parents or ".." in mount.target.parts:
            raise SandboxError(f"runtime target {mount.target} must be inside {RUNTIME_ROOT}")
        if any(_nested(mount.target, t) for t in targets):
            raise SandboxError(f"runtime target {mount.target} overlaps another")
        targets.add(mount.target)


def _nested(one: PurePosixPath, other: PurePosixPath) -> bool:
    return one == other or one in other.parents or other in one.parents


def identity_files(uid: int, gid: int) -> tuple[bytes, bytes]:
    """Minimal /etc/passwd and /etc/group contents (no host accounts)."""
    passwd = (
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"algorithm:x:{uid}:{gid}:algorithm:/tmp:/usr/sbin/nologin\n"
    )
    group = f"root:x:0:\nalgorithm:x:{gid}:\n"
    return passwd.encode(), group.encode()


class BwrapStatus:
    """Reads the JSON lines bwrap writes to ``--json-status-fd``."""

    MAX_BUFFER = 64 * 1024

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = b""
        self._eof = False
        self.child_pid: int | None = None
        self.exit_code: int | None = None

    def wait_child_pid(self, timeout: float) -> int | None:
        """The sandbox's pid 1 (host pid), or None if bwrap died first."""
        deadline = time.monotonic() + timeout
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        while self.child_pid is None and not self._eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SandboxError("bwrap did not report its child pid in time")
            if poller.poll(remaining * 1000):
                self._read_once()
        return self.child_pid

    def drain(self) -> None:
        """Read whatever is buffered in the pipe without blocking."""
        os.set_blocking(self._fd, False)
        while not self._eof:
            try:
                self._read_once()
            except BlockingIOError:
                return

    def close(self) -> None:
        os.close(self._fd)

    def _read_once(self) -> None:
        chunk = os.read(self._fd, 4096)
        if not chunk:
            self._eof = True
            return
        self._buffer += chunk
        while b"\n" in self._buffer:
            line, _, self._buffer = self._buffer.partition(b"\n")
            self._parse(line)
        if len(self._buffer) > self.MAX_BUFFER:
            self._buffer = b""

    def _parse(self, line: bytes) -> None:
        try:
            doc = json.loads(line)
        except ValueError:
            return
        if not isinstance(doc, dict):
            return
        if isinstance(doc.get("child-pid"), int):
            self.child_pid = doc["child-pid"]
        if isinstance(doc.get("exit-code"), int):
            self.exit_code = doc["exit-code"]
