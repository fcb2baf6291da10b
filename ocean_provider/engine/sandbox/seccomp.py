"""The seccomp filter every sandboxed job runs under, built with libseccomp.

It refuses (EPERM) what container runtimes refuse by default: new namespaces,
mounts, the kernel keyrings, BPF, userfaultfd, perf events, ptrace and reading
other processes' memory, kernel modules, kexec, open-by-handle, io_uring.
bwrap loads it (``--seccomp FD``) just before it execs setpriv, which needs none
of these to drop privileges.

bwrap's own ``--disable-userns`` works only with ``--unshare-user``, which this
engine cannot use as root (see sandbox.bwrap), so the filter refuses namespaces:
``unshare`` and ``setns`` outright, ``clone`` with any CLONE_NEW* flag, and
``clone3``, whose flags lie in memory a filter cannot read, with ENOSYS, so
that libc falls back to ``clone`` for threads and processes.
"""

from __future__ import annotations

import errno
import os
from typing import Any

DENIED = (
    # namespaces and mounts
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "mount_setattr",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    # kernel keyrings
    "keyctl",
    "add_key",
    "request_key",
    # tracing and other processes' memory
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "perf_event_open",
    "bpf",
    "userfaultfd",
    # the kernel itself
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "syslog",
    "iopl",
    "ioperm",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "open_by_handle_at",
    "name_to_handle_at",
    "lookup_dcookie",
    "nfsservctl",
    "uselib",
    "ustat",
    "sysfs",
    "vm86",
    "vm86old",
    "fanotify_init",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
)
NAMESPACE_FLAGS = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
)
UNKNOWN_SYSCALL = -1  # libseccomp's __NR_SCMP_ERROR


def seccomp_problem() -> str | None:
    """None if the filter can be built here, else what is missing."""
    try:
        _library()
    except (ImportError, OSError, RuntimeError) as exc:
        return f"libseccomp unusable ({exc}): install libseccomp2 and pyseccomp (scripts/setup)"
    return None


def compile_program() -> bytes:
    """The filter as a BPF program (what ``bwrap --seccomp`` reads). Built once per
    engine: the rules never change, and compiling costs about a millisecond."""
    seccomp = _library()
    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    refuse = seccomp.ERRNO(errno.EPERM)
    for name in DENIED:
        if seccomp.resolve_syscall(seccomp.Arch.NATIVE, name) != UNKNOWN_SYSCALL:
            rules.add_rule(refuse, name)
    for flag in NAMESPACE_FLAGS:
        rules.add_rule(refuse, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    fd = os.memfd_create("sandbox-seccomp", os.MFD_CLOEXEC)
    try:
        with open(fd, "rb+", closefd=False) as sink:
            rules.export_bpf(sink)
            sink.seek(0)
            program = sink.read()
    finally:
        os.close(fd)
    if not program or len(program) % 8:
        raise RuntimeError("libseccomp exported an invalid BPF program")
    return program


def filter_fd(program: bytes | None = None) -> int:
    """A memfd holding ``program`` (default: a fresh compile) at offset 0, for one run:
    bwrap reads the fd from its offset, so each run needs its own."""
    data = compile_program() if program is None else program
    fd = os.memfd_create("sandbox-seccomp", os.MFD_CLOEXEC)
    try:
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _library() -> Any:
    """pyseccomp (ctypes over libseccomp.so.2); loaded on first use, not at import."""
    import pyseccomp  # type: ignore[import-untyped]

    return pyseccomp
