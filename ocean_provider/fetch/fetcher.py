"""SSRF-safe download of Ocean "url" file objects: to local disk, or hashed on the fly.

Every hop (including redirects) resolves the hostname once, rejects
non-public addresses, and connects to the vetted IP directly, so DNS
rebinding between the check and the connection is impossible. For HTTPS
the TLS handshake still uses (and verifies) the original hostname.

Error reasons never include the URL, its query string, header values or
credentials; log lines name a host only at DEBUG (a decrypted file URL, even
its host, is the publisher's secret).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeAlias

import certifi
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, Timeout
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    LocationValueError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.response import BaseHTTPResponse

from ocean_provider.fetch.request import (
    REDIRECT_CODES,
    FetchError,
    FetchRequest,
    FetchStatus,
    FetchTooLarge,
    Target,
    build_request,
    follow_redirect,
)

logger = logging.getLogger(__name__)

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

CHUNK_SIZE = 64 * 1024


@dataclass(frozen=True)
class FetchPolicy:
    """Limits applied to every download.

    ``allow_private`` permits loopback/private/link-local targets (dev and
    tests only). ``total_timeout`` optionally bounds a whole fetch
    (checked between hops and chunks). ``ca_certs`` overrides the CA bundle
    (defaults to certifi's).
    """

    allow_private: bool = False
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_bytes: int = 1 << 30
    max_redirects: int = 5
    total_timeout: float | None = None
    ca_certs: str | None = None

    def __post_init__(self) -> None:
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if self.total_timeout is not None and self.total_timeout <= 0:
            raise ValueError("total_timeout must be positive")
        if self.max_bytes < 0 or self.max_redirects < 0:
            raise ValueError("max_bytes and max_redirects must be >= 0")


def is_public_address(ip: IPAddress) -> bool:
    """Return True only for globally routable unicast addresses.

    IPv4-mapped and 6to4 IPv6 addresses are judged by the embedded IPv4.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None and not is_public_address(embedded):
            return False
        if ip.ipv4_mapped is not None:
            return True
        if ip.is_site_local:
            return False
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Resolve ``host`` to its unique TCP addresses, in resolver order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for family, _, _, _, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ipaddress.ip_address(str(sockaddr[0]))
        if address not in addresses:
            addresses.append(address)
    return addresses


def vet_host(host: str, port: int, allow_private: bool) -> list[IPAddress]:
    """Resolve ``host`` and fail closed unless every address is allowed."""
    try:
        addresses = resolve_host(host, port)
    except (OSError, UnicodeError, ValueError):
        raise FetchError("could not resolve host") from None
    if not addresses:
        raise FetchError("could not resolve host")
    if not allow_private and not all(map(is_public_address, addresses)):
        logger.warning("refusing a non-public destination address")
        raise FetchError("destination address not allowed")
    return addresses


class SafeFetcher:
    """Downloads file objects under a :class:`FetchPolicy`. Thread-safe."""

    def __init__(self, policy: FetchPolicy) -> None:
        self.policy = policy
        self._ca_certs = policy.ca_certs or certifi.where()
        self._closed = False

    def __enter__(self) -> SafeFetcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Refuse further fetches. Idempotent."""
        self._closed = True

    def fetch_to(
        self,
        file_object: Mapping[str, Any],
        dest: Path,
        cancel: threading.Event | None = None,
        max_bytes: int | None = None,
    ) -> int:
        """Download into ``dest`` (created/overwritten); return bytes written.

        Streams in 64 KiB chunks through a temp file next to ``dest`` that is
        renamed on success, so a failed fetch leaves nothing behind. Setting
        ``cancel`` ends it between reads; ``max_bytes`` lowers the policy's cap.
        Raises :class:`FetchError`.
        """
        target = Path(dest)
        return self._fetch(
            file_object, cancel, max_bytes, lambda body: _write_atomically(body, target)
        )

    def sha256(
        self,
        file_object: Mapping[str, Any],
        cancel: threading.Event | None = None,
        max_bytes: int | None = None,
    ) -> str:
        """The lowercase sha256 hex digest of the body, hashed as it arrives (nothing is
        stored), under the same limits as :meth:`fetch_to`. Raises :class:`FetchError`."""
        digest = hashlib.sha256()
        self._fetch(file_object, cancel, max_bytes, lambda body: _feed(body, digest.update))
        return digest.hexdigest()

    def open(self, file_object: Mapping[str, Any], max_bytes: int | None = None) -> OpenedFile:
        """The final 2xx reply (redirects followed), open: its status and headers now, its
        body through ``chunks()`` under the same limits as :meth:`fetch_to`. The caller
        closes it (``chunks()`` does when it ends). Raises :class:`FetchError`
        (:class:`FetchStatus` for a final reply that is not 2xx)."""
        if self._closed:
            raise RuntimeError("SafeFetcher is closed")
        request = build_request(file_object)
        budget = _Budget(self.policy.total_timeout, None)
        cap = self.policy.max_bytes if max_bytes is None else min(max_bytes, self.policy.max_bytes)
        stack = ExitStack()
        try:
            response = stack.enter_context(self._open_final(request, budget))
            _check_content_length(response, cap)
        except HTTPError as exc:
            stack.close()
            raise _map_transport_error(exc) from None
        except BaseException:
            stack.close()
            raise
        headers = {name.lower(): value for name, value in response.headers.items()}
        return OpenedFile(response.status, headers, _capped_chunks(response, cap, budget), stack)

    def _fetch(
        self,
        file_object: Mapping[str, Any],
        cancel: threading.Event | None,
        max_bytes: int | None,
        consume: Callable[[Iterator[bytes]], int],
    ) -> int:
        """Open the file object's final response and hand its capped chunks to ``consume``."""
        if self._closed:
            raise RuntimeError("SafeFetcher is closed")
        request = build_request(file_object)
        budget = _Budget(self.policy.total_timeout, cancel)
        cap = self.policy.max_bytes if max_bytes is None else min(max_bytes, self.policy.max_bytes)
        try:
            with self._open_final(request, budget) as response:
                _check_content_length(response, cap)
                count = consume(_capped_chunks(response, cap, budget))
        except HTTPError as exc:
            raise _map_transport_error(exc) from None
        logger.debug("fetched %d bytes from %s", count, request.target.origin)
        return count

    @contextmanager
    def _open_final(self, request: FetchRequest, budget: _Budget) -> Iterator[BaseHTTPResponse]:
        """Follow redirects; yield the final 2xx response, then clean up."""
        redirects = 0
        while True:
            budget.check()
            pool, response = self._send(request)
            location = response.headers.get("Location")
            if response.status not in REDIRECT_CODES or not location:
                break
            response.close()
            pool.close()
            if redirects >= self.policy.max_redirects:
                raise FetchError("too many redirects")
            redirects += 1
            request = follow_redirect(request, response.status, location)
        try:
            if not 200 <= response.status < 300:
                raise FetchStatus(response.status)
            yield response
        finally:
            response.close()
            pool.close()

    def _send(self, request: FetchRequest) -> tuple[HTTPConnectionPool, BaseHTTPResponse]:
        """Send one hop, trying each vetted address until one connects."""
        target = request.target
        addresses = vet_host(target.host, target.port, self.policy.allow_private)
        headers = {**request.headers, "Host": target.host_header}
        last_error: HTTPError | None = None
        for address in addresses:
            pool = self._make_pool(target, address)
            try:
                response = pool.urlopen(
                    request.method,
                    target.request_target,
                    body=request.body,
                    headers=headers,
                    retries=False,
                    redirect=False,
                    assert_same_host=False,
                    preload_content=False,
                    decode_content=True,
                )
            except ConnectTimeoutError as exc:  # includes NewConnectionError
                pool.close()
                last_error = exc
                continue
            except BaseException:
                pool.close()
                raise
            return pool, response
        logger.debug("could not connect to %s", target.origin)
        if last_error is None:  # unreachable: vet_host never returns []
            raise FetchError("could not resolve host")
        raise _map_transport_error(last_error) from None

    def _make_pool(self, target: Target, address: IPAddress) -> HTTPConnectionPool:
        """A single-connection pool pinned to ``address``."""
        timeout = Timeout(connect=self.policy.connect_timeout, read=self.policy.read_timeout)
        if target.scheme == "https":
            return HTTPSConnectionPool(
                str(address),
                target.port,
                timeout=timeout,
                maxsize=1,
                retries=False,
                cert_reqs="CERT_REQUIRED",
                ca_certs=self._ca_certs,
                assert_hostname=target.host,
                server_hostname=target.host,
            )
        return HTTPConnectionPool(
            str(address), target.port, timeout=timeout, maxsize=1, retries=False
        )


class OpenedFile:
    """An open 2xx reply from :meth:`SafeFetcher.open`; ``headers`` have lower-case names."""

    def __init__(
        self, status: int, headers: Mapping[str, str], body: Iterator[bytes], stack: ExitStack
    ) -> None:
        self.status = status
        self.headers = headers
        self._body = body
        self._stack = stack

    def chunks(self) -> Iterator[bytes]:
        """The body as it arrives, once; closes the reply at its end or on an error."""
        try:
            yield from self._body
        except HTTPError as exc:
            raise _map_transport_error(exc) from None
        finally:
            self.close()

    def close(self) -> None:
        """Release the connection. Idempotent."""
        self._stack.close()


def _write_atomically(body: Iterator[bytes], dest: Path) -> int:
    """Stream ``body`` into a temp file beside ``dest``, then rename it.

    The temp file is removed on any failure; local I/O errors become FetchError.
    """
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        tmp_path = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                written = _feed(body, out.write)
            os.chmod(tmp_path, 0o644)
            os.replace(tmp_path, dest)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise
    except OSError as exc:
        logger.error("could not write into %s: %s", dest.parent, exc.strerror)
        raise FetchError("could not write destination file") from None
    return written


def _capped_chunks(response: BaseHTTPResponse, max_bytes: int, budget: _Budget) -> Iterator[bytes]:
    """The body as it arrives, failing once more than ``max_bytes`` arrive.

    ``read1`` returns what one read brings (at most CHUNK_SIZE), so a server
    that trickles bytes still meets the budget check between reads.
    """
    read = 0
    while chunk := response.read1(CHUNK_SIZE, decode_content=True):
        read += len(chunk)
        if read > max_bytes:
            raise FetchTooLarge()
        budget.check()
        yield chunk


def _feed(body: Iterator[bytes], sink: Callable[[bytes], object]) -> int:
    """Hand each chunk to ``sink``; return how many bytes went."""
    count = 0
    for chunk in body:
        sink(chunk)
        count += len(chunk)
    return count


def _check_content_length(response: BaseHTTPResponse, max_bytes: int) -> None:
    """Reject early when the declared length already exceeds the cap."""
    declared = response.headers.get("Content-Length")
    if declared is None:
        return
    try:
        length = int(declared)
    except ValueError:
        raise FetchError("invalid Content-Length") from None
    if length > max_bytes:
        raise FetchTooLarge()


def _map_transport_error(exc: HTTPError) -> FetchError:
    """Translate a urllib3 error into a FetchError with a safe reason."""
    logger.debug("transport error: %s", type(exc).__name__)
    if isinstance(exc, NewConnectionError):
        return FetchError("connection failed")
    if isinstance(exc, ConnectTimeoutError):
        return FetchError("connection timed out")
    if isinstance(exc, ReadTimeoutError):
        return FetchError("read timed out")
    if isinstance(exc, SSLError):
        return FetchError("TLS verification failed")
    if isinstance(exc, LocationValueError):
        return FetchError("invalid URL")
    return FetchError("connection error")


class _Budget:
    """What ends a fetch early: the policy's total timeout, or a cancel event."""

    def __init__(self, total_timeout: float | None, cancel: threading.Event | None) -> None:
        self._ends = None if total_timeout is None else time.monotonic() + total_timeout
        self._cancel = cancel

    def check(self) -> None:
        if self._cancel is not None and self._cancel.is_set():
            raise FetchError("cancelled")
        if self._ends is not None and time.monotonic() > self._ends:
            raise FetchError("download took too long")
