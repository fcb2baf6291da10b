"""Each provider nonce accepted once within a time window: the engine's replay cache.

Several Provider processes share one key, so their requests reach the engine
out of order; a strictly increasing nonce refuses some of them. Here a nonce is
the signing time in nanoseconds (what ``time.time_ns()`` gives): it must lie
within ``window`` of the engine's clock, and each (provider, nonce) is accepted
once. A pair is remembered until it ages out of the window, after which the
window check alone refuses it.

Memory is bounded: past ``max_entries`` the oldest pair is dropped and the
*floor* rises to its nonce, so nothing at or below a forgotten nonce is accepted
again (a burst costs some fresh requests a re-sign, never a replay).

Not persisted, on purpose: the engine runs one gunicorn worker, so this process
sees every request, and the floor starts at the engine's start time. A request
signed before a restart is therefore refused after it (the Provider re-signs),
which closes the restart replay that an in-memory cache would otherwise open,
without a disk write on every call.
"""

from __future__ import annotations

import heapq
import re
import threading
import time
from collections.abc import Callable

from ocean_provider.errors import NonceNotFresh

WINDOW_SECONDS = 300
MAX_ENTRIES = 200_000
_DIGITS = re.compile(r"[0-9]{1,20}")


class ReplayCache:
    def __init__(
        self,
        window_seconds: float = WINDOW_SECONDS,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._window = int(window_seconds * 1_000_000_000)
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._floor = clock()  # nothing signed before this engine started
        self._seen: set[tuple[str, int]] = set()
        self._by_age: list[tuple[int, str]] = []

    def __len__(self) -> int:
        return len(self._seen)

    def accept(self, provider: str, nonce: str) -> None:
        """Record ``nonce`` for ``provider``; raise ``NonceNotFresh`` if it cannot be used."""
        value = _nanoseconds(nonce)
        now = self._clock()
        if abs(value - now) > self._window:
            raise NonceNotFresh(
                "The nonce must be the signing time in nanoseconds, within "
                f"{self._window // 1_000_000_000} s of the engine's clock."
            )
        with self._lock:
            self._expire(now - self._window)
            if value <= self._floor:
                raise NonceNotFresh("The nonce is older than the engine can check; sign again.")
            key = (provider, value)
            if key in self._seen:
                raise NonceNotFresh("This nonce was already used.")
            while len(self._seen) >= self._max:
                self._floor = max(self._floor, self._drop_oldest())
                if value <= self._floor:
                    raise NonceNotFresh("The nonce is older than the engine can check; sign again.")
            self._seen.add(key)
            heapq.heappush(self._by_age, (value, provider))

    def _expire(self, oldest_allowed: int) -> None:
        while self._by_age and self._by_age[0][0] < oldest_allowed:
            self._drop_oldest()

    def _drop_oldest(self) -> int:
        value, provider = heapq.heappop(self._by_age)
        self._seen.discard((provider, value))
        return value


def _nanoseconds(nonce: str) -> int:
    if not _DIGITS.fullmatch(nonce):
        raise NonceNotFresh("The nonce must be the signing time in nanoseconds (ASCII digits).")
    return int(nonce)
