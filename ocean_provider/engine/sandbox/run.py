"""Run one algorithm command inside a bubblewrap sandbox, with limits.

Lifecycle: ``SandboxRun.launch(spec, host)`` starts bwrap, which sets up the
sandbox and then blocks; meanwhile a helper thread moves the sandbox's pid 1
into per-run cgroups and applies rlimits (a cgroup v1 move waits for an RCU
grace period, ~10 ms, so the caller can do other work, such as downloading the
inputs into the already mounted folders). ``release()`` waits for that
confinement and only then lets the sandbox exec the algorithm; the wall-time
limit counts from there. ``start()`` is both at once. ``wait()`` polls every
0.2 s to enforce the wall-time, process and output caps; ``stop()`` kills the
whole tree from any thread, released or not. Always call ``wait()``: it also
cleans up.

The caller of ``start()`` must live as long as the run (``--die-with-parent``
uses PR_SET_PDEATHSIG, which fires when the *thread* that started bwrap exits).
See sandbox.bwrap for why bwrap runs as root without a user namespace.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from ocean_provider.engine.sandbox import bwrap as bw
from ocean_provider.engine.sandbox import setup
from ocean_provider.engine.sandbox.limits import (
    RunCgroups,
    apply_rlimits,
    namespace_pids,
    output_usage,
    unlinked_usage,
)
from ocean_provider.engine.sandbox.seccomp import filter_fd as seccomp_filter_fd
from ocean_provider.engine.sandbox.setup import SandboxHost
from ocean_provider.engine.sandbox.types import (
    MIB,
    OutcomeReason,
    SandboxError,
    SandboxLimits,
    SandboxOutcome,
    SandboxSpec,
)

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.2
START_TIMEOUT_SECONDS = 10.0
KILL_GRACE_SECONDS = 5.0


def sandbox_available() -> str | None:
    """None if sandboxed runs work on this host, else what is missing."""
    return setup.probe_host()


class SandboxRun:
    """A started sandbox. ``stop()`` is thread-safe; ``wait()`` may be called once or more."""

    def __init__(
        self, spec: SandboxSpec, host: SandboxHost, cgroups: RunCgroups, started: float
    ) -> None:
        self._spec = spec
        self._host = host
        self._cgroups = cgroups
        self._started = started
        self._block_w = -1
        self._unreleased_log: Path | None = None  # where the log waits for release()
        self._confining: threading.Thread | None = None
        self._confine_error: BaseException | None = None
        self._lock = threading.Lock()
        self._wait_lock = threading.Lock()
        self._stop_requested = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._status: bw.BwrapStatus | None = None
        self._pidfd = -1
        self._child_pidfd = -1
        self._child_pid = 0
        self._data_device = spec.data_dir.stat().st_dev
        self._reaped = False
        self._outcome: SandboxOutcome | None = None

    @classmethod
    def start(cls, spec: SandboxSpec, host: SandboxHost | None = None) -> SandboxRun:
        """Launch ``spec.argv`` in a new sandbox and let it run; raises SandboxError."""
        run = cls.launch(spec, host)
        run.release()
        return run

    @classmethod
    def launch(cls, spec: SandboxSpec, host: SandboxHost | None = None) -> SandboxRun:
        """Set the sandbox up, blocked before the algorithm's exec, and start confining it.

        ``host`` is what an engine worked out once (None: work it out now). Raises
        SandboxError on setup failure. Follow with ``release()`` or ``stop()``, then
        ``wait()``.
        """
        started = time.monotonic()
        if host is None:
            host = SandboxHost.detect()
        setup.validate_spec(spec)
        setup.prepare_data_dir(spec)
        cgroups = RunCgroups.create(f"{spec.cgroup_prefix}-{uuid.uuid4().hex[:12]}", spec.limits)
        run = cls(spec, host, cgroups, started)
        try:
            run._launch()
        except BaseException:
            run._abort()
            raise
        return run

    def release(self) -> None:
        """Once confined, let the sandbox exec the algorithm; the wall time starts now.

        Raises SandboxError (and kills the sandbox) if it could not be confined.
        """
        if self._block_w < 0:
            raise RuntimeError("release() once, after launch()")
        block_w, self._block_w = self._block_w, -1
        self._publish_log()
        try:
            if self._confining is not None:
                self._confining.join()
            if self._confine_error is not None:
                raise self._confine_error
        except BaseException:
            self._kill()  # before closing block_w: EOF would also unblock bwrap
            os.close(block_w)
            raise
        self._started = time.monotonic()
        try:
            os.write(block_w, b"1")
        except BrokenPipeError:
            logger.warning("bwrap exited during sandbox setup")
        finally:
            os.close(block_w)

    @property
    def pid(self) -> int:
        """Host pid of the outer bwrap process."""
        assert self._proc is not None
        return self._proc.pid

    @property
    def cgroup_dirs(self) -> tuple[Path, ...]:
        """The per-run cgroup directories (removed when the run ends)."""
        return self._cgroups.dirs

    def stop(self) -> None:
        """Kill the whole process tree now; ``wait()`` then reports "stopped"."""
        self._stop_requested.set()
        self._kill()

    def wait(self) -> SandboxOutcome:
        """Block until the run ends, enforcing the limits; then clean up."""
        with self._wait_lock:
            if self._outcome is None:
                try:
                    self._outcome = self._supervise()
                except BaseException:
                    self._kill()
                    raise
                finally:
                    self._cleanup()
                logger.info("sandbox run ended: %s", self._outcome)
            return self._outcome

    # -- launching -------------------------------------------------------

    def _launch(self) -> None:
        block_r, block_w = os.pipe()
        status_r, status_w = os.pipe()
        self._status = bw.BwrapStatus(status_r)
        passwd, group = bw.identity_files(self._spec.uid, self._spec.gid)
        seccomp = seccomp_filter_fd(self._host.seccomp_program)
        fds = bw.BwrapFds(block_r, status_w, _data_pipe(passwd), _data_pipe(group), seccomp)
        host_binds = self._host.binds(self._spec.network)
        try:
            self._popen(bw.build_argv(self._host.bwrap, self._spec, fds, host_binds), fds)
        except BaseException:
            os.close(block_w)
            raise
        finally:
            for fd in fds.all():
                os.close(fd)
        self._block_w = block_w  # from here on, launch()'s _abort() closes it
        child = self._status.wait_child_pid(START_TIMEOUT_SECONDS)
        if child is not None:
            self._confining = threading.Thread(
                target=self._confine_quietly, args=(child,), name="sandbox-confine", daemon=True
            )
            self._confining.start()

    def _popen(self, argv: list[str], fds: bw.BwrapFds) -> None:
        """Start bwrap, its output going to a log that shows at ``log_path`` only once
        released: a run stopped before that leaves no algorithm log behind."""
        log_path = self._spec.log_path
        if not log_path.exists():
            self._unreleased_log = log_path.with_name(f".{log_path.name}.unreleased")
            log_path = self._unreleased_log
        with open(log_path, "ab") as log:
            try:
                self._proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=fds.all(),
                    start_new_session=True,
                    env=setup.BWRAP_ENV,
                )
            except OSError as exc:
                raise SandboxError(f"cannot start bwrap: {exc}") from exc
        self._pidfd = os.pidfd_open(self._proc.pid)
        logger.info("sandbox started: bwrap pid %d", self._proc.pid)

    def _confine_quietly(self, child: int) -> None:
        """The helper thread's work; ``release()`` raises what it failed with."""
        try:
            self._confine(child)
        except BaseException as exc:
            self._confine_error = exc

    def _confine(self, child: int) -> None:
        try:
            child_pidfd = os.pidfd_open(child)
            with self._lock:
                self._child_pidfd, self._child_pid = child_pidfd, child
            self._cgroups.attach(child)
            apply_rlimits(child, self._spec.limits, self._cgroups)
        except ProcessLookupError:
            logger.warning("bwrap child %d died during setup", child)
        except OSError as exc:
            raise SandboxError(f"cannot confine sandbox: {exc}") from exc

    def _publish_log(self) -> None:
        if self._unreleased_log is not None:
            os.replace(self._unreleased_log, self._spec.log_path)
            self._unreleased_log = None

    def _close_block(self) -> None:
        """Kill first: EOF on the block pipe would also let the sandbox go on."""
        if self._block_w >= 0:
            self._kill()
            os.close(self._block_w)
            self._block_w = -1

    def _abort(self) -> None:
        self._close_block()
        self._kill()
        if self._proc is not None:
            self._await_exit(KILL_GRACE_SECONDS)
            self._reap()
        self._cleanup()

    # -- supervising -----------------------------------------------------

    def _supervise(self) -> SandboxOutcome:
        deadline = self._started + self._spec.limits.wall_seconds
        while not self._await_exit(POLL_SECONDS):
            verdict = self._limit_verdict(deadline)
            if verdict is not None:
                self._kill()
                if not self._await_exit(KILL_GRACE_SECONDS):
                    logger.error("bwrap pid %d survived SIGKILL", self.pid)
                self._reap()
                return self._outcome_of(None, verdict)
        self._reap()
        return self._classify_exit()

    def _await_exit(self, timeout: float) -> bool:
        """True once the bwrap process has exited (not yet reaped)."""
        poller = select.poll()
        poller.register(self._pidfd, select.POLLIN)
        return bool(poller.poll(timeout * 1000))

    def _limit_verdict(self, deadline: float) -> OutcomeReason | None:
        if self._stop_requested.is_set():
            return "stopped"
        if time.monotonic() >= deadline:
            return "timeout"
        if self._cgroups.pids_limit_hits():
            return "processes"
        if self._output_exceeded():
            return "output_limit"
        return None

    def _output_exceeded(self) -> bool:
        return self._output_used() > self._spec.limits.output_bytes

    def _output_used(self) -> int:
        limit = self._spec.limits.output_bytes
        used = output_usage(setup.output_roots(self._spec), limit)
        if used <= limit and self._child_pid and not self._reaped:
            used += unlinked_usage(self._members(), self._data_device)
        return used

    def _members(self) -> Iterable[int]:
        """The sandbox's processes: the cgroups list them; without, scan /proc."""
        if self._cgroups.dirs:
            return self._cgroups.members()
        return namespace_pids(self._child_pid)

    def _classify_exit(self) -> SandboxOutcome:
        assert self._status is not None
        assert self._proc is not None
        self._status.drain()
        code = self._status.exit_code
        if self._stop_requested.is_set():
            return self._outcome_of(None, "stopped")
        if code is None:
            detail = f"sandbox setup failed (bwrap status {self._proc.returncode}); see log"
            return SandboxOutcome(None, "error", detail, self._elapsed())
        if self._output_hit(code):
            return self._outcome_of(code, "output_limit")
        if code != 0 and self._cgroups.oom_kills():
            return self._outcome_of(code, "memory")
        if code != 0 and self._cgroups.pids_limit_hits():
            return self._outcome_of(code, "processes")
        return self._outcome_of(code, "exited")

    def _output_hit(self, code: int) -> bool:
        """Past the cap, or failed at it: RLIMIT_FSIZE cut a write short at exactly
        the cap (SIGXFSZ, or EFBIG where the signal is ignored, as Python does)."""
        if code == 128 + signal.SIGXFSZ:
            return True
        used = self._output_used()
        limit = self._spec.limits.output_bytes
        return used > limit or (code != 0 and used >= limit)

    def _outcome_of(self, code: int | None, reason: OutcomeReason) -> SandboxOutcome:
        return SandboxOutcome(
            code, reason, _describe(reason, code, self._spec.limits), self._elapsed()
        )

    def _elapsed(self) -> float:
        return time.monotonic() - self._started

    # -- killing and cleanup ---------------------------------------------

    def _kill(self) -> None:
        """SIGKILL bwrap, the sandbox's pid 1 (tears down the pid namespace) and
        everything left in the cgroups."""
        with self._lock:
            if self._reaped or self._proc is None or self._proc.returncode is not None:
                return
            for fd in (self._child_pidfd, self._pidfd):
                _pidfd_kill(fd)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._cgroups.kill_all()

    def _reap(self) -> None:
        """Reap bwrap, then wait for the namespace's pid 1: the kernel lets it exit
        only once every other process in the namespace is gone."""
        assert self._proc is not None
        self._proc.wait()  # not under the lock: stop() never waits behind a stuck bwrap
        with self._lock:
            self._reaped = True
            child_pidfd = self._child_pidfd
        if child_pidfd >= 0:
            poller = select.poll()
            poller.register(child_pidfd, select.POLLIN)
            if not poller.poll(KILL_GRACE_SECONDS * 1000):
                logger.error("sandbox pid 1 (bwrap pid %d's child) outlived bwrap", self.pid)

    def _cleanup(self) -> None:
        if self._confining is not None:
            self._confining.join()  # it may still be opening the child's pidfd
        self._close_block()  # never released: the sandbox is dead or dies now
        if self._unreleased_log is not None:
            self._unreleased_log.unlink(missing_ok=True)
            self._unreleased_log = None
        self._cgroups.remove()
        with self._lock:
            for fd in (self._pidfd, self._child_pidfd):
                if fd >= 0:
                    os.close(fd)
            self._pidfd = self._child_pidfd = -1
        if self._status is not None:
            self._status.close()
            self._status = None


def _pidfd_kill(pidfd: int) -> None:
    if pidfd < 0:
        return
    with contextlib.suppress(ProcessLookupError):
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)


def _describe(reason: OutcomeReason, code: int | None, limits: SandboxLimits) -> str:
    if reason == "exited":
        signalled = f" (killed by signal {code - 128})" if code and code > 128 else ""
        return f"exit code {code}{signalled}"
    texts: dict[OutcomeReason, str] = {
        "timeout": f"killed after {limits.wall_seconds:.1f}s wall time limit",
        "memory": f"memory limit {_mib(limits.memory_bytes)} exceeded",
        "processes": f"process limit {limits.max_processes} reached",
        "output_limit": f"output limit {_mib(limits.output_bytes)} exceeded",
        "stopped": "stopped",
    }
    return texts.get(reason, reason)


def _mib(size: int) -> str:
    return f"{size / MIB:g} MiB"


def _data_pipe(data: bytes) -> int:
    """A pipe read end that yields ``data`` then EOF (``data`` must fit the pipe)."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, data)
    finally:
        os.close(write_end)
    return read_end
