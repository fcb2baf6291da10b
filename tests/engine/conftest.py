"""Engine fixtures: a real engine (real bubblewrap) on loopback, a file server, a client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ocean_provider.devnet.embedded import EmbeddedEngine, serve_directory, start_embedded_engine
from tests.conftest import PROVIDER_KEY

PROVIDER_ADDRESS = "0xe08A1dAe983BC701D05E492DB80e0144f8f4b909"


def environment(env_id: str = "local", **overrides: Any) -> dict[str, Any]:
    return {
        "id": env_id,
        "desc": "test",
        "maxJobs": 2,
        "maxJobDuration": 20,
        "ramGB": 0.5,
        "maxProcesses": 32,
        "maxOutputMB": 8,
        "storageExpiry": 3600,
        "maxQueueSeconds": 600,
        **overrides,
    }


def start_engine(storage: Path, envs: list[dict[str, Any]]) -> EmbeddedEngine:
    return start_embedded_engine(storage, envs, PROVIDER_KEY, PROVISION_SECONDS="30")


@pytest.fixture
def engine_env() -> list[dict[str, Any]]:
    return [environment()]


@pytest.fixture
def running_engine(tmp_path: Path, engine_env: list[dict[str, Any]]) -> Iterator[EmbeddedEngine]:
    engine = start_engine(tmp_path / "engine", engine_env)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def file_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Serves dataset files over HTTP on loopback."""
    root = tmp_path_factory.mktemp("files")
    (root / "numbers.csv").write_text("".join(f"{i}\n" for i in range(1, 101)))
    served = serve_directory(root)
    yield served.url
    served.close()


@pytest.fixture
def data_url(file_server: str) -> str:
    from tests.engine import jobs

    jobs.DATA_URL[0] = f"{file_server}/numbers.csv"
    return jobs.DATA_URL[0]
