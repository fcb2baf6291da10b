"""A real socket engine that trickles its reply: every call ends by its overall deadline."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from ocean_provider.errors import OperatorUnavailable
from ocean_provider.operator.client import OperatorClient
from tests.conftest import PROVIDER_KEY

OWNER = "0xA78deb2Fa79463945C247991075E2a0e98Ba7A09"
BODY = b'[{"jobId": "job1", "owner": "%s", "status": 1}]' % OWNER.encode()
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(
    BODY
)


class TricklingEngine:
    """Answers every connection with ``head`` at once, then ``body`` one byte a second
    (``trickle_head``: the head too)."""

    def __init__(self, *, trickle_head: bool) -> None:
        self.trickle_head = trickle_head
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.closed_early = threading.Event()
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            slow = HEAD + BODY if self.trickle_head else BODY
            if not self.trickle_head:
                conn.sendall(HEAD)
            try:
                for byte in slow:
                    if self._stop.is_set():
                        return
                    conn.sendall(bytes([byte]))
                    time.sleep(1)
            except OSError:
                self.closed_early.set()  # the client hung up: what the deadline should do

    def close(self) -> None:
        self._stop.set()
        self.listener.close()


@pytest.fixture(params=[False, True], ids=["body", "head-and-body"])
def trickling(request: pytest.FixtureRequest) -> Iterator[TricklingEngine]:
    engine = TricklingEngine(trickle_head=request.param)
    yield engine
    engine.close()


def test_a_trickled_reply_ends_at_the_overall_deadline(trickling: TricklingEngine) -> None:
    # each byte arrives within the 2 s read timeout, so only an overall deadline stops it
    client = OperatorClient(trickling.url, PROVIDER_KEY, connect_timeout=1, read_timeout=2)
    started = time.monotonic()
    with pytest.raises(OperatorUnavailable, match="in time") as raised:
        client.status(OWNER, "job1")
    elapsed = time.monotonic() - started
    assert raised.value.status == 503
    assert elapsed < 5, f"held {elapsed:.1f} s past a 3 s deadline"
    assert trickling.closed_early.wait(3)
    client.close()


def test_retries_share_one_deadline(trickling: TricklingEngine) -> None:
    client = OperatorClient(
        trickling.url, PROVIDER_KEY, connect_timeout=1, read_timeout=2, total_timeout=2, retries=5
    )
    started = time.monotonic()
    with pytest.raises(OperatorUnavailable):
        client.status(OWNER, "job1")
    assert time.monotonic() - started < 4
    client.close()


def test_the_pooled_connection_still_works_after_a_deadline() -> None:
    """A deadline that fired never breaks a later call on a reused connection."""
    from ocean_provider.devnet.embedded import serve_app

    def app(environ: dict[str, object], start_response: object) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])  # type: ignore[operator]
        return [BODY]

    served = serve_app(app, "fast")
    client = OperatorClient(
        served.url, PROVIDER_KEY, connect_timeout=1, read_timeout=1, total_timeout=0.5
    )
    try:
        for _ in range(5):
            (job,) = client.status(OWNER, "job1")
            time.sleep(0.6)  # past each call's deadline: its timer must be gone
            assert job.job_id == "job1"
    finally:
        client.close()
        served.close()
