"""Host uids for sandboxed jobs: each running job has one of its own.

Kernel keyrings, signals, ptrace, System V IPC and RLIMIT_NPROC all go by uid
on the host, so jobs sharing one uid (nobody) could reach each other through
them. A run leases a uid (its gid is the same number) and gives it back when it
ends. A lease is a flock() on one file per uid in ``lease_dir``: engines sharing
a host never hand out the same uid twice, and a killed engine's leases end with
its process. The lowest free uid is taken, so the lease files stay as few as the
runs at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from ocean_provider.engine.sandbox.types import SandboxError

# Above the ranges useradd (< 60000), /etc/subuid (100000 up to 600100000) and
# systemd's container ranges (up to 0x6FFFFFFF) hand out; below 2**31.
FIRST_UID = 2_000_000_000
UID_COUNT = 65536
LEASE_DIR = Path("/run/ocean-engine/uids")


class SandboxUids:
    """Leases uids ``first`` .. ``first + count - 1`` to runs."""

    def __init__(
        self, first: int = FIRST_UID, count: int = UID_COUNT, lease_dir: Path = LEASE_DIR
    ) -> None:
        if first <= 0 or count <= 0 or first + count > 2**31:
            raise ValueError(f"bad sandbox uid range {first} + {count}")
        self._first = first
        self._count = count
        self._lease_dir = lease_dir

    @contextlib.contextmanager
    def lease(self) -> Iterator[int]:
        """A uid no other run holds, for as long as the ``with`` block lasts."""
        uid, fd = self._acquire()
        try:
            yield uid
        finally:
            os.close(fd)  # ends the flock

    def _acquire(self) -> tuple[int, int]:
        self._lease_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        for uid in range(self._first, self._first + self._count):
            fd = os.open(self._lease_dir / str(uid), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return uid, fd
        raise SandboxError(f"all {self._count} sandbox uids are in use")
