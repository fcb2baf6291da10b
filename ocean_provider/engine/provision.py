"""Provisioning (statuses 20 to 30): lay out the job's /data tree, fetch inputs and algorithm.

Failures raise ``ProvisionFailed`` with status 31 (data) or 32 (algorithm)
and a reason that also goes to the job's configuration log.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocean_provider.engine.environments import Runtime, runtime_for
from ocean_provider.engine.fetch import SafeFetcher
from ocean_provider.engine.fetch_request import FetchError
from ocean_provider.operator.models import JobStatus

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
    ro_binds: list[Path]


def safe_name(did: str) -> str:
    """A DID as one path segment (no slashes, no dots-only names)."""
    name = SAFE_NAME.sub("_", did)[:200]
    return name if name.strip(".") else "_"


class Provisioner:
    def __init__(self, fetcher: SafeFetcher, runtimes: Sequence[Runtime]) -> None:
        self._fetcher = fetcher
        self._runtimes = runtimes

    def prepare(
        self, job_dir: Path, workflow: Mapping[str, Any], env_network: bool, log: ConfigLog
    ) -> PreparedJob:
        stage = workflow["stages"][0]
        data = job_dir / "data"
        for name in DATA_DIRS:
            (data / name).mkdir(parents=True, exist_ok=True)
        algorithm = stage.get("algorithm") or {}
        runtime = self._runtime(algorithm, log)
        dids = self._inputs(data, stage.get("input") or [], log)
        self._algorithm(data, algorithm, log)
        custom = algorithm.get("algocustomdata")
        (data / "inputs" / "algoCustomData.json").write_text(json.dumps(custom or {}))
        self._runtime_bin(data, runtime)
        network = env_network and all(
            bool(item.get("allowNetworkAccess")) for item in stage.get("input") or []
        )
        env = {
            "ALGO": ALGORITHM_PATH,
            "DIDS": json.dumps(dids),
            "TRANSFORMATION_DID": str(algorithm.get("id") or ""),
            "PATH": f"{RUNTIME_BIN}:/usr/local/bin:/usr/bin:/bin",
            "HOME": "/tmp",
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
        }
        entrypoint = str(algorithm["container"]["entrypoint"])
        log.write(f"runtime {runtime.executable} for image {_image(algorithm)}; network {network}")
        binds = [Path(m) for m in runtime.mounts]
        return PreparedJob(data, ["/bin/sh", "-c", entrypoint], env, network, binds)

    def _runtime(self, algorithm: Mapping[str, Any], log: ConfigLog) -> Runtime:
        container = algorithm.get("container") or {}
        if not container.get("entrypoint") or not container.get("image"):
            raise log.fail(JobStatus.ALGORITHM_PROVISIONING_FAILED, "algorithm has no container")
        runtime = runtime_for(
            self._runtimes, str(container["image"]), str(container.get("tag", ""))
        )
        if runtime is None:
            raise log.fail(
                JobStatus.ALGORITHM_PROVISIONING_FAILED,
                f"no local runtime for image {_image(algorithm)}; see the engine's runtimes table",
            )
        return runtime

    def _inputs(self, data: Path, inputs: Sequence[Mapping[str, Any]], log: ConfigLog) -> list[str]:
        dids = []
        for item in inputs:
            did = str(item.get("id") or "")
            files = item.get("files") or []
            if not did or not files:
                raise log.fail(JobStatus.DATA_PROVISIONING_FAILED, f"input {did!r} has no files")
            target = data / "inputs" / safe_name(did)
            target.mkdir(parents=True, exist_ok=True)
            for index, file_object in enumerate(files):
                self._fetch(
                    file_object,
                    target / str(index),
                    JobStatus.DATA_PROVISIONING_FAILED,
                    f"input {did} file {index}",
                    log,
                )
            (data / "ddos" / safe_name(did)).write_text(json.dumps(item.get("ddo") or {}))
            dids.append(did)
        return dids

    def _algorithm(self, data: Path, algorithm: Mapping[str, Any], log: ConfigLog) -> None:
        target = data / "transformations" / "algorithm"
        failed = JobStatus.ALGORITHM_PROVISIONING_FAILED
        if algorithm.get("rawcode"):
            target.write_text(str(algorithm["rawcode"]))
        elif algorithm.get("url"):
            self._fetch(
                {"type": "url", "url": algorithm["url"], "method": "GET"},
                target,
                failed,
                "algorithm",
                log,
            )
        elif algorithm.get("files"):
            self._fetch(algorithm["files"][0], target, failed, "algorithm", log)
            if algorithm.get("id"):
                ddo_path = data / "ddos" / safe_name(str(algorithm["id"]))
                ddo_path.write_text(json.dumps(algorithm.get("ddo") or {}))
        else:
            raise log.fail(failed, "algorithm has no rawcode, url or files")
        os.chmod(target, 0o644)
        log.write(f"algorithm ready ({target.stat().st_size} bytes)")

    def _fetch(
        self, file_object: Any, dest: Path, status: JobStatus, what: str, log: ConfigLog
    ) -> None:
        if not isinstance(file_object, Mapping):
            raise log.fail(status, f"{what}: not a file object")
        try:
            size = self._fetcher.fetch_to(file_object, dest)
        except FetchError as exc:
            raise log.fail(status, f"{what}: {exc.reason}") from None
        log.write(f"{what}: fetched {size} bytes")

    @staticmethod
    def _runtime_bin(data: Path, runtime: Runtime) -> None:
        """Names like ``python`` in the entrypoint resolve to the image's local runtime."""
        bin_dir = data / "transformations" / ".runtime-bin"
        bin_dir.mkdir(exist_ok=True)
        for alias in runtime.aliases:
            link = bin_dir / alias
            if not link.is_symlink():
                link.symlink_to(runtime.executable)


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


def _image(algorithm: Mapping[str, Any]) -> str:
    container = algorithm.get("container") or {}
    return f"{container.get('image', '')}:{container.get('tag', '') or 'latest'}"
