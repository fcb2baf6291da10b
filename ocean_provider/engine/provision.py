"""Provisioning (statuses 20 to 30): lay out the job's /data tree, fetch inputs and algorithm.

``plan`` needs no download: it lays out the tree and works out the runtime, the
command and its environment, so the sandbox can be set up (and its folders
mounted) while ``fetch`` downloads into them. Failures raise ``ProvisionFailed``
with status 31 (data) or 32 (algorithm) and a reason that also goes to the job's
configuration log.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocean_provider.engine.environments import Runtime, runtime_for
from ocean_provider.engine.requests import Workflow, WorkflowAlgorithm, WorkflowInput
from ocean_provider.engine.sandbox.runtime import PlacedRuntime, place_runtime
from ocean_provider.engine.sandbox.types import RuntimeMount
from ocean_provider.fetch.fetcher import SafeFetcher
from ocean_provider.fetch.request import FetchError, FetchTooLarge
from ocean_provider.wire.fields import Container
from ocean_provider.wire.jobs import JobStatus

DATA_DIRS = ("inputs", "ddos", "transformations", "outputs", "logs")
ALGORITHM_PATH = "/data/transformations/algorithm"
RUNTIME_BIN = "/data/transformations/.runtime-bin"
SAFE_NAME = re.compile(r"[^A-Za-z0-9:._-]")


class ProvisionFailed(Exception):
    def __init__(self, status: JobStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class PreparedJob:
    data_dir: Path
    argv: list[str]
    env: dict[str, str]
    network: bool
    runtime_mounts: list[RuntimeMount]


def safe_name(did: str) -> str:
    """A DID as one path segment (no slashes, no dots-only names)."""
    name = SAFE_NAME.sub("_", did)[:200]
    return name if name.strip(".") else "_"


class Provisioner:
    def __init__(self, fetcher: SafeFetcher, runtimes: Sequence[Runtime]) -> None:
        self._fetcher = fetcher
        self._runtimes = runtimes

    def prepare(
        self,
        job_dir: Path,
        workflow: Workflow,
        env_network: bool,
        log: ConfigLog,
        cancel: threading.Event | None = None,
    ) -> PreparedJob:
        """``plan``, then ``fetch``."""
        prepared = self.plan(job_dir, workflow, env_network, log)
        self.fetch(job_dir, workflow, log, cancel)
        return prepared

    def plan(
        self, job_dir: Path, workflow: Workflow, env_network: bool, log: ConfigLog
    ) -> PreparedJob:
        """Lay out ``job_dir/data`` and work out what the sandbox runs; downloads nothing."""
        stage = workflow.stage
        algorithm = stage.algorithm
        data = job_dir / "data"
        for name in DATA_DIRS:
            (data / name).mkdir(parents=True, exist_ok=True)
        runtime = self._runtime(algorithm.container, log)
        placed = place_runtime(runtime.aliases[0], runtime.executable, runtime.mounts)
        self._runtime_bin(data, runtime.aliases, placed)
        network = env_network and all(item.allow_network for item in stage.input)
        env = {
            "ALGO": ALGORITHM_PATH,
            "DIDS": json.dumps([item.id for item in stage.input]),
            "TRANSFORMATION_DID": algorithm.id,
            "PATH": f"{RUNTIME_BIN}:/usr/local/bin:/usr/bin:/bin",
            "HOME": "/tmp",
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            **placed.env(),
        }
        log.write(
            f"runtime {placed.executable} for image {_image(algorithm.container)}; "
            f"network {network}"
        )
        argv = ["/bin/sh", "-c", algorithm.container.entrypoint]
        return PreparedJob(data, argv, env, network, list(placed.mounts))

    def fetch(
        self,
        job_dir: Path,
        workflow: Workflow,
        log: ConfigLog,
        cancel: threading.Event | None = None,
    ) -> None:
        """Download the inputs and the algorithm into the planned tree; ``cancel`` ends
        any download in progress."""
        stage = workflow.stage
        data = job_dir / "data"
        downloads = JobDownloads(self._fetcher, log, cancel, self._fetcher.policy.max_bytes)
        self._inputs(data, stage.input, downloads)
        self._algorithm(data, stage.algorithm, log, downloads)
        custom = json.dumps(stage.algorithm.algocustomdata or {})
        (data / "inputs" / "algoCustomData.json").write_text(custom)

    def _runtime(self, container: Container, log: ConfigLog) -> Runtime:
        runtime = runtime_for(self._runtimes, container.image, container.tag)
        if runtime is None:
            raise log.fail(
                JobStatus.ALGORITHM_PROVISIONING_FAILED,
                f"no local runtime for image {_image(container)}; see the engine's runtimes table",
            )
        return runtime

    def _inputs(self, data: Path, inputs: Sequence[WorkflowInput], downloads: JobDownloads) -> None:
        for item in inputs:
            target = data / "inputs" / safe_name(item.id)
            target.mkdir(parents=True, exist_ok=True)
            for index, file_object in enumerate(item.files):
                downloads.fetch(
                    file_object,
                    target / str(index),
                    JobStatus.DATA_PROVISIONING_FAILED,
                    f"input {item.id} file {index}",
                )
            (data / "ddos" / safe_name(item.id)).write_text(json.dumps(item.ddo))

    def _algorithm(
        self, data: Path, algorithm: WorkflowAlgorithm, log: ConfigLog, downloads: JobDownloads
    ) -> None:
        target = data / "transformations" / "algorithm"
        failed = JobStatus.ALGORITHM_PROVISIONING_FAILED
        if algorithm.rawcode:
            target.write_text(algorithm.rawcode)
        elif algorithm.url:
            url_file = {"type": "url", "url": algorithm.url, "method": "GET"}
            downloads.fetch(url_file, target, failed, "algorithm")
        else:  # the request model guarantees files when there is no rawcode or url
            downloads.fetch(algorithm.files[0], target, failed, "algorithm")
            if algorithm.id:
                ddo_path = data / "ddos" / safe_name(algorithm.id)
                ddo_path.write_text(json.dumps(algorithm.ddo or {}))
        os.chmod(target, 0o644)
        log.write(f"algorithm ready ({target.stat().st_size} bytes)")

    @staticmethod
    def _runtime_bin(data: Path, aliases: Sequence[str], placed: PlacedRuntime) -> None:
        """Names like ``python`` in the entrypoint resolve to the image's local runtime
        (links to where the sandbox mounts it)."""
        bin_dir = data / "transformations" / ".runtime-bin"
        bin_dir.mkdir(exist_ok=True)
        for alias in aliases:
            link = bin_dir / alias
            if not link.is_symlink():
                link.symlink_to(placed.executable)


class JobDownloads:
    """One job's downloads: logged, cancellable, and capped together at ``budget`` bytes."""

    def __init__(
        self,
        fetcher: SafeFetcher,
        log: ConfigLog,
        cancel: threading.Event | None,
        budget: int,
    ) -> None:
        self._fetcher = fetcher
        self._log = log
        self._cancel = cancel
        self._remaining = budget

    def fetch(
        self, file_object: Mapping[str, Any], dest: Path, status: JobStatus, what: str
    ) -> None:
        try:
            size = self._fetcher.fetch_to(file_object, dest, self._cancel, self._remaining)
        except FetchTooLarge:
            reason = "the job's inputs exceed the engine's input size limit"
            raise self._log.fail(status, f"{what}: {reason}") from None
        except FetchError as exc:
            raise self._log.fail(status, f"{what}: {exc.reason}") from None
        self._remaining -= size
        self._log.write(f"{what}: fetched {size} bytes")


class ConfigLog:
    """The job's configuration log (a result of type ``configurationLog``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, line: str) -> None:
        with self.path.open("a") as handle:
            handle.write(line.rstrip() + "\n")

    def fail(self, status: JobStatus, reason: str) -> ProvisionFailed:
        self.write(f"FAILED: {reason}")
        return ProvisionFailed(status, reason)


def _image(container: Container) -> str:
    return f"{container.image}:{container.tag or 'latest'}"
