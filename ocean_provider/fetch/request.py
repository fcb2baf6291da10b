"""What may be fetched: Ocean "url" file objects, URLs, headers and redirects, validated.

Pure functions over the request; no I/O. ``fetcher.py`` does the network part.
Reasons in ``FetchError`` never include query strings, header values or
credentials.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urljoin, urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_MAX_URL_LENGTH = 8192
_ALLOWED_METHODS = frozenset({"GET", "POST"})
_FORBIDDEN_HEADERS = frozenset(
    {
        "connection",
        "content-length",
        "host",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9._-]{1,253}")
_CONTROL_CHARS_RE = re.compile(r"[\x00-\x1f\x7f]")
_BAD_HEADER_VALUE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # HTAB is allowed


class FetchError(Exception):
    """A download failed.

    ``reason`` is short and safe to show a user: it never contains the URL's
    query string, header values or credentials.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FetchStatus(FetchError):
    """The final reply (after redirects) was not 2xx; ``status`` is its HTTP status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"remote returned HTTP {status}")
        self.status = status


class FetchTooLarge(FetchError):
    """The body is larger than the fetch may write."""

    def __init__(self) -> None:
        super().__init__("file exceeds size limit")


@dataclass(frozen=True)
class Target:
    """A validated http(s) URL split into what a pinned request needs."""

    scheme: str
    host: str  # ASCII hostname or IP literal, no brackets
    port: int
    request_target: str  # path plus query, always starts with "/"
    url: str  # full URL, used only to resolve relative redirects

    @property
    def host_header(self) -> str:
        """Value for the ``Host`` header (port omitted when default)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == DEFAULT_PORTS[self.scheme]:
            return host
        return f"{host}:{self.port}"

    @property
    def origin(self) -> str:
        """``scheme://host[:port]``; safe to log."""
        return f"{self.scheme}://{self.host_header}"


@dataclass(frozen=True)
class FetchRequest:
    """A validated request derived from a file object."""

    target: Target
    method: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None


def parse_target(url: object) -> Target:
    """Validate an http(s) URL and split it into a :class:`Target`."""
    if not isinstance(url, str) or not url or len(url) > _MAX_URL_LENGTH:
        raise FetchError("invalid URL")
    if _CONTROL_CHARS_RE.search(url):
        raise FetchError("invalid URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchError("invalid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise FetchError(f"unsupported URL scheme {_safe_label(scheme)}".rstrip())
    if parts.username is not None or parts.password is not None:
        raise FetchError("credentials in URL are not allowed")
    host = _normalize_host(parts.hostname)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(
        scheme=scheme,
        host=host,
        port=port or DEFAULT_PORTS[scheme],
        request_target=path,
        url=url,
    )


def build_request(file_object: Mapping[str, Any]) -> FetchRequest:
    """Validate an Ocean file object and turn it into a :class:`FetchRequest`."""
    if not isinstance(file_object, Mapping):
        raise FetchError("invalid file object")
    file_type = file_object.get("type")
    if file_type != "url":
        raise FetchError(f"unsupported file type {_safe_label(file_type)}".rstrip())
    target = parse_target(file_object.get("url"))
    method = file_object.get("method") or "GET"
    if not isinstance(method, str) or method.upper() not in _ALLOWED_METHODS:
        raise FetchError("unsafe method")
    method = method.upper()
    headers = _validate_headers(file_object.get("headers"))
    body = _encode_body(file_object.get("body"), method)
    return FetchRequest(target=target, method=method, headers=headers, body=body)


def follow_redirect(request: FetchRequest, status: int, location: str) -> FetchRequest:
    """Build the next hop's request from a redirect response.

    303 (and 301/302 after POST) become a body-less GET. Custom headers are
    dropped when the origin changes; HTTPS -> HTTP downgrades are refused.
    """
    old = request.target
    try:
        new_url = urljoin(old.url, location.strip())
    except ValueError:
        raise FetchError("invalid redirect location") from None
    target = parse_target(new_url)
    if old.scheme == "https" and target.scheme == "http":
        raise FetchError("refusing redirect from https to http")
    method, body = request.method, request.body
    if status == 303 or (status in (301, 302) and method == "POST"):
        method, body = "GET", None
    headers = request.headers if target.origin == old.origin else {}
    return replace(request, target=target, method=method, body=body, headers=headers)


def _validate_headers(raw: object) -> dict[str, str]:
    """Check custom headers: token names, no CR/LF/NUL, no hop-by-hop/Host."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise FetchError("invalid headers")
    headers: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not _TOKEN_RE.fullmatch(name):
            raise FetchError("invalid header name")
        if name.lower() in _FORBIDDEN_HEADERS:
            raise FetchError(f"forbidden header {name.lower()}")
        if not _is_valid_header_value(value):
            raise FetchError(f"invalid value for header {name.lower()}")
        headers[name] = value
    return headers


def _is_valid_header_value(value: object) -> bool:
    """Latin-1 text without control characters (HTAB allowed)."""
    if not isinstance(value, str) or _BAD_HEADER_VALUE_RE.search(value):
        return False
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _encode_body(raw: object, method: str) -> bytes | None:
    """Optional request body (str or bytes), only allowed with POST."""
    if raw is None:
        return None
    if method != "POST":
        raise FetchError("body is only allowed with POST")
    if isinstance(raw, str):
        return raw.encode("utf-8")
    if isinstance(raw, bytes):
        return raw
    raise FetchError("invalid body")


def _normalize_host(hostname: str | None) -> str:
    """ASCII (IDNA) hostname or canonical IP literal; FetchError if invalid."""
    if not hostname:
        raise FetchError("invalid URL")
    try:
        return str(ipaddress.ip_address(hostname))
    except ValueError:
        pass
    try:
        ascii_host = hostname.encode("idna").decode("ascii")
    except UnicodeError:
        raise FetchError("invalid URL") from None
    if not _HOSTNAME_RE.fullmatch(ascii_host):
        raise FetchError("invalid URL")
    return ascii_host.lower()


def _safe_label(value: object) -> str:
    """Echo a user-supplied value in a reason only if it is a short token."""
    if isinstance(value, str) and _TOKEN_RE.fullmatch(value) and len(value) <= 32:
        return value
    return ""
