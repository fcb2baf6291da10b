"""Real server processes for tests: ``ocean-provider serve`` under gunicorn, redis-server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from ocean_provider.devnet.ports import free_port
from tests.conftest import PROVIDER_KEY


@dataclass
class ServedProvider:
    url: str
    port: int
    log: Path  # gunicorn's output: its own lines and the access log
    home: Path  # $HOME of the server processes


@contextmanager
def serve_provider(
    root: Path, settings: Mapping[str, str], *, workers: int
) -> Iterator[ServedProvider]:
    """``ocean-provider serve --workers N`` in ``root`` (no config.ini there: the environment
    is the whole configuration), answering ``GET /`` before it is handed over."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"},
        "HOME": str(root),  # where gunicorn would put a control socket
        "NETWORK_URL": "http://127.0.0.1:8545",
        "PROVIDER_PRIVATE_KEY": PROVIDER_KEY,
        **settings,
    }
    log = root / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ocean_provider.cli", "serve", "--workers", str(workers)]
            + ["--bind", f"127.0.0.1:{port}"],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    served = ServedProvider(f"http://127.0.0.1:{port}", port, log, root)
    try:
        _wait_until_up(served, process)
        yield served
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_until_up(served: ServedProvider, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, served.log.read_text()
        try:
            if requests.get(served.url, timeout=2).status_code == 200:
                return
        except requests.RequestException:  # refused, or slow to answer while busy
            time.sleep(0.1)
    raise AssertionError(f"ocean-provider serve did not answer:\n{served.log.read_text()}")


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A real redis-server on loopback (installed by scripts/setup); its URL, database 0."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise AssertionError("redis-server is not installed: run scripts/setup")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
