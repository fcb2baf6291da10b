"""``ocean-provider serve`` as operators run it: gunicorn master, several threaded workers.

The master checks settings only (an app built before the fork carried its open
SQLite store into every worker), concurrent signed requests on a fresh store
never answer 5xx, and the access log holds no query strings (they carry
signatures).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from eth_account import Account

from ocean_provider import cli
from ocean_provider.auth.messages import job_message
from tests.conftest import PROVIDER_KEY, Consumer

STATUS = "/api/services/compute"
ROUNDS = 5
RACERS = 12
OTHERS = 24


class _NoJobsEngine(BaseHTTPRequestHandler):
    """An engine that knows no jobs: every status call answers ``[]`` at once."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = b"[]"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Served:
    url: str
    log: Path
    home: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("serve")
    engine = ThreadingHTTPServer(("127.0.0.1", 0), _NoJobsEngine)
    threading.Thread(target=engine.serve_forever, daemon=True).start()
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"},
        "HOME": str(root),  # where gunicorn would put its control socket
        "NETWORK_URL": "http://127.0.0.1:8545",
        "PROVIDER_PRIVATE_KEY": PROVIDER_KEY,
        "OPERATOR_SERVICE_URL": f"http://127.0.0.1:{engine.server_address[1]}",
        "STORAGE_PATH": str(root / "fresh" / "nonces.db"),
    }
    log = root / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ocean_provider.cli", "serve", "--workers", "2"]
            + ["--bind", f"127.0.0.1:{port}"],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, log)
        yield Served(url, log, root)
    finally:
        process.terminate()
        process.wait(timeout=30)
        engine.shutdown()
        engine.server_close()


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"ocean-provider serve did not answer:\n{log.read_text()}")


def _signed_status(url: str, consumer: Consumer, nonce: str) -> tuple[int, str]:
    signature = consumer.sign(job_message(consumer.address, None, None), nonce)
    query = urlencode({"consumerAddress": consumer.address, "nonce": nonce, "signature": signature})
    reply = requests.get(f"{url}{STATUS}?{query}", timeout=30)
    return reply.status_code, reply.json().get("code", "") if reply.status_code != 200 else ""


def test_master_checks_settings_without_building_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "nonces.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NETWORK_URL", "http://127.0.0.1:8545")
    monkeypatch.setenv("PROVIDER_PRIVATE_KEY", PROVIDER_KEY)
    monkeypatch.setenv("STORAGE_PATH", str(store))
    started: list[str] = []
    monkeypatch.setattr(cli, "_gunicorn", lambda factory, bind, *rest, **kw: started.append(bind))
    assert cli.main(["serve", "--bind", "127.0.0.1:1"]) == 0
    assert started == ["127.0.0.1:1"]
    assert not store.exists()  # nothing opened the nonce store in the master
    monkeypatch.setenv("PROVIDER_PRIVATE_KEY", "not a key")
    assert cli.main(["serve"]) == 2  # and a bad setting still stops the boot


def test_concurrent_signed_requests_on_a_fresh_store_never_fail(served: Served) -> None:
    racer = Consumer(Account.create().key.hex())
    others = [Consumer(Account.create().key.hex()) for _ in range(OTHERS)]
    with ThreadPoolExecutor(RACERS + OTHERS) as pool:
        for round_ in range(ROUNDS):
            race_nonce = str(round_ + 1)
            futures = [
                pool.submit(_signed_status, served.url, racer, race_nonce) for _ in range(RACERS)
            ] + [pool.submit(_signed_status, served.url, c, str(round_ + 1)) for c in others]
            outcomes = [f.result() for f in futures]
            race, rest = outcomes[:RACERS], outcomes[RACERS:]
            assert sorted(race) == [(200, "")] + [(400, "nonce_too_low")] * (RACERS - 1), race
            assert rest == [(200, "")] * OTHERS


def test_access_log_has_no_query_strings(served: Served) -> None:
    consumer = Consumer(Account.create().key.hex())
    status, _ = _signed_status(served.url, consumer, "1")
    assert status == 200
    time.sleep(0.5)  # gunicorn writes its access line after the reply
    text = served.log.read_text()
    assert f"GET {STATUS} HTTP/1.1" in text
    assert "signature" not in text and consumer.address not in text


def test_no_control_socket_in_home(served: Served) -> None:
    """gunicorn's control socket would sit at one path shared by every server of the user."""
    assert not (served.home / ".gunicorn").exists()
