"""Tests for ocean_provider.fetch.fetcher against real local HTTP(S) servers.

All traffic goes to 127.0.0.1 only; non-public literals are checked without
ever opening a connection.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import logging
import shutil
import socket
import ssl
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from urllib3.response import HTTPResponse

from ocean_provider.devnet.ports import free_port
from ocean_provider.fetch import fetcher as fetch
from ocean_provider.fetch.fetcher import (
    CHUNK_SIZE,
    FetchPolicy,
    IPAddress,
    SafeFetcher,
    is_public_address,
    vet_host,
)
from ocean_provider.fetch.request import FetchError, Target

FILE_BYTES = bytes(range(256)) * 1024  # 256 KiB: several 64 KiB chunks
SECRET_QUERY = "q-s3cret-7f3a"
SECRET_HEADER = "h-s3cret-91bc"
LOOPBACK = ip_address("127.0.0.1")
GZIP_BOMB = gzip.compress(bytes(8 << 20))  # ~8 KiB on the wire, 8 MiB decoded


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.scheme = "http"
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.release = threading.Event()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def record(self, method: str, path: str, headers: dict[str, str]) -> None:
        with self.lock:
            self.seen.append((method, path, headers))

    def paths(self) -> list[str]:
        with self.lock:
            return [path for _, path, _ in self.seen]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients aborting mid-body is expected in these tests."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        self.server.record(self.command, self.path, dict(self.headers.items()))
        path, _, query = self.path.partition("?")
        routes: dict[str, Callable[[dict[str, list[str]]], None]] = {
            "/file": lambda q: self._send(200, FILE_BYTES),
            "/stream": self._stream,
            "/declared-big": self._declared_big,
            "/gzip-bomb": lambda q: self._send(200, GZIP_BOMB, **{"Content-Encoding": "gzip"}),
            "/redirect": lambda q: self._redirect(302, "/file"),
            "/loop": lambda q: self._redirect(302, "/loop"),
            "/chain": self._chain,
            "/to": lambda q: self._redirect(int(q["code"][0]), q["location"][0]),
            "/slow-body": self._slow_body,
            "/slow-headers": self._slow_headers,
            "/trickle": self._trickle,
            "/echo": self._echo,
            "/host": lambda q: self._send(200, self.headers["Host"].encode()),
        }
        route = routes.get(path, self._not_found)
        route(parse_qs(query))

    def _not_found(self, query: dict[str, list[str]]) -> None:
        self._send(404, b"not found")

    def _send(self, code: int, body: bytes, **headers: str) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, code: int, location: str) -> None:
        self._send(code, b"", Location=location)

    def _chain(self, query: dict[str, list[str]]) -> None:
        hops = int(query["n"][0])
        if hops == 0:
            self._send(200, FILE_BYTES)
        else:
            self._redirect(302, f"/chain?n={hops - 1}")

    def _stream(self, query: dict[str, list[str]]) -> None:
        """Chunked transfer encoding, no Content-Length."""
        total = int(query["n"][0])
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0
        try:
            while sent < total:
                part = FILE_BYTES[: min(CHUNK_SIZE, total - sent)]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                sent += len(part)
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True

    def _declared_big(self, query: dict[str, list[str]]) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(10 << 20))
        self.end_headers()
        self.wfile.write(FILE_BYTES[:1024])
        self.close_connection = True

    def _slow_body(self, query: dict[str, list[str]]) -> None:
        release = self.server.release
        self.send_response(200)
        self.send_header("Content-Length", str(len(FILE_BYTES)))
        self.end_headers()
        self.wfile.write(FILE_BYTES[:1024])
        release.wait(5)
        self.close_connection = True

    def _trickle(self, query: dict[str, list[str]]) -> None:
        """One byte every 50 ms, never idle long enough for a read timeout."""
        self.send_response(200)
        self.send_header("Content-Length", str(len(FILE_BYTES)))
        self.end_headers()
        with contextlib.suppress(OSError):
            for byte in FILE_BYTES[:200]:
                if self.server.release.wait(0.05):
                    break
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
        self.close_connection = True

    def _slow_headers(self, query: dict[str, list[str]]) -> None:
        self.server.release.wait(5)
        self.close_connection = True

    def _echo(self, query: dict[str, list[str]]) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.command != "POST" or self.headers.get("X-Api-Key") != SECRET_HEADER:
            self._send(403, b"forbidden")
        else:
            self._send(200, body)


class _TLSServer(_Server):
    def __init__(self, cert: Path, key: Path) -> None:
        super().__init__()
        self.scheme = "https"
        self.ca_file = cert
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.socket = context.wrap_socket(self.socket, server_side=True)


@dataclass
class FakeDns:
    """Stand-in for fetch.resolve_host; later answers model DNS rebinding."""

    answers: dict[str, list[list[str]]]
    calls: list[str]

    def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.calls.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "unknown host")
        queue = self.answers[host]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return [ip_address(a) for a in answer]


@contextmanager
def _running(server: _Server) -> Iterator[_Server]:
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def http_server() -> Iterator[_Server]:
    with _running(_Server()) as server:
        yield server


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_TLSServer]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not available")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=pinned.test",
         "-addext", "subjectAltName=DNS:pinned.test"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    server = _TLSServer(cert, key)
    with _running(server):
        yield server


def _reset(server: _Server) -> Iterator[_Server]:
    server.seen.clear()
    server.release = threading.Event()
    yield server
    server.release.set()


@pytest.fixture
def server(http_server: _Server) -> Iterator[_Server]:
    yield from _reset(http_server)


@pytest.fixture
def tls(tls_server: _TLSServer) -> Iterator[_Server]:
    yield from _reset(tls_server)


@pytest.fixture
def tls_ca(tls_server: _TLSServer) -> str:
    """The self-signed server certificate, used as the only trusted CA."""
    return str(tls_server.ca_file)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[IPAddress]:
    """Fail any test that would open a connection to a non-loopback address."""
    dialed: list[IPAddress] = []
    original = SafeFetcher._make_pool

    def guarded(self: SafeFetcher, target: Target, address: IPAddress) -> Any:
        assert address.is_loopback, f"test tried to connect to {address}"
        dialed.append(address)
        return original(self, target, address)

    monkeypatch.setattr(SafeFetcher, "_make_pool", guarded)
    return dialed


@pytest.fixture
def make_fetcher() -> Iterator[Callable[..., SafeFetcher]]:
    fetchers: list[SafeFetcher] = []

    def factory(**overrides: Any) -> SafeFetcher:
        fetcher = SafeFetcher(FetchPolicy(**{"allow_private": True, **overrides}))
        fetchers.append(fetcher)
        return fetcher

    yield factory
    for fetcher in fetchers:
        fetcher.close()


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    dns = FakeDns(answers={}, calls=[])
    monkeypatch.setattr(fetch, "resolve_host", dns)
    return dns


def _url(server: _Server, path: str, host: str = "127.0.0.1") -> str:
    return f"{server.scheme}://{host}:{server.port}{path}"


def _file(url: str | None, **extra: Any) -> dict[str, Any]:
    return {"type": "url", "url": url, "method": "GET", **extra}


def _assert_nothing_written(folder: Path) -> None:
    assert list(folder.iterdir()) == []


# --- happy paths -------------------------------------------------------------


def test_fetch_file_writes_bytes_and_returns_size(
    server: _Server, make_fetcher: Callable[..., SafeFetcher], tmp_path: Path
) -> None:
    dest = tmp_path / "data.csv"
    written = make_fetcher().fetch_to(_file(_url(server, "/file")), dest)
    assert written == len(FILE_BYTES)
    assert dest.read_bytes() == FILE_BYTES
    assert list(tmp_path.iterdir()) == [dest]  # no temp file left behind


def test_fetch_overwrites_and_creates_parent_dirs(
    server: _Server, make_fetcher: Callable[..., SafeFetcher], tmp_path: Path
) -> None:
    dest = tmp_path / "nested" / "dir" / "data.bin"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"old content")
    make_fetcher().fetch_to(_file(_url(server, "/file")), dest)
    assert dest.read_bytes() == FILE_BYTES


def test_post_with_custom_header_and_body(
    server: _Server, make_fetcher: Callable[..., SafeFetcher], tmp_path: Path
) -> None:
    file_object = _file(
        _url(server, "/echo"),
        method="post",
        headers={"X-Api-Key": SECRET_HEADER},
        body='{"q": 1}',
    )
    written = make_fetcher().fetch_to(file_object, tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == b'{"q": 1}'
    assert written == 8
    method, _, headers = server.seen[0]
    assert method == "POST" and headers["X-Api-Key"] == SECRET_HEADER


def test_post_without_required_header_is_http_error(
    server: _Server, make_fetcher: Callable[..., SafeFetcher], tmp_path: Path
) -> None:
    with pytest.raises(FetchError, match="remote returned HTTP 403"):
        make_fetcher().fetch_to(_file(_url(server, "/echo"), method="POST"), tmp_path / "o")
    _assert_nothing_written(tmp_path)


def test_streams_in_bounded_chunks(
    server: _Server,
    make_fetcher: Callable[..., SafeFetcher],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sizes: list[int] = []
    original = HTTPResponse.read1

    def spy(self: HTTPResponse, amt: int | None = None, **kw: Any) -> bytes:
        chunk = original(self, amt, **kw)
        sizes.append(len(chunk))
        return chunk

    monkeypatch.setattr(HTTPResponse, "read1", spy)
    make_fetcher().fetch_to(_file(_url(server, "/stream?n=1048576")), tmp_path / "o")
    assert sum(sizes) == 1 << 20
    assert len(sizes) >= 16 and max(sizes) <= CHUNK_SIZE


# --- hashing without storing ----------------------------------------------------------


@pytest.mark.parametrize("path", ["/file", "/stream?n=200000", "/redirect"])
def test_sha256_hashes_the_body_and_stores_nothing(
    server: _Server, make_fetcher: Callable[..., SafeFetcher], tmp_path: Path, path: str
) -> None:
    body = FILE_BYTES if path != "/stream?n=200000" else _streamed(200000)
    assert make_fetcher().sha256(_file(_url(server, path))) == hashlib.sha256(body).hexdigest()
    _assert_nothing_written(tmp_path)


@pytest.mark.parametrize(
    ("path", "overrides", "reason"),
    [
        ("/file", {"max_bytes": 1000}, "file exceeds size limit"),
        ("/stream?n=3000", {"max_bytes": 2999}, "file exceeds size limit"),
        ("/file", {"allow_private": False}, "destination address not allowed"),
        ("/missing", {}, "remote returned HTTP 404"),
        ("/trickle", {"read_timeout": 1, "total_timeout": 0.3}, "download took too long"),
    ],
)
def test_sha256_keeps_every_limit(
    server: _Server,
    make_fetcher: Callable[..., SafeFetcher],
    path: str,
    overrides: dict[str, Any],
    reason: str,
) -> None:
    with pytest.raises(FetchError) as excinfo:
        make_fetcher(**overrides).sha256(_file(_url(server, path)))
    assert excinfo.value.reason == reason


def test_sha256_max_bytes_lowers_the_policy_cap(
    server: _Server, make_fetcher: Callable[..., SafeFetcher]
) -> None:
    with pytest.raises(FetchError, match="file exceeds size limit"):
        make_fetcher().sha256(_file(_url(server, "/file")), max_bytes=len(FILE_BYTES) - 1)


def _streamed(total: int) -> bytes:
    """What ``/stream?n=total`` sends: FILE_BYTES' head in CHUNK_SIZE parts."""
    parts, sent = [], 0
    while sent < total:
        part = FILE_BYTES[: min(CHUNK_SIZE, total - sent)]
        parts.append(part)
        sent += len(part)
    return b"".join(parts)


# --- address checks ----------------------------------------------------------


@pytest.mark.parametrize(
    "literal",
    [
        "127.0.0.1",
        "169.254.169.254",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fd00:ec2::254",
        "fe80::1",
        "fec0::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::127.0.0.1",
        "2002:a9fe:a9fe::",  # 6to4 wrapping 169.254.169.254
    ],
)
def test_non_public_addresses_rejected(literal: str) -> None:
    assert not is_public_address(ip_address(literal))
    with pytest.raises(FetchError, match="destination address not allowed"):
        vet_host(literal, 80, allow_private=False)


@pytest.mark.parametrize(
    "literal", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_accepted(literal: str) -> None:
    assert is_public_address(ip_address(literal))
    assert vet_host(literal, 443, allow_private=False) == [ip_address(literal)]


def test_allow_private_permits_loopback() -> None:
    assert vet_host("127.0.0.1", 80, allow_private=True) == [LOOPBACK]


def test_host_with_any_private_answer_rejected(fake_dns: FakeDns) -> None:
    fake_dns.answers["mixed.test"] = [["8.8.8.8", "10.0.0.1"]]
    with pytest.raises(FetchError, match="destination address not allowed"):
        vet_host("mixed.test", 80, allow_private=False)


def test_unresolvable_host_fails_closed(
    fake_dns: FakeDns, make_fetcher: Callable[..., SafeFetcher], tmp_path: Path
) -> None:
    with pytest.raises(FetchError, match="could not resolve host"):
        make_fetcher().fetch_to(_file("http://nowhere.test/x"), tmp_path / "o")


def test_loopback_ip_rejected_without_request(
    server: _Server,
    make_fetcher: Callable[..., SafeFetcher],
    tmp_path: Path,
    loopback_only: list[IPAddress],
) -> None:
    with pytest.raises(FetchError, match="destination address not allowed"):
        make_fetcher(allow_private=False).fetch_to(_file(_url(server, "/file")), tmp_path / "o")
    assert server.seen == [] and loopback_only == []
    _assert_nothing_written(tmp_path)


def test_localhost_name_rejected_without_request(
    server: _Server, make_fetcher: Callable[..., SafeFetcher], tmp_path: Path
) -> None:
    with pytest.raises(FetchError, match="destination address not allowed"):
        make_fetcher(allow_private=False).fetch_to(
            _file(_url(server, "/file", host="localhost")), tmp_path / "o"
        )
    assert server.seen == []


def test_metadata_url_rejected_before_connecting(
    make_fetcher: Callable[..., SafeFetcher],
    tmp_path: Path,
    loopback_only: list[IPAddress],
) -> None:
    fetcher = make_fetcher(allow_private=False)
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/"):
        with pytest.raises(FetchError, match="destination address not allowed"):
            fetcher.fetch_to(_file(url), tmp_path / "o")
    assert loopback_only == []


def test_connection_pinned_to_vetted_ip(
    server: _Server,
    make_fetcher: Callable[..., SafeFetcher],
    tmp_path: Path,
    fake_dns: FakeDns,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second lookup would rebind to metadata; only the first one is used."""
    monkeypatch.setattr(fetch, "is_public_address", lambda ip: ip == LOOPBACK)
    fake_dns.answers["rebind.test"] = [["127.0.0.1"], ["169.254.169.254"]]
    url = _url(server, "/host", host="rebind.test")
    make_fetcher(allow_private=False).fetch_to(_file(url), tmp_path / "o")
    assert (tmp_path / "o").read_bytes() == f"rebind.test:{server.port}".encode()
    assert fake_dns.calls == ["rebind.test"]


def test_falls_back_to_next_vetted_address(
    server: _Server,
    make_fetcher: Callable[..., SafeFetcher],
    tmp_path: Path,
    fake_dns: FakeDns,
    loopback_only: list[IPAddress],
) -> None:
    fake_dns.answers["multi.test"] = [["127.0.0.2", "127.0.0.1"]]
    url = _url(server, "/file", host="multi.test")
    assert make_fetcher(connect_timeout=2).fetch_to(_file(url), tmp_path / "o") > 0
    assert loopback_only == [ip_address("127.0.0.2"), LOOPBACK]


# --- redirects -----------------------------------------------------------------


def test_relative_redirect_followed(
    server: _Server, make_fetcher: Callable[..., SafeFetcher], tmp_path: Path
) -> None:
    make_fetcher().fetch_to(_file(_url(server, "/redirect")), tmp_path / "o")
    assert (tmp_path / "o").read_bytes() == FILE_BYTES
    assert server.paths() == ["/redirect", "/file"]


def test_redirect_chain_within_limit(
    server: _Server, make_fetcher: Callable[..., SafeFetcher], tmp_path: Path
) -> None:
    make_fetcher(max_redirects=3).fetch_to(_file(_url(server, "/chain?n=3")), tmp_path / "o")
    assert (tmp_path / "o").read_bytes() == FILE_BYTES


@pytest.mark.parametrize("path", ["/chain?n=3", "/loop"])
def test_redirect_limit(
    server: _Server, make_fetcher: Callable[..., SafeFetcher], tmp_path: Path, path: str
) -> None:
    with pytest.raises(FetchError, match="too many redirects"):
        make_fetcher(max_redirects=2).fetch_to(_file(_url(server, path)), tmp_path / "o")
    assert len(server.seen) == 3
    _assert_nothing_written(tmp_path)


def test_redirect_target_is_revalidated(
    server: _Server,
    make_fetcher: Callable[..., SafeFetcher],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    loopback_only: list[IPAddress],
) -> None:
    monkeypatch.setattr(fetch, "is_public_address", lambda ip: ip == LOOPBACK)
    path = "/to?code=302&location=http://169.254.169.254/latest/meta-data/"
    with pytest.raises(FetchError, match="destination address not allowed"):
        make_fetcher(allow_private=False).fetch_to(_file(_url(server, path)), tmp_path / "o")
    assert len(server.seen) == 1 and loopback_only == [LOOPBACK]


def test_cross_origin_redirect_drops_custom_headers(
    server: _Server,
    make_fetcher: Callable[..., SafeFetcher],
    tmp_path: Path,
    fake_dns: FakeDns,
) -> None:
    fake_dns.answers["127.0.0.1"] = [["127.0.0.1"]]
    fake_dns.answers["other.test"] = [["127.0.0.1"]]
    target = _url(server, "/file", host="other.test")
    file_object = _file(
        _url(server, f"/to?code=307&location={target}"),
        headers={"X-Api-Key": SECRET_HEADER},
    )
    make_fetcher().fetch_to(file_object, tmp_path / "o")
    (_, _, first), (_, _, second) = server.seen
    assert first["X-Api-Key"] == SECRET_HEADER
    assert "X-Api-Key" not in second and second["Host"] == f"other.test:{server.port}"


def test_see_other_after_post_becomes_get(
    server: _Server, make_fetcher: Callable[..., SafeFetcher], tmp_path: Path
) -> None:
    file_object = _file(_url(server, "/to?code=303&location=/file"), method="POST", body="x")
    make_fetcher().fetch_to(file_object, tmp_path / "o")
    assert [method for method, _, _ in server.seen] == ["POST", "GET"]


# --- HTTP errors, size cap, timeouts -------------------------------------------


def test_404_is_fetch_error(
    server: _Server, make_fetcher: Callable[..., SafeFetcher], tmp_path: Path
) -> None:
    with pytest.raises(FetchError, match="^remote returned HTTP 404$"):
        make_fetcher().fetch_to(_file(_url(server, "/missing")), tmp_path / "o")
    _assert_nothing_written(tmp_path)


@pytest.mark.parametrize(
    ("path", "max_bytes"),
    [
        ("/file", len(FILE_BYTES) - 1),  # Content-Length over the cap
        ("/declared-big", 1 << 20),  # declared 10 MiB, rejected before reading
        ("/stream?n=3145728", 1 << 20),  # chunked, no Content-Length
        ("/stream?n=1000", 999),  # chunked, one byte over
    ],
)
def test_size_cap(
    server: _Server,
    make_fetcher: Callable[..., SafeFetcher],
    tmp_path: Path,
    path: str,
    max_bytes: int,
) -> None:
    dest = tmp_path / "o"
    with pytest.raises(FetchError, match="file exceeds size limit"):
        make_fetcher(max_bytes=max_bytes).fetch_to(_file(_url(server, path)), dest)
    _assert_nothing_written(tmp_path)


def test_size_cap_applies_to_decoded_bytes(
    server: _Server, make_fetcher: Callable[..., SafeFetcher], tmp_path: Path
) -> None:
    file_object = _file(_url(server, "/gzip-bomb"), headers={"Accept-Encoding": "gzip"})
    with pytest.raises(FetchError, match="file exceeds size limit"):
        make_fetcher(max_bytes=1 << 20).fetch_to(file_object, tmp_path / "o")
    _assert_nothing_written(tmp_path)


def test_size_cap_is_inclusive(
    server: _Server, make_fetcher: Callable[..., SafeFetcher], tmp_path: Path
) -> None:
    fetcher = make_fetcher(max_bytes=1000)
    assert fetcher.fetch_to(_file(_url(server, "/stream?n=1000")), tmp_path / "o") == 1000


def test_failed_fetch_keeps_existing_dest(
    server: _Server, make_fetcher: Callable[..., SafeFetcher], tmp_path: Path
) -> None:
    dest = tmp_path / "o"
    dest.write_bytes(b"previous")
    with pytest.raises(FetchError):
        make_fetcher(max_bytes=10).fetch_to(_file(_url(server, "/stream?n=100")), dest)
    assert list(tmp_path.iterdir()) == [dest] and dest.read_bytes() == b"previous"


@pytest.mark.parametrize("path", ["/slow-headers", "/slow-body"])
def test_read_timeout(
    server: _Server, make_fetcher: Callable[..., SafeFetcher], tmp_path: Path, path: str
) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match="read timed out"):
        make_fetcher(read_timeout=0.3).fetch_to(_file(_url(server, path)), tmp_path / "o")
    assert time.monotonic() - started < 3
    _assert_nothing_written(tmp_path)


def test_total_timeout_ends_a_trickling_download(
    server: _Server, make_fetcher: Callable[..., SafeFetcher], tmp_path: Path
) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match="download took too long"):
        fetcher = make_fetcher(read_timeout=1, total_timeout=0.5)
        fetcher.fetch_to(_file(_url(server, "/trickle")), tmp_path / "o")
    assert time.monotonic() - started < 2
    _assert_nothing_written(tmp_path)


def test_cancel_ends_a_download_in_progress(
    server: _Server, make_fetcher: Callable[..., SafeFetcher], tmp_path: Path
) -> None:
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(FetchError, match="cancelled"):
        make_fetcher().fetch_to(_file(_url(server, "/trickle")), tmp_path / "o", cancel)
    assert time.monotonic() - started < 2
    _assert_nothing_written(tmp_path)


def test_connection_refused(make_fetcher: Callable[..., SafeFetcher], tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/x"
    with pytest.raises(FetchError, match="connection failed"):
        make_fetcher().fetch_to(_file(url), tmp_path / "o")


# --- input validation ------------------------------------------------------------


@pytest.mark.parametrize(
    ("file_object", "reason"),
    [
        ({"type": "ipfs", "hash": "Qm"}, "unsupported file type ipfs"),
        ({"type": "arweave", "transactionId": "x"}, "unsupported file type arweave"),
        ({"url": "http://example.com/"}, "unsupported file type"),
        (_file("ftp://example.com/f"), "unsupported URL scheme ftp"),
        (_file("file:///etc/passwd"), "unsupported URL scheme file"),
        (_file("gopher://127.0.0.1:6379/_"), "unsupported URL scheme gopher"),
        (_file("http:///nohost"), "invalid URL"),
        (_file("http://example.com:99999/"), "invalid URL"),
        (_file("http://example.com/\r\nX: y"), "invalid URL"),
        (_file(None), "invalid URL"),
        (_file("http://user:pw@example.com/"), "credentials in URL are not allowed"),
        (_file("http://example.com/", method="DELETE"), "unsafe method"),
        (_file("http://example.com/", method="PUT"), "unsafe method"),
        (_file("http://example.com/", method=7), "unsafe method"),
        (_file("http://example.com/", headers={"Host": "evil"}), "forbidden header host"),
        (
            _file("http://example.com/", headers={"Transfer-Encoding": "chunked"}),
            "forbidden header transfer-encoding",
        ),
        (_file("http://example.com/", headers={"Bad Name": "v"}), "invalid header name"),
        (
            _file("http://example.com/", headers={"X-A": "v\r\nInjected: 1"}),
            "invalid value for header x-a",
        ),
        (
            _file("http://example.com/", headers={"X-A": "\u20ac"}),
            "invalid value for header x-a",
        ),
        (_file("http://example.com/", headers={"X-A": 1}), "invalid value for header x-a"),
        (_file("http://example.com/", headers=["X-A"]), "invalid headers"),
        (_file("http://example.com/", body="x"), "body is only allowed with POST"),
    ],
)
def test_invalid_file_objects_rejected(
    file_object: dict[str, Any],
    reason: str,
    make_fetcher: Callable[..., SafeFetcher],
    tmp_path: Path,
    loopback_only: list[IPAddress],
) -> None:
    with pytest.raises(FetchError) as excinfo:
        make_fetcher().fetch_to(file_object, tmp_path / "o")
    assert excinfo.value.reason == reason
    assert loopback_only == []


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        FetchPolicy(read_timeout=0)
    with pytest.raises(ValueError):
        FetchPolicy(max_redirects=-1)


def test_closed_fetcher_refuses(make_fetcher: Callable[..., SafeFetcher], tmp_path: Path) -> None:
    fetcher = make_fetcher()
    fetcher.close()
    fetcher.close()
    with pytest.raises(RuntimeError):
        fetcher.fetch_to(_file("http://127.0.0.1/"), tmp_path / "o")


# --- no secrets in errors or logs -----------------------------------------------


@pytest.mark.parametrize(
    ("path", "overrides", "reason"),
    [
        ("/missing", {}, "remote returned HTTP 404"),
        ("/slow-headers", {"read_timeout": 0.2}, "read timed out"),
        ("/loop", {"max_redirects": 1}, "too many redirects"),
        ("/file", {"allow_private": False}, "destination address not allowed"),
        ("/file", {"max_bytes": 10}, "file exceeds size limit"),
        (None, {}, "connection failed"),
    ],
)
def test_errors_and_logs_never_leak_secrets(
    server: _Server,
    make_fetcher: Callable[..., SafeFetcher],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    path: str | None,
    overrides: dict[str, Any],
    reason: str,
) -> None:
    # Our own logger at DEBUG. (urllib3's connectionpool DEBUG log prints the
    # request line itself; deployments must keep "urllib3" at INFO or above.)
    caplog.set_level(logging.DEBUG, logger=fetch.__name__)
    base = _url(server, path) if path else f"http://127.0.0.1:{free_port()}/x"
    file_object = _file(
        f"{base}{'&' if '?' in base else '?'}token={SECRET_QUERY}",
        headers={"Authorization": f"Bearer {SECRET_HEADER}", "X-Api-Key": SECRET_HEADER},
    )
    with pytest.raises(FetchError) as excinfo:
        make_fetcher(**overrides).fetch_to(file_object, tmp_path / "o")
    assert excinfo.value.reason == reason
    rendered = "".join(traceback.format_exception(excinfo.value)) + caplog.text
    for secret in (SECRET_QUERY, SECRET_HEADER):
        assert secret not in rendered


def test_credentials_in_url_not_echoed(
    make_fetcher: Callable[..., SafeFetcher], tmp_path: Path
) -> None:
    with pytest.raises(FetchError) as excinfo:
        make_fetcher().fetch_to(_file(f"https://u:{SECRET_QUERY}@h.test/"), tmp_path / "o")
    assert SECRET_QUERY not in str(excinfo.value)


# --- HTTPS: pinned IP, original hostname verified ----------------------------------


def test_https_pinned_ip_verifies_original_hostname(
    tls: _Server,
    make_fetcher: Callable[..., SafeFetcher],
    tmp_path: Path,
    fake_dns: FakeDns,
    tls_ca: str,
) -> None:
    fake_dns.answers["pinned.test"] = [["127.0.0.1"]]
    url = _url(tls, "/file", host="pinned.test")
    fetcher = make_fetcher(ca_certs=tls_ca)
    assert fetcher.fetch_to(_file(url), tmp_path / "o") == len(FILE_BYTES)
    assert tls.seen[0][2]["Host"] == f"pinned.test:{tls.port}"


def test_https_wrong_hostname_rejected(
    tls: _Server,
    make_fetcher: Callable[..., SafeFetcher],
    tmp_path: Path,
    fake_dns: FakeDns,
    tls_ca: str,
) -> None:
    fake_dns.answers["other.test"] = [["127.0.0.1"]]
    with pytest.raises(FetchError, match="TLS verification failed"):
        make_fetcher(ca_certs=tls_ca).fetch_to(
            _file(_url(tls, "/file", host="other.test")), tmp_path / "o"
        )
    assert tls.seen == []
    _assert_nothing_written(tmp_path)


def test_https_untrusted_certificate_rejected(
    tls: _Server, make_fetcher: Callable[..., SafeFetcher], tmp_path: Path, fake_dns: FakeDns
) -> None:
    fake_dns.answers["pinned.test"] = [["127.0.0.1"]]
    with pytest.raises(FetchError, match="TLS verification failed"):
        make_fetcher().fetch_to(_file(_url(tls, "/file", host="pinned.test")), tmp_path / "o")


def test_https_to_http_redirect_refused(
    tls: _Server,
    server: _Server,
    make_fetcher: Callable[..., SafeFetcher],
    tmp_path: Path,
    fake_dns: FakeDns,
    tls_ca: str,
) -> None:
    fake_dns.answers["pinned.test"] = [["127.0.0.1"]]
    path = f"/to?code=302&location={_url(server, '/file')}"
    with pytest.raises(FetchError, match="refusing redirect from https to http"):
        make_fetcher(ca_certs=tls_ca).fetch_to(
            _file(_url(tls, path, host="pinned.test")), tmp_path / "o"
        )
    assert server.seen == []
