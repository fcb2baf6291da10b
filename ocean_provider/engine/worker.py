"""Runs jobs: a scheduler thread claims queued jobs FIFO under each environment's maxJobs,
one thread per job takes it through provisioning, the sandbox and publishing.

A job's sandbox is set up (mounted, put in its cgroups, blocked before the
algorithm's exec) while its inputs download, and let go only once the job is
at status 40; a job that fails or stops before that never runs a line.

Every non-terminal state has a deadline that the scheduler enforces, also for
jobs left behind by a previous engine process (see ``recover``).
"""

from __future__ import annotations

import logging
import shutil
import stat
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ocean_provider.engine.environments import MIB, Environment
from ocean_provider.engine.provision import ConfigLog, PreparedJob, Provisioner, ProvisionFailed
from ocean_provider.engine.requests import Workflow
from ocean_provider.engine.sandbox import (
    SandboxError,
    SandboxHost,
    SandboxLimits,
    SandboxOutcome,
    SandboxRun,
    SandboxSpec,
)
from ocean_provider.engine.sandbox.limits import cgroup_prefix
from ocean_provider.engine.sandbox.types import OutcomeReason
from ocean_provider.engine.sandbox.uids import SandboxUids
from ocean_provider.engine.store import JobStore, StoredResult
from ocean_provider.wire.jobs import JobStatus, ResultFile

log = logging.getLogger(__name__)

TICK_SECONDS = 0.2
DEADLINE_GRACE = 5.0
MAX_OUTPUTS = 10_000


@dataclass(frozen=True)
class WorkerConfig:
    jobs_dir: Path
    provision_seconds: float
    publish_seconds: float


class Scheduler:
    def __init__(
        self,
        store: JobStore,
        environments: Mapping[str, Environment],
        provisioner: Provisioner,
        config: WorkerConfig,
        on_outcome: Callable[[OutcomeReason], None] | None = None,
    ) -> None:
        """``on_outcome`` hears how each run ended (metrics count kills by limit)."""
        self._on_outcome = on_outcome
        self._store = store
        self._envs = environments
        self._provisioner = provisioner
        self._config = config
        self._runs: dict[str, SandboxRun] = {}
        self._cancels: dict[str, threading.Event] = {}  # jobs provisioning
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_cleanup = 0.0
        self._cgroup_prefix = cgroup_prefix(config.jobs_dir)
        self._uids = SandboxUids()  # each running job its own host uid
        self._host: SandboxHost | None = None  # worked out once, in start()

    def job_dir(self, job_id: str) -> Path:
        return self._config.jobs_dir / job_id

    def start(self) -> None:
        try:
            self._host = SandboxHost.detect()  # seccomp compiled once, not per job
        except SandboxError as exc:
            log.error("sandbox host check failed; each job will try again: %s", exc)
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="engine-scheduler", daemon=True)
        self._thread.start()

    def shutdown(self, timeout: float = 10) -> None:
        self._closing.set()
        self._wake.set()
        with self._lock:
            busy = set(self._runs) | set(self._cancels)
            threads = list(self._threads.values())
        for job_id in busy:
            self._interrupt(job_id)
        ends = time.monotonic() + timeout
        for thread in [*threads, *([self._thread] if self._thread else [])]:
            thread.join(max(0.0, ends - time.monotonic()))

    def wake(self) -> None:
        self._wake.set()

    def recover(self) -> None:
        """Jobs a previous process was working on cannot resume: end them clearly."""
        for job_id, status, _deadline, _stop in self._store.active():
            if status != JobStatus.WARMING_UP:
                self._store.finish(
                    job_id,
                    JobStatus.ALGORITHM_FAILED,
                    "interrupted by an engine restart",
                    results=self._collect(job_id),
                )
                log.warning("job %s was interrupted by an engine restart", job_id)

    def stop(self, job_id: str) -> None:
        """PUT: a queued job ends at once; a running one is killed and then published."""
        self._store.request_stop(job_id)
        self._store.finish_if_queued(job_id)
        self._interrupt(job_id)

    def _interrupt(self, job_id: str) -> None:
        """Cancel the job's downloads or kill its sandbox, whichever it is in."""
        with self._lock:
            run = self._runs.get(job_id)
            cancel = self._cancels.get(job_id)
        if cancel is not None:
            cancel.set()
        if run is not None:
            run.stop()

    def forget(self, job_id: str, wait: float = 10) -> None:
        """DELETE: stop, wait for the job's thread, remove files and record."""
        self.stop(job_id)
        with self._lock:
            thread = self._threads.get(job_id)
        if thread is not None:
            thread.join(wait)
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        self._store.delete(job_id)

    def _loop(self) -> None:
        while not self._closing.is_set():
            try:
                self._enforce_deadlines()
                self._dispatch()
                self._cleanup_expired()
            except Exception:
                log.exception("scheduler tick failed; continuing")
            self._wake.wait(TICK_SECONDS)
            self._wake.clear()

    def _dispatch(self) -> None:
        for env in self._envs.values():
            while not self._closing.is_set():
                deadline = time.time() + self._config.provision_seconds
                job_id = self._store.claim_next(env.id, env.max_jobs, deadline)
                if job_id is None:
                    break
                thread = threading.Thread(
                    target=self._run_job, args=(job_id, env), name=f"job-{job_id[:8]}", daemon=True
                )
                with self._lock:  # registered and started at once: nobody joins it unstarted
                    self._threads[job_id] = thread
                    thread.start()

    def _enforce_deadlines(self) -> None:
        now = time.time()
        for job_id, status, deadline, _stop in self._store.active():
            if deadline + DEADLINE_GRACE > now:
                continue
            with self._lock:
                run = self._runs.get(job_id)
                cancel = self._cancels.get(job_id)
            if cancel is not None:
                cancel.set()  # its downloads stop; the finish below wins
            if run is not None:
                run.stop()  # the job's thread publishes and ends it
            elif status == JobStatus.WARMING_UP:
                self._store.finish(job_id, JobStatus.TIMED_OUT, "waited too long in the queue")
            else:
                self._store.finish(
                    job_id,
                    JobStatus.ALGORITHM_FAILED,
                    f"no progress past status {status} in time",
                    results=self._collect(job_id),
                )

    def _cleanup_expired(self) -> None:
        now = time.time()
        if now - self._last_cleanup < 5:
            return
        self._last_cleanup = now
        for job_id in self._store.expired(now):
            self._store.forget_results(job_id)  # first: nobody is served a vanishing file
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
            log.info("results of job %s expired and were deleted", job_id)

    def _run_job(self, job_id: str, env: Environment) -> None:
        try:
            self._execute(job_id, env)
        except Exception:
            log.exception("job %s failed inside the engine", job_id)
            self._store.finish(
                job_id,
                JobStatus.ALGORITHM_FAILED,
                "internal engine error",
                results=self._collect(job_id),
            )
        finally:
            with self._lock:
                self._runs.pop(job_id, None)
                self._cancels.pop(job_id, None)
                self._threads.pop(job_id, None)
            self._wake.set()

    def _execute(self, job_id: str, env: Environment) -> None:
        cancel = threading.Event()  # registered first: a stop from now on reaches the downloads
        with self._lock:
            self._cancels[job_id] = cancel  # _run_job removes it
        record = self._store.get(job_id)
        if record is None or not self._store.advance(job_id, JobStatus.CONFIGURING):
            return
        if record.job.stopreq:  # asked before the event was registered
            cancel.set()
        config_log = ConfigLog(self.job_dir(job_id) / "admin" / "configure.log")
        try:
            workflow = Workflow.model_validate(record.workflow)
            prepared = self._provisioner.plan(
                self.job_dir(job_id), workflow, env.allow_network, config_log
            )
        except ProvisionFailed as failed:
            self._provisioning_failed(job_id, cancel, failed)
            return
        with self._uids.lease() as uid:  # the data dir's writable parts are chowned to it
            run, problem = self._launch(self._spec(job_id, env, prepared, uid))
            outcome: SandboxOutcome | None = None
            try:
                try:
                    self._provisioner.fetch(self.job_dir(job_id), workflow, config_log, cancel)
                except ProvisionFailed as failed:
                    self._provisioning_failed(job_id, cancel, failed)
                    return
                if not self._store.advance(job_id, JobStatus.PROVISIONED):
                    return
                deadline = time.time() + env.max_job_duration
                if not self._store.advance(job_id, JobStatus.RUNNING, deadline=deadline):
                    return
                if run is None:
                    raise problem or SandboxError("no sandbox")  # as if it failed to start now
                outcome = self._run(job_id, run)
            finally:
                if run is not None and outcome is None:  # never let go: it runs nothing
                    run.stop()
                    run.wait()
        self._publish(job_id, env, outcome)

    def _provisioning_failed(
        self, job_id: str, cancel: threading.Event, failed: ProvisionFailed
    ) -> None:
        stopped = self._store.get(job_id)
        if cancel.is_set() and stopped is not None and stopped.job.stopreq:
            self._store.finish(job_id, JobStatus.STOPPED, results=self._collect(job_id))
        else:
            self._store.finish(job_id, failed.status, failed.reason, self._collect(job_id))

    def _launch(self, spec: SandboxSpec) -> tuple[SandboxRun | None, SandboxError | None]:
        """Set the sandbox up while the inputs download. A failure is held back until
        they are in, so bad inputs still end the job 31 or 32 first."""
        try:
            return SandboxRun.launch(spec, self._host), None
        except SandboxError as exc:
            return None, exc

    def _run(self, job_id: str, run: SandboxRun) -> SandboxOutcome:
        """Let the launched sandbox run the algorithm (status 40) and wait for it."""
        with self._lock:
            self._runs[job_id] = run
        record = self._store.get(job_id)
        if record is None or record.job.stopreq or self._closing.is_set():
            run.stop()  # asked before the run was registered: shutdown() did not see it
        else:
            run.release()
        outcome = run.wait()
        if self._on_outcome is not None:
            self._on_outcome(outcome.reason)
        log.info(
            "job %s: %s (%s) after %.1fs", job_id, outcome.reason, outcome.detail, outcome.duration
        )
        return outcome

    def _spec(self, job_id: str, env: Environment, prepared: PreparedJob, uid: int) -> SandboxSpec:
        return SandboxSpec(
            data_dir=prepared.data_dir,
            argv=prepared.argv,
            env=prepared.env,
            network=prepared.network,
            limits=SandboxLimits(
                wall_seconds=env.max_job_duration,
                memory_bytes=int(env.ram_gb * 1024 * MIB),
                max_processes=env.max_processes,
                output_bytes=env.max_output_mb * MIB,
                cpus=env.n_cpu,
            ),
            log_path=self.job_dir(job_id) / "admin" / "algorithm.log",  # out of the job's reach
            runtime_mounts=prepared.runtime_mounts,
            uid=uid,
            gid=uid,
            cgroup_prefix=self._cgroup_prefix,
        )

    def _publish(self, job_id: str, env: Environment, outcome: SandboxOutcome) -> None:
        record = self._store.get(job_id)
        stopped = outcome.reason == "stopped" and record is not None and record.job.stopreq
        if outcome.reason == "exited" and outcome.exit_code == 0:
            status, detail = JobStatus.COMPLETED, ""
        elif stopped:
            status, detail = JobStatus.STOPPED, ""
        elif outcome.reason == "stopped" and self._closing.is_set():
            status, detail = JobStatus.ALGORITHM_FAILED, "interrupted by an engine shutdown"
        elif outcome.reason in ("timeout", "stopped"):
            status, detail = JobStatus.TIMED_OUT, outcome.detail
        else:
            status, detail = JobStatus.ALGORITHM_FAILED, outcome.detail
        deadline = time.time() + self._config.publish_seconds
        self._store.advance(job_id, JobStatus.PUBLISHING, deadline=deadline)
        self._store.finish(job_id, status, detail, self._collect(job_id))

    def _collect(self, job_id: str) -> list[StoredResult]:
        """Outputs (recursively, sorted; regular files only, at most MAX_OUTPUTS), then the
        algorithm log, then the configuration log."""
        root = self.job_dir(job_id)
        found: list[tuple[Path, str, str]] = []
        outputs = root / "data" / "outputs"
        if outputs.is_dir():
            files = sorted(p for p in outputs.rglob("*") if _regular(p))
            if len(files) > MAX_OUTPUTS:
                log.warning("job %s: %d outputs, keeping %d", job_id, len(files), MAX_OUTPUTS)
            for path in files[:MAX_OUTPUTS]:
                found.append((path, str(path.relative_to(outputs)), "output"))
        for path, kind in (
            (root / "admin" / "algorithm.log", "algorithmLog"),
            (root / "admin" / "configure.log", "configurationLog"),
        ):
            if _regular(path):
                found.append((path, path.name, kind))
        return [
            StoredResult(
                ResultFile(index=i, filename=name, filesize=path.lstat().st_size, type=kind),
                str(path),
            )
            for i, (path, name, kind) in enumerate(found)
        ]

    def result_file(self, job_id: str, stored: StoredResult) -> Path | None:
        """The result's file if it is still a regular file inside the job's folder.

        Checked again when served: the engine reads as root, so a link the
        algorithm left behind must never be followed.
        """
        path, job_dir = Path(stored.path), self.job_dir(job_id)
        if not path.is_relative_to(job_dir) or not _regular(path):
            return None
        inside = job_dir
        for part in path.relative_to(job_dir).parts[:-1]:
            inside = inside / part
            if inside.is_symlink():
                return None
        return path


def _regular(path: Path) -> bool:
    """A regular file with one name, reached without following any symlink."""
    try:
        info = path.lstat()
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_nlink == 1
