"""Order ledger: each order starts at most one job, on SQLite and on a real Redis."""

from __future__ import annotations

import multiprocessing
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from threading import Barrier

import pytest

from ocean_provider.auth.nonces import SqliteNonceStore
from ocean_provider.auth.order_ledger import OrderLedger, RedisOrderLedger, SqliteOrderLedger
from ocean_provider.devnet.ports import free_port
from ocean_provider.errors import StoreUnavailable
from tests.auth import test_nonces

redis_url = test_nonces.redis_url  # the same module-scoped redis-server fixture

CHAIN_ID = 8996
OWNER = "0xA78deb2Fa79463945C247991075E2a0e98Ba7A09"
TX_A = "0x" + "a1" * 32
TX_B = "0x" + "b2" * 32
TX_C = "0x" + "c3" * 32
JOB_ID = "0f3e2d1c4b5a69788796a5b4c3d2e1f0"


@dataclass(frozen=True)
class Backend:
    """Where a ledger lives; picklable, so other processes open their own ledger on it."""

    kind: str  # "sqlite" or "redis"
    where: str  # the database file or the Redis URL

    @contextmanager
    def ledger(self) -> Iterator[OrderLedger]:
        """A new ledger object (a worker, or the Provider after a restart)."""
        if self.kind == "sqlite":
            yield SqliteOrderLedger(Path(self.where))
            return
        import redis

        with redis.Redis.from_url(self.where) as client:
            yield RedisOrderLedger(client)

    def stored(self, chain_id: int, tx_id: str) -> dict[str, str] | None:
        """What the ledger keeps for an order, read around it (what an operator sees)."""
        if self.kind == "sqlite":
            with sqlite3.connect(self.where) as db:
                row = db.execute(
                    "SELECT owner, job_id, claimed_at FROM used_order "
                    "WHERE chain_id = ? AND tx_id = ?",
                    (chain_id, tx_id),
                ).fetchone()
            db.close()
            if row is None:
                return None
            fields = dict(zip(("owner", "job_id", "claimed_at"), row, strict=True))
            return {name: str(value) for name, value in fields.items() if value is not None}
        import redis

        with redis.Redis.from_url(self.where, decode_responses=True) as client:
            found: dict[str, str] = client.hgetall(f"ocean_provider:order:{chain_id}:{tx_id}")
        return found or None


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", str(tmp_path / "n.db"))
    import redis

    url: str = request.getfixturevalue("redis_url")
    with redis.Redis.from_url(url) as client:
        client.flushdb()
    return Backend("redis", url)


def test_a_claimed_order_is_reported_used(backend: Backend) -> None:
    with backend.ledger() as ledger:
        assert ledger.claim(CHAIN_ID, [TX_A], OWNER) == []
        assert ledger.claim(CHAIN_ID, [TX_A], OWNER) == [TX_A]
        assert ledger.claim(CHAIN_ID, [TX_A], "0x" + "1" * 40) == [TX_A]  # whoever asks


def test_a_claim_records_all_or_none(backend: Backend) -> None:
    with backend.ledger() as ledger:
        assert ledger.claim(CHAIN_ID, [TX_A], OWNER) == []
        assert ledger.claim(CHAIN_ID, [TX_A, TX_B], OWNER) == [TX_A]
        assert backend.stored(CHAIN_ID, TX_B) is None
        assert ledger.claim(CHAIN_ID, [TX_B], OWNER) == []


def test_every_used_order_of_a_claim_is_reported(backend: Backend) -> None:
    with backend.ledger() as ledger:
        assert ledger.claim(CHAIN_ID, [TX_A, TX_B], OWNER) == []
        assert ledger.claim(CHAIN_ID, [TX_B, TX_C, TX_A], OWNER) == [TX_B, TX_A]
        assert ledger.claim(CHAIN_ID, [TX_C], OWNER) == []


def test_release_frees_the_orders(backend: Backend) -> None:
    with backend.ledger() as ledger:
        assert ledger.claim(CHAIN_ID, [TX_A, TX_B], OWNER) == []
        ledger.release(CHAIN_ID, [TX_A, TX_B])
        assert backend.stored(CHAIN_ID, TX_A) is None
        assert ledger.claim(CHAIN_ID, [TX_A, TX_B], OWNER) == []


def test_an_order_whose_job_started_stays_used(backend: Backend) -> None:
    with backend.ledger() as ledger:
        ledger.claim(CHAIN_ID, [TX_A], OWNER)
        ledger.attach(CHAIN_ID, [TX_A], JOB_ID)
        ledger.release(CHAIN_ID, [TX_A])  # too late: the job runs
        assert ledger.claim(CHAIN_ID, [TX_A], OWNER) == [TX_A]
    stored = backend.stored(CHAIN_ID, TX_A)
    assert stored is not None
    assert (stored["owner"], stored["job_id"]) == (OWNER, JOB_ID)
    assert int(stored["claimed_at"]) > 1_700_000_000


def test_attach_leaves_unclaimed_orders_free(backend: Backend) -> None:
    with backend.ledger() as ledger:
        ledger.attach(CHAIN_ID, [TX_A], JOB_ID)
        assert backend.stored(CHAIN_ID, TX_A) is None
        assert ledger.claim(CHAIN_ID, [TX_A], OWNER) == []


def test_tx_ids_compare_case_insensitively(backend: Backend) -> None:
    shouted = "0x" + TX_A[2:].upper()
    with backend.ledger() as ledger:
        assert ledger.claim(CHAIN_ID, [shouted], OWNER) == []
        assert ledger.claim(CHAIN_ID, [TX_A], OWNER) == [TX_A]  # reported lowercased
        assert ledger.claim(CHAIN_ID, [shouted], OWNER) == [TX_A]
        ledger.release(CHAIN_ID, [TX_A])
        assert ledger.claim(CHAIN_ID, [shouted], OWNER) == []


def test_a_tx_id_twice_in_one_claim_counts_once(backend: Backend) -> None:
    with backend.ledger() as ledger:
        assert ledger.claim(CHAIN_ID, [TX_A, "0X" + TX_A[2:].upper(), TX_A], OWNER) == []
        assert ledger.claim(CHAIN_ID, [TX_A, TX_A], OWNER) == [TX_A]


def test_the_chain_id_separates_orders(backend: Backend) -> None:
    with backend.ledger() as ledger:
        assert ledger.claim(1, [TX_A], OWNER) == []
        assert ledger.claim(CHAIN_ID, [TX_A], OWNER) == []
        ledger.release(1, [TX_A])
        assert ledger.claim(CHAIN_ID, [TX_A], OWNER) == [TX_A]


def test_an_empty_claim_records_nothing(backend: Backend) -> None:
    with backend.ledger() as ledger:
        assert ledger.claim(CHAIN_ID, [], OWNER) == []
        ledger.release(CHAIN_ID, [])
        ledger.attach(CHAIN_ID, [], JOB_ID)


def test_used_orders_survive_a_restart(backend: Backend) -> None:
    with backend.ledger() as before:
        assert before.claim(CHAIN_ID, [TX_A], OWNER) == []
    with backend.ledger() as after:
        assert after.claim(CHAIN_ID, [TX_A, TX_B], OWNER) == [TX_A]
        after.attach(CHAIN_ID, [TX_A], JOB_ID)
    stored = backend.stored(CHAIN_ID, TX_A)
    assert stored is not None and stored["job_id"] == JOB_ID


@pytest.mark.parametrize(
    "tx_id",
    [
        "a1" * 32,  # no 0x
        "0x" + "a1" * 31,  # 62 digits
        "0x" + "a1" * 33,  # 66 digits
        "0x" + "g1" * 32,
        " " + TX_A,
        TX_A + "\n",
        "0x" + "\uff11" * 64,  # fullwidth digits
        "",
    ],
)
def test_what_is_not_a_transaction_hash_is_refused(backend: Backend, tx_id: str) -> None:
    with backend.ledger() as ledger:
        for call in (
            lambda: ledger.claim(CHAIN_ID, [TX_B, tx_id], OWNER),
            lambda: ledger.release(CHAIN_ID, [tx_id]),
            lambda: ledger.attach(CHAIN_ID, [tx_id], JOB_ID),
        ):
            with pytest.raises(ValueError, match="not a transaction hash"):
                call()
        assert ledger.claim(CHAIN_ID, [TX_B], OWNER) == []  # the refused claim took nothing


PROCESSES, ROUNDS = 8, 40


def _shared_tx(round_: int) -> str:
    return f"0x{round_:064x}"


def _own_tx(process: int, round_: int) -> str:
    return f"0x{process + 1:032x}{round_:032x}"


def _claim_in_rounds(backend: Backend, start: Barrier, process: int) -> None:
    """Claim each round's shared order with an order of this process's own, the rounds
    started together; exit with 100 + the rounds won (a failure exits with 1)."""
    won = 0
    with backend.ledger() as ledger:
        for round_ in range(ROUNDS):
            start.wait()
            tx_ids = [_shared_tx(round_), _own_tx(process, round_)]
            used = ledger.claim(CHAIN_ID, tx_ids, f"process {process}")
            assert used in ([], tx_ids[:1])
            won += not used
    sys.exit(100 + won)


def test_of_processes_claiming_one_order_together_exactly_one_wins(backend: Backend) -> None:
    context = multiprocessing.get_context("spawn")  # each a fresh interpreter, as workers are
    start = context.Barrier(PROCESSES, timeout=60)
    processes = [
        context.Process(target=_claim_in_rounds, args=(backend, start, k)) for k in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    codes = [process.exitcode for process in processes]
    for process in processes:
        process.close()
    assert all(code is not None and code >= 100 for code in codes), codes
    assert sum(code - 100 for code in codes if code is not None) == ROUNDS
    for round_ in range(ROUNDS):  # one winner a round, whose own order alone was recorded
        winners = [k for k in range(PROCESSES) if backend.stored(CHAIN_ID, _own_tx(k, round_))]
        assert len(winners) == 1, (round_, winners)
        shared = backend.stored(CHAIN_ID, _shared_tx(round_))
        assert shared is not None and shared["owner"] == f"process {winners[0]}"


def test_nonces_and_orders_share_one_database_file(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    nonces = SqliteNonceStore(path)
    ledger = SqliteOrderLedger(path)
    nonces.consume(OWNER, Decimal(5), b"\x01" * 32)
    assert ledger.claim(CHAIN_ID, [TX_A], OWNER) == []
    assert SqliteOrderLedger(path).claim(CHAIN_ID, [TX_A], OWNER) == [TX_A]
    assert SqliteNonceStore(path).current(OWNER) == 5


def test_redis_down_is_store_unavailable() -> None:
    import redis

    port = free_port()  # nothing listens there: a stopped Redis
    with redis.Redis.from_url(f"redis://127.0.0.1:{port}/0") as client:
        ledger = RedisOrderLedger(client)
        for call in (
            lambda: ledger.claim(CHAIN_ID, [TX_A], OWNER),
            lambda: ledger.release(CHAIN_ID, [TX_A]),
            lambda: ledger.attach(CHAIN_ID, [TX_A], JOB_ID),
        ):
            with pytest.raises(StoreUnavailable) as caught:
                call()
            assert caught.value.status == 503
            assert "order ledger" in caught.value.message


def test_sqlite_failure_is_503_and_the_next_call_reconnects(tmp_path: Path) -> None:
    ledger = SqliteOrderLedger(tmp_path / "n.db")
    ledger.claim(CHAIN_ID, [TX_A], OWNER)
    # another connection holds the write lock past the busy timeout: a store failure
    blocker = sqlite3.connect(tmp_path / "n.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        for call in (
            lambda: ledger.claim(CHAIN_ID, [TX_B], OWNER),
            lambda: ledger.release(CHAIN_ID, [TX_A]),
            lambda: ledger.attach(CHAIN_ID, [TX_A], JOB_ID),
        ):
            ledger._db.connection().execute("PRAGMA busy_timeout = 50")
            with pytest.raises(StoreUnavailable) as caught:
                call()
            assert caught.value.status == 503
            assert "order ledger" in caught.value.message
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert ledger.claim(CHAIN_ID, [TX_A, TX_B], OWNER) == [TX_A]  # a fresh connection
    assert ledger.claim(CHAIN_ID, [TX_B], OWNER) == []
