"""The engine's replay cache: each provider nonce once, within a window of the engine's clock."""

from __future__ import annotations

import threading

import pytest

from ocean_provider.engine.replay import ReplayCache
from ocean_provider.errors import NonceNotFresh

SECOND = 1_000_000_000
START = 1_800_000_000 * SECOND
A, B = "0xA", "0xB"


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(clock: Clock) -> ReplayCache:
    clock.now += 1  # the engine started a moment ago
    return ReplayCache(window_seconds=60, max_entries=1000, clock=clock)


def test_each_nonce_once_per_provider_in_any_order(cache: ReplayCache) -> None:
    nonces = [START + k * 1000 for k in (5, 2, 9, 3)]  # out of order: all accepted
    for nonce in nonces:
        cache.accept(A, str(nonce))
    cache.accept(B, str(nonces[0]))  # another provider's nonce space
    for nonce in nonces:
        with pytest.raises(NonceNotFresh) as raised:
            cache.accept(A, str(nonce))
        assert raised.value.code == "nonce_not_fresh" and raised.value.status == 400


@pytest.mark.parametrize(
    ("offset", "ok"),
    [(-61, False), (-59, True), (59, True), (61, False), (-(10**6), False), (10**6, False)],
)
def test_nonce_must_lie_within_the_window(
    cache: ReplayCache, clock: Clock, offset: int, ok: bool
) -> None:
    clock.now += 100 * SECOND
    nonce = str(clock.now + offset * SECOND)
    if ok:
        cache.accept(A, nonce)
    else:
        assert "within 60 s" in _refusal(cache, A, nonce)


@pytest.mark.parametrize("nonce", ["", "1.5", "-5", "+5", "1e18", "١٢٣", "1" * 21, " 1"])
def test_only_ascii_nanoseconds(cache: ReplayCache, nonce: str) -> None:
    with pytest.raises(NonceNotFresh):
        cache.accept(A, nonce)


def test_nothing_signed_before_the_engine_started(cache: ReplayCache) -> None:
    """A restart forgets the cache; the start-time floor keeps old captures out."""
    assert "older" in _refusal(cache, A, str(START - SECOND))


def test_entries_age_out_of_the_window(cache: ReplayCache, clock: Clock) -> None:
    for k in range(100):
        cache.accept(A, str(START + 10 + k))
    assert len(cache) == 100
    clock.now += 61 * SECOND
    cache.accept(A, str(clock.now))
    assert len(cache) == 1  # the hundred aged out ...
    with pytest.raises(NonceNotFresh):  # ... and the window alone refuses them
        cache.accept(A, str(START + 10))


def test_memory_is_bounded_without_opening_a_replay(clock: Clock) -> None:
    clock.now += 1
    cache = ReplayCache(window_seconds=60, max_entries=10, clock=clock)
    nonces = [str(START + 100 + k) for k in range(50)]
    for nonce in nonces:
        cache.accept(A, nonce)
        assert len(cache) <= 10
    for nonce in nonces:  # forgotten ones sit below the floor: still refused
        with pytest.raises(NonceNotFresh):
            cache.accept(A, nonce)
    assert "older" in _refusal(cache, B, str(START + 120))  # below the floor, never seen
    cache.accept(B, str(START + 1000))


def test_concurrent_duplicates_win_once(cache: ReplayCache) -> None:
    wins: list[int] = []
    barrier = threading.Barrier(16)

    def attempt() -> None:
        barrier.wait()
        try:
            cache.accept(A, str(START + 5))
            wins.append(1)
        except NonceNotFresh:
            pass

    threads = [threading.Thread(target=attempt) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1


def _refusal(cache: ReplayCache, provider: str, nonce: str) -> str:
    with pytest.raises(NonceNotFresh) as raised:
        cache.accept(provider, nonce)
    return raised.value.errors["nonce"][0]
