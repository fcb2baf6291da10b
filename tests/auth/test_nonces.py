"""Nonce stores: strictly increasing per checksummed address, atomic under concurrency."""

from __future__ import annotations

import itertools
import os
import sqlite3
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
from ocean_provider.devnet.ports import free_port
from ocean_provider.errors import (
    NonceReused,
    SignatureReused,
    StoreUnavailable,
    ValidationFailed,
)
from tests.live_servers import redis_server

ADDRESS = "0xA78deb2Fa79463945C247991075E2a0e98Ba7A09"
_digests = itertools.count()


def _digest() -> bytes:
    """A fresh message digest (each accepted request signs a new message)."""
    return next(_digests).to_bytes(32, "big")


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on loopback, started for this module (installed by .ci/run)."""
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


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
        ("007", "7"),
        ("5.50", "5.5"),
        ("1000000000000000000000000000.4", "1000000000000000000000000000.4"),
        ("0", "0"),
        ("1795933968466724553", "1795933968466724553"),
    ],
)
def test_parse_nonce_accepts_numbers(value: object, expected: str) -> None:
    assert nonce_text(parse_nonce(value)) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        "abc",
        "-1",
        "+5",
        "NaN",
        "Infinity",
        "",
        " 12 ",
        "1_000",
        "\u0661\u0662\u0663",  # Arabic-Indic digits
        "\uff11\uff12",  # fullwidth digits
        "1e5",
        "1e999999999",
        ".5",
        "5.",
        1e20,  # str() gives an exponent
        "9" * 81,
        [5],
    ],
)
def test_parse_nonce_refuses_the_rest(value: object) -> None:
    with pytest.raises(ValidationFailed):
        parse_nonce(value)


def test_strictly_increasing(make_store: Callable[[], NonceStore]) -> None:
    store = make_store()
    store.consume(ADDRESS, Decimal(5), _digest())
    with pytest.raises(NonceReused):
        store.consume(ADDRESS, Decimal(5), _digest())
    with pytest.raises(NonceReused):
        store.consume(ADDRESS, Decimal(4), _digest())
    store.consume(ADDRESS, Decimal("5.5"), _digest())
    assert store.current(ADDRESS) == Decimal("5.5")


def test_address_case_shares_one_nonce(make_store: Callable[[], NonceStore]) -> None:
    store = make_store()
    store.consume(ADDRESS.lower(), Decimal(10), _digest())
    with pytest.raises(NonceReused):
        store.consume(ADDRESS, Decimal(10), _digest())
    with pytest.raises(NonceReused):
        store.consume(ADDRESS.upper().replace("0X", "0x"), Decimal(9), _digest())


def test_ensure_initial(make_store: Callable[[], NonceStore]) -> None:
    store = make_store()
    assert store.ensure_initial(ADDRESS) == 1
    store.consume(ADDRESS, Decimal(40), _digest())
    assert store.ensure_initial(ADDRESS) == 40


def test_big_time_ns_nonces_keep_precision(make_store: Callable[[], NonceStore]) -> None:
    store = make_store()
    store.consume(ADDRESS, Decimal(1_700_000_000_000_000_001), _digest())
    with pytest.raises(NonceReused):
        store.consume(ADDRESS, Decimal(1_700_000_000_000_000_001), _digest())
    store.consume(ADDRESS, Decimal(1_700_000_000_000_000_002), _digest())


def test_concurrent_same_nonce_exactly_one_wins(make_store: Callable[[], NonceStore]) -> None:
    threads_count = 12
    barrier = threading.Barrier(threads_count, timeout=30)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        barrier.wait()  # open the (new) database together, as workers booting at once do
        store = make_store()  # one store (connection) per thread, as per worker
        try:
            store.consume(ADDRESS, Decimal(99), _digest())
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
                SqliteNonceStore(path).consume(ADDRESS, Decimal(time.time_ns()), _digest())
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


def test_a_message_is_accepted_once_whatever_nonce(make_store: Callable[[], NonceStore]) -> None:
    store = make_store()
    digest = _digest()
    store.consume(ADDRESS, Decimal(5), digest)
    with pytest.raises(SignatureReused):
        store.consume(ADDRESS, Decimal(15), digest)  # the same text read with nonce "1" + "5"
    assert store.current(ADDRESS) == 5
    store.consume(ADDRESS, Decimal(15), _digest())


def test_nonces_beyond_28_digits_are_kept_exactly(make_store: Callable[[], NonceStore]) -> None:
    store = make_store()
    nonce = parse_nonce("1000000000000000000000000000.4")
    store.consume(ADDRESS, nonce, _digest())
    for again in ("1000000000000000000000000000.4", "1000000000000000000000000000.40"):
        with pytest.raises(NonceReused):
            store.consume(ADDRESS, parse_nonce(again), _digest())
    store.consume(ADDRESS, parse_nonce("1000000000000000000000000000.41"), _digest())
    assert store.current(ADDRESS) == Decimal("1000000000000000000000000000.41")


def test_too_long_nonce_says_so() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_nonce("1" * 81)
    assert "too long" in caught.value.errors["nonce"][0]


def test_redis_down_is_store_unavailable(redis_url: str) -> None:
    import redis

    port = free_port()  # nothing listens there: a stopped Redis
    store = RedisNonceStore(redis.Redis.from_url(f"redis://127.0.0.1:{port}/0"))
    for call in (
        lambda: store.consume(ADDRESS, Decimal(5), _digest()),
        lambda: store.current(ADDRESS),
        lambda: store.ensure_initial(ADDRESS),
    ):
        with pytest.raises(StoreUnavailable) as caught:
            call()
        assert caught.value.status == 503
        assert caught.value.code == "nonce_store_unavailable"


def test_sqlite_failure_is_503_and_the_next_call_reconnects(tmp_path: Path) -> None:
    store = SqliteNonceStore(tmp_path / "n.db")
    store.consume(ADDRESS, Decimal(1), _digest())
    # another connection holds the write lock past the busy timeout: a store failure
    blocker = sqlite3.connect(tmp_path / "n.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    store._connection().execute("PRAGMA busy_timeout = 50")
    with pytest.raises(StoreUnavailable):
        store.consume(ADDRESS, Decimal(2), _digest())
    blocker.execute("ROLLBACK")
    blocker.close()
    store.consume(ADDRESS, Decimal(3), _digest())  # a fresh connection, no stuck transaction
    assert store.current(ADDRESS) == 3


def test_a_connection_inherited_through_fork_is_not_reused(tmp_path: Path) -> None:
    store = SqliteNonceStore(tmp_path / "n.db")
    store.consume(ADDRESS, Decimal(1), _digest())
    parent_db = store._connection()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: must open its own connection, leaving the parent's untouched
        try:
            store.consume(ADDRESS, Decimal(2), b"child".ljust(32, b"\0"))
            ok = store._connection() is not parent_db
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    assert store._connection() is parent_db
    store.consume(ADDRESS, Decimal(3), _digest())


@pytest.mark.parametrize(
    ("stored", "given", "accepted"),
    [
        ("9", "10", True),  # more digits: larger, though "10" < "9" as text
        ("10", "9", False),
        ("5.5", "5.45", False),  # fractions compare by value, not by length
        ("5.45", "5.5", True),
        ("5.5", "5.50", False),
        ("5", "5.000001", True),
        ("1700000000000000000001", "1700000000000000000002", True),  # beyond doubles
        ("1700000000000000000002", "1700000000000000000001", False),
    ],
)
def test_nonces_compare_by_exact_value(
    make_store: Callable[[], NonceStore], stored: str, given: str, accepted: bool
) -> None:
    store = make_store()
    store.consume(ADDRESS, parse_nonce(stored), _digest())
    if accepted:
        store.consume(ADDRESS, parse_nonce(given), _digest())
        assert store.current(ADDRESS) == parse_nonce(given)
    else:
        with pytest.raises(NonceReused):
            store.consume(ADDRESS, parse_nonce(given), _digest())
