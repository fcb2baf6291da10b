"""Engine fixtures: a real engine (real bubblewrap) on loopback, a file server, a client."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from ocean_provider.config import load_engine_settings
from ocean_provider.engine.app import create_engine_app
from ocean_provider.operator.client import OperatorClient
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


@dataclass
class RunningEngine:
    url: str
    client: OperatorClient
    storage: Path
    server: Any
    thread: threading.Thread
    app: Any

    def close(self) -> None:
        self.app.extensions["ocean_engine"].scheduler.shutdown()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
        self.client.close()


def start_engine(storage: Path, envs: list[dict[str, Any]]) -> RunningEngine:
    import json

    settings = load_engine_settings(
        {
            "ALLOWED_PROVIDERS": json.dumps([PROVIDER_ADDRESS]),
            "ENGINE_ENVIRONMENTS": json.dumps({"environments": envs}),
            "ENGINE_STORAGE": str(storage),
            "ALLOW_PRIVATE_DOWNLOADS": "true",
            "PROVISION_SECONDS": "30",
        },
        config_path=None,
    )
    app = create_engine_app(settings)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    client = OperatorClient(url, PROVIDER_KEY, connect_timeout=2, read_timeout=30, backoff=0)
    return RunningEngine(url, client, storage, server, thread, app)


@pytest.fixture
def engine_env() -> list[dict[str, Any]]:
    return [environment()]


@pytest.fixture
def running_engine(tmp_path: Path, engine_env: list[dict[str, Any]]) -> Iterator[RunningEngine]:
    engine = start_engine(tmp_path / "engine", engine_env)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def file_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Serves dataset files over HTTP on loopback."""
    root = tmp_path_factory.mktemp("files")
    (root / "numbers.csv").write_text("".join(f"{i}\n" for i in range(1, 101)))

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def data_url(file_server: str) -> str:
    from tests.engine import jobs

    jobs.DATA_URL[0] = f"{file_server}/numbers.csv"
    return jobs.DATA_URL[0]
