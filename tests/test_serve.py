"""``ocean-provider serve`` as operators run it: gunicorn master, several threaded workers.

The master checks settings only (an app built before the fork carried its open
SQLite store into every worker), concurrent signed requests on a fresh store
never answer 5xx, and the access log holds no query strings (they carry
signatures).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from eth_account import Account

from ocean_provider import cli
from ocean_provider.auth.messages import job_message
from ocean_provider.devnet.stub_engine import json_stub
from tests.conftest import PROVIDER_KEY, Consumer
from tests.live_servers import ServedProvider, serve_provider

STATUS = "/api/services/compute"
ROUNDS = 5
RACERS = 12
OTHERS = 24


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedProvider]:
    root = tmp_path_factory.mktemp("serve")
    engine = json_stub(lambda path: [])  # an engine that knows no jobs
    threading.Thread(target=engine.serve_forever, daemon=True).start()
    settings = {
        "OPERATOR_SERVICE_URL": f"http://127.0.0.1:{engine.server_address[1]}",
        "STORAGE_PATH": str(root / "fresh" / "nonces.db"),
    }
    try:
        with serve_provider(root, settings, workers=2) as served:
            yield served
    finally:
        engine.shutdown()
        engine.server_close()


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


def test_concurrent_signed_requests_on_a_fresh_store_never_fail(served: ServedProvider) -> None:
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


def test_access_log_has_no_query_strings(served: ServedProvider) -> None:
    consumer = Consumer(Account.create().key.hex())
    status, _ = _signed_status(served.url, consumer, "1")
    assert status == 200
    time.sleep(0.5)  # gunicorn writes its access line after the reply
    text = served.log.read_text()
    assert f"GET {STATUS} HTTP/1.1" in text
    assert "signature" not in text and consumer.address not in text


def test_no_control_socket_in_home(served: ServedProvider) -> None:
    """gunicorn's control socket would sit at one path shared by every server of the user."""
    assert not (served.home / ".gunicorn").exists()
