"""Hostile request bodies against a real gunicorn Provider: refused, and the worker lives.

The Flask test client neither runs eth_account's raised recursion limit on a C stack the
way a worker does nor passes chunked bodies the way gunicorn does, so these run the real
server: one worker, whose pid must be the same after every hostile request.
"""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ocean_provider.devnet.ports import free_port
from tests.api.helpers import COMPUTE, RESULT
from tests.conftest import TX
from tests.live_servers import serve_provider

NONCE = "/api/services/nonce"
ENVS = "/api/services/computeEnvironments"
USER = "0x" + "a" * 40
CAP = 256 * 1024  # above the 200 KB deep bodies, so their depth is what is refused
DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_TEXT = DEEP.decode()
BOOTED = re.compile(r"Booting worker with pid: (\d+)")


@dataclass
class Reply:
    status: int
    body: Any


@dataclass
class LiveProvider:
    port: int
    log: Path
    pid: str = ""
    offset: int = 0

    def send(
        self,
        method: str,
        path: str,
        body: bytes | Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            try:
                conn.request(
                    method, path, body=body, headers=headers or {}, encode_chunked=not _sized(body)
                )
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered (413) and closed before the whole body was sent
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        return Reply(response.status, json.loads(data) if data else None)

    def mark(self) -> None:
        """Start watching: a worker is up and serving, its boot already logged."""
        assert self.send("GET", "/").status == 200
        self.pid = self.worker_pids()[-1]
        self.offset = self.log.stat().st_size

    def worker_pids(self) -> list[str]:
        return BOOTED.findall(self.log.read_text())

    def assert_worker_lived(self) -> None:
        """The worker that was serving at ``mark`` still serves; none exited or booted."""
        assert self.send("GET", f"{NONCE}?userAddress={USER}").status == 200
        since = self.log.read_bytes()[self.offset :].decode()
        assert "Worker (pid:" not in since and "Booting worker" not in since, since
        assert self.worker_pids()[-1] == self.pid


def _sized(body: bytes | Iterable[bytes] | None) -> bool:
    return body is None or isinstance(body, bytes)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveProvider]:
    root = tmp_path_factory.mktemp("live")
    settings = {
        "OPERATOR_SERVICE_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens there
        "STORAGE_PATH": str(root / "nonces.db"),
        "MAX_REQUEST_BYTES": str(CAP),
        "REQUEST_TIMEOUT": "2",
    }
    with serve_provider(root, settings, workers=1) as served:
        yield LiveProvider(served.port, served.log)


@pytest.fixture
def provider(server: LiveProvider) -> LiveProvider:
    server.mark()
    return server


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("method", "path", "status", "field"),
    [
        ("POST", COMPUTE, 400, "body"),
        ("PUT", COMPUTE, 400, "body"),
        ("DELETE", COMPUTE, 400, "body"),
        # GET routes never read the body: their query string alone decides
        ("GET", COMPUTE, 400, "consumerAddress"),
        ("GET", RESULT, 400, "consumerAddress"),
        ("GET", f"{ENVS}?chainId=0", 400, "chainId"),
        ("GET", f"{NONCE}?userAddress={USER}", 200, None),
        ("GET", "/", 200, None),
    ],
)
def test_deep_body_refused_and_worker_lives(
    provider: LiveProvider, method: str, path: str, status: int, field: str | None
) -> None:
    reply = provider.send(method, path, DEEP, JSON)
    assert reply.status == status, reply.body
    if field is not None:
        assert reply.body["code"] == "invalid_request" and field in reply.body["errors"]
    provider.assert_worker_lived()


def _start_body(**fields: Any) -> dict[str, Any]:
    return {
        "consumerAddress": USER,
        "nonce": "1",
        "signature": "0x00",
        "environment": "env",
        "dataset": {"documentId": "did:op:1", "serviceId": "s", "transferTxId": TX},
        "algorithm": {"documentId": "did:op:2", "serviceId": "s", "transferTxId": TX},
        **fields,
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_start_body(output=DEEP_TEXT), "output"),
        (_start_body(algocustomdata=DEEP_TEXT), "algocustomdata"),
        (
            _start_body(
                dataset={
                    "documentId": "did:op:1",
                    "serviceId": "s",
                    "transferTxId": TX,
                    "userdata": DEEP_TEXT,
                }
            ),
            "dataset.userdata",
        ),
        (
            _start_body(
                algorithm={
                    "documentId": "did:op:2",
                    "serviceId": "s",
                    "transferTxId": TX,
                    "algocustomdata": DEEP_TEXT,
                }
            ),
            "algorithm.algocustomdata",
        ),
    ],
)
def test_deep_json_inside_a_string_field_refused(
    provider: LiveProvider, body: dict[str, Any], field: str
) -> None:
    reply = provider.send("POST", COMPUTE, json.dumps(body).encode(), JSON)
    assert reply.status == 400, reply.body
    assert reply.body["code"] == "invalid_request"
    assert list(reply.body["errors"]) == [field]
    assert "nested at most 64 levels" in reply.body["errors"][field][0]
    provider.assert_worker_lived()


def _chunks(size: int) -> list[bytes]:
    """A JSON object of exactly ``size`` bytes, in 8000-byte chunks."""
    head, tail = b'{"pad": "', b'"}'
    text = head + b"x" * (size - len(head) - len(tail)) + tail
    return [text[i : i + 8000] for i in range(0, size, 8000)]


@pytest.mark.parametrize(
    ("size", "status", "code"),
    [
        (CAP - 1, 400, "invalid_request"),  # read whole: the fields are what is missing
        (CAP, 400, "invalid_request"),
        (CAP + 1, 413, "payload_too_large"),
        (CAP * 3, 413, "payload_too_large"),
    ],
)
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_chunked_body_over_the_cap_is_413(
    provider: LiveProvider, method: str, size: int, status: int, code: str
) -> None:
    reply = provider.send(method, COMPUTE, _chunks(size), JSON)
    assert (reply.status, reply.body["code"]) == (status, code)
    if status == 400:
        assert "consumerAddress" in reply.body["errors"]
    provider.assert_worker_lived()


def test_sized_body_over_the_cap_is_413(provider: LiveProvider) -> None:
    reply = provider.send("POST", COMPUTE, b"".join(_chunks(CAP + 1)), JSON)
    assert (reply.status, reply.body["code"]) == (413, "payload_too_large")


@pytest.mark.parametrize(
    "body", [b"hello", b"[1]", b"{}", b'{"userAddress": "0x1"}', b"x" * (CAP + 1)]
)
def test_get_ignores_its_body(provider: LiveProvider, body: bytes) -> None:
    reply = provider.send("GET", f"{NONCE}?userAddress={USER}", body, JSON)
    assert (reply.status, reply.body) == (200, {"nonce": "1"})
