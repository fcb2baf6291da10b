"""An overall deadline for an HTTP exchange, not only per-read timeouts.

``requests`` times each socket read, so a peer that sends one byte a second
never trips a read timeout. A ``Deadline`` covers the whole exchange; when
the client's ``Watchdog`` fires it, it shuts down the sockets of the connections the exchange is
using, and the blocked read fails at once. Connections register themselves
through ``DeadlineAdapter``'s pool classes when they send a request on a thread
inside ``with Deadline(...)``, and unregister when they go back to the pool, so
a timer never touches a connection another call has taken since.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager

if TYPE_CHECKING:
    from urllib3._base_connection import BaseHTTPConnection

_active = threading.local()


class Deadline:
    """``with Deadline(seconds, watchdog):`` bounds every engine exchange made on this
    thread; ``watchdog`` fires it when the time is up."""

    def __init__(self, seconds: float, watchdog: Watchdog) -> None:
        self.expires = time.monotonic() + seconds
        self.expired = False
        self._lock = threading.Lock()
        self._open = True
        self._connections: set[HTTPConnection] = set()
        self._watchdog = watchdog

    def remaining(self) -> float:
        return max(0.0, self.expires - time.monotonic())

    def __enter__(self) -> Deadline:
        _active.deadline = self
        self._watchdog.watch(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._lock:
            self._open = False
            for connection in self._connections:
                connection._ocean_deadline = None  # type: ignore[attr-defined]
            self._connections.clear()
        _active.deadline = None

    def watch(self, connection: HTTPConnection) -> None:
        with self._lock:
            if not self._open:
                return
            connection._ocean_deadline = self  # type: ignore[attr-defined]
            self._connections.add(connection)
            if self.expired:
                _shut(connection)

    def release(self, connection: HTTPConnection) -> None:
        with self._lock:
            self._connections.discard(connection)
            connection._ocean_deadline = None  # type: ignore[attr-defined]

    def fire(self) -> None:
        with self._lock:
            if not self._open:
                return
            self.expired = True
            for connection in self._connections:
                _shut(connection)

    @property
    def open(self) -> bool:
        return self._open


class Watchdog:
    """One thread that fires the deadlines of one client when they expire (a timer
    thread per call would cost a thread start on every engine call). The thread
    starts with the first deadline, never at construction."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, Deadline]] = []
        self._count = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    def watch(self, deadline: Deadline) -> None:
        with self._cond:
            heapq.heappush(self._queue, (deadline.expires, next(self._count), deadline))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="engine-deadlines", daemon=True
                )
                self._thread.start()
            elif self._queue[0][2] is deadline:
                self._cond.notify()  # it is the new earliest

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                while self._queue and not self._queue[0][2].open:
                    heapq.heappop(self._queue)  # finished in time
                if not self._queue:
                    self._cond.wait()
                    continue
                wait = self._queue[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._queue)[2].fire()


def _shut(connection: HTTPConnection) -> None:
    sock = connection.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _watch(connection: HTTPConnection) -> None:
    deadline: Deadline | None = getattr(_active, "deadline", None)
    if deadline is not None:
        deadline.watch(connection)


def _recheck(connection: HTTPConnection) -> None:
    """The timer may fire while the connection is still connecting (no socket yet)."""
    deadline: Deadline | None = getattr(connection, "_ocean_deadline", None)
    if deadline is not None and deadline.expired:
        _shut(connection)


def _release(connection: BaseHTTPConnection | None) -> None:
    deadline: Deadline | None = getattr(connection, "_ocean_deadline", None)
    if isinstance(connection, HTTPConnection) and deadline is not None:
        deadline.release(connection)


class _WatchedConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self)
        super().request(*args, **kwargs)
        _recheck(self)


class _WatchedHTTPSConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self)
        super().request(*args, **kwargs)
        _recheck(self)


class _WatchedPool(HTTPConnectionPool):
    ConnectionCls = _WatchedConnection

    def _put_conn(self, conn: BaseHTTPConnection | None) -> None:
        _release(conn)
        super()._put_conn(conn)


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection

    def _put_conn(self, conn: BaseHTTPConnection | None) -> None:
        _release(conn)
        super()._put_conn(conn)


def _watched(manager: PoolManager) -> PoolManager:
    manager.pool_classes_by_scheme = {"http": _WatchedPool, "https": _WatchedHTTPSPool}
    return manager


class DeadlineAdapter(HTTPAdapter):
    """A pooled adapter whose connections honour the thread's ``Deadline``."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        _watched(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        manager: PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        return manager if proxy.lower().startswith("socks") else _watched(manager)
