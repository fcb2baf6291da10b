"""Nonce stores: strictly increasing per checksummed address, atomic under concurrency."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from ocean_provider.auth.nonces import (
    NonceStore,
    RedisNonceStore,
    SqliteNonceStore,
    nonce_text,
    parse_nonce,
)
from ocean_provider.errors import NonceReused, ValidationFailed

ADDRESS = "0xA78deb2Fa79463945C247991075E2a0e98Ba7A09"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on loopback, started for this module (installed by .ci/run)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run .ci/run or apt-get install redis-server")
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(params=["sqlite", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], NonceStore]:
    if request.param == "sqlite":
        return lambda: SqliteNonceStore(tmp_path / "n.db")
    import redis

    url = request.getfixturevalue("redis_url")
    client = redis.Redis.from_url(url)
    client.flushdb()
    return lambda: RedisNonceStore(redis.Redis.from_url(url))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, "5"),
        ("7", "7"),
        ("1644315615.24195", "1644315615.24195"),
        (" 12 ", "12"),
        ("0", "0"),
        ("1795933968466724553", "1795933968466724553"),
    ],
)
def test_parse_nonce_accepts_numbers(value: object, expected: str) -> None:
    assert nonce_text(parse_nonce(value)) == expected


@pytest.mark.parametrize(
    "value",
    [None, True, "abc", "-1", "NaN", "Infinity", "", "1e5000", "1e999999999", "1e-999", "9" * 81],
)
def test_parse_nonce_refuses_the_rest(value: object) -> None:
    with pytest.raises(ValidationFailed):
        parse_nonce(value)


def test_strictly_increasing(make_store: Callable[[], NonceStore]) -> None:
    store = make_store()
    store.consume(ADDRESS, Decimal(5))
    with pytest.raises(NonceReused):
        store.consume(ADDRESS, Decimal(5))
    with pytest.raises(NonceReused):
        store.consume(ADDRESS, Decimal(4))
    store.consume(ADDRESS, Decimal("5.5"))
    assert store.current(ADDRESS) == Decimal("5.5")


def test_address_case_shares_one_nonce(make_store: Callable[[], NonceStore]) -> None:
    store = make_store()
    store.consume(ADDRESS.lower(), Decimal(10))
    with pytest.raises(NonceReused):
        store.consume(ADDRESS, Decimal(10))
    with pytest.raises(NonceReused):
        store.consume(ADDRESS.upper().replace("0X", "0x"), Decimal(9))


def test_ensure_initial(make_store: Callable[[], NonceStore]) -> None:
    store = make_store()
    assert store.ensure_initial(ADDRESS) == 1
    store.consume(ADDRESS, Decimal(40))
    assert store.ensure_initial(ADDRESS) == 40


def test_big_time_ns_nonces_keep_precision(make_store: Callable[[], NonceStore]) -> None:
    store = make_store()
    store.consume(ADDRESS, Decimal(1_700_000_000_000_000_001))
    with pytest.raises(NonceReused):
        store.consume(ADDRESS, Decimal(1_700_000_000_000_000_001))
    store.consume(ADDRESS, Decimal(1_700_000_000_000_000_002))


def test_concurrent_same_nonce_exactly_one_wins(make_store: Callable[[], NonceStore]) -> None:
    threads_count = 12
    barrier = threading.Barrier(threads_count, timeout=30)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        barrier.wait()  # open the (new) database together, as workers booting at once do
        store = make_store()  # one store (connection) per thread, as per worker
        try:
            store.consume(ADDRESS, Decimal(99))
            result = "won"
        except NonceReused:
            result = "lost"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["lost"] * (threads_count - 1) + ["won"]


def test_many_workers_opening_a_new_database_at_once(tmp_path: Path) -> None:
    """Switching a new database to WAL does not wait on busy peers: it must be retried."""
    failures: list[BaseException] = []
    for trial in range(40):
        path = tmp_path / f"n{trial}.db"
        barrier = threading.Barrier(12, timeout=30)

        def open_store(path: Path = path, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                SqliteNonceStore(path).consume(ADDRESS, Decimal(time.time_ns()))
            except NonceReused:
                pass
            except Exception as exc:  # what a worker failing to boot would see
                failures.append(exc)

        threads = [threading.Thread(target=open_store) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert failures == []
