"""Compute environments and the image -> local runtime table, from the engine's config."""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ocean_provider.errors import ConfigurationError
from ocean_provider.wire.jobs import ACCEPTS_FILES

MIB = 1024 * 1024
GIB = 1024 * MIB


class Environment(BaseModel):
    """One environment as configured; ``announce`` gives what the API shows."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(min_length=1, max_length=64)
    desc: str = ""
    cpu_type: str = Field(default="", alias="cpuType")
    n_cpu: int = Field(default=1, ge=1, alias="nCPU")
    n_gpu: int = Field(default=0, ge=0, alias="nGPU")
    gpu_type: str = Field(default="", alias="gpuType")
    ram_gb: float = Field(default=1, gt=0, alias="ramGB")
    disk_gb: float = Field(default=1, gt=0, alias="diskGB")
    price_min: float = Field(default=0, ge=0, alias="priceMin")
    max_jobs: int = Field(default=1, ge=1, alias="maxJobs")
    consumer_address: str = Field(default="0x" + "0" * 40, alias="consumerAddress")
    max_job_duration: int = Field(default=600, ge=1, alias="maxJobDuration")
    storage_expiry: int = Field(default=86400, ge=1, alias="storageExpiry")
    fee_token: str = Field(default="0x" + "0" * 40, alias="feeToken")
    free: bool = True
    allow_network: bool = Field(default=False, alias="allowNetwork")
    max_processes: int = Field(default=64, ge=4, alias="maxProcesses")
    max_output_mb: int = Field(default=1024, ge=1, alias="maxOutputMB")
    max_queue_seconds: int = Field(default=3600, ge=1, alias="maxQueueSeconds")

    def announce(self, current_jobs: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "desc": self.desc,
            "cpuType": self.cpu_type,
            "nCPU": self.n_cpu,
            "cpuNumber": self.n_cpu,
            "nGPU": self.n_gpu,
            "gpuNumber": self.n_gpu,
            "gpuType": self.gpu_type,
            "ramGB": self.ram_gb,
            "diskGB": self.disk_gb,
            "priceMin": self.price_min,
            "maxJobs": self.max_jobs,
            "currentJobs": current_jobs,
            "consumerAddress": self.consumer_address,
            "maxJobDuration": self.max_job_duration,
            "storageExpiry": self.storage_expiry,
            "feeToken": self.fee_token,
            "free": self.free,
            ACCEPTS_FILES: True,  # the workflow brings each input's decrypted files
        }


class Runtime(BaseModel):
    """Images matching ``images`` (shell patterns on ``image:tag``) run on ``executable``."""

    model_config = ConfigDict(extra="forbid")

    images: list[str] = Field(min_length=1)
    executable: str
    aliases: list[str] = Field(min_length=1)
    mounts: list[str] = Field(default_factory=list)

    def matches(self, image: str, tag: str) -> bool:
        reference = f"{image}:{tag or 'latest'}"
        return any(fnmatch.fnmatchcase(reference, pattern) for pattern in self.images)


def python_runtime() -> Runtime:
    """The default Python runtime: this interpreter's base installation (not its venv)."""
    base = Path(sys.base_prefix)
    return Runtime(
        images=[
            "python:*",
            "oceanprotocol/algo_dockers:python-*",
            "oceanprotocol/c2d_examples:py-*",
        ],
        executable=str(base / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"),
        aliases=["python", "python3"],
        mounts=[str(base)] if not str(base).startswith("/usr") else [],
    )


def node_runtime() -> Runtime:
    return Runtime(
        images=["node:*", "oceanprotocol/algo_dockers:node-*"],
        executable="/usr/bin/node",
        aliases=["node", "nodejs"],
    )


def parse_environments(raw: Iterable[Mapping[str, Any]]) -> dict[str, Environment]:
    envs: dict[str, Environment] = {}
    for index, item in enumerate(raw):
        try:
            env = Environment.model_validate(item)
        except ValidationError as exc:
            field = ".".join(str(p) for p in exc.errors()[0]["loc"])
            raise ConfigurationError(f"environments[{index}].{field} is invalid") from None
        if env.id in envs:
            raise ConfigurationError(f"environments[{index}].id {env.id!r} is repeated")
        envs[env.id] = env
    if not envs:
        raise ConfigurationError("the engine needs at least one environment")
    return envs


def parse_runtimes(raw: Sequence[Mapping[str, Any]]) -> list[Runtime]:
    try:
        configured = [Runtime.model_validate(item) for item in raw]
    except ValidationError:
        raise ConfigurationError("runtimes: each needs images, executable and aliases") from None
    return configured + [python_runtime(), node_runtime()]


def runtime_for(runtimes: Sequence[Runtime], image: str, tag: str) -> Runtime | None:
    for runtime in runtimes:
        if runtime.matches(image, tag) and Path(runtime.executable).exists():
            return runtime
    return None
