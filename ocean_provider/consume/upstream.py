"""What a download asks of the file's server, and what of its reply goes to the caller.

Pure functions over file objects and headers. ``userdata`` goes as the reference sends it:
query parameters for a GET file, a JSON body for a POST one. Only the reply's length,
range and file name pass on; nothing here ever puts the file's URL into a reply.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from ocean_provider.web.disposition import disposition_name

FORWARDED = ("content-range", "accept-ranges")  # besides a length that is the body's


def with_userdata(file: Mapping[str, Any], userdata: Mapping[str, Any] | None) -> dict[str, Any]:
    """The file object with the consumer's ``userdata`` added (a copy)."""
    result = dict(file)
    if not userdata:
        return result
    if str(file.get("method", "GET")).upper() == "POST":
        headers = dict(file.get("headers") or {})
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = "application/json"
        result["headers"] = headers
        result["body"] = json.dumps(dict(userdata))
        return result
    parts = urlsplit(str(file["url"]))
    extra = urlencode(_query_pairs(userdata))
    query = f"{parts.query}&{extra}" if parts.query else extra
    result["url"] = urlunsplit(parts._replace(query=query))
    return result


def with_range(file: Mapping[str, Any], byte_range: str | None) -> dict[str, Any]:
    """The file object asking for ``byte_range``, unless its DDO headers already name one."""
    result = dict(file)
    headers = dict(file.get("headers") or {})
    if byte_range and not any(name.lower() == "range" for name in headers):
        headers["Range"] = byte_range
        result["headers"] = headers
    return result


def reply_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The upstream headers a download passes on (names lower-case in ``headers``).

    The length only when the body is passed as it came: the fetcher decodes a
    content-encoding, and then the declared length is not the body's."""
    passed = {name.title(): headers[name] for name in FORWARDED if name in headers}
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if "content-length" in headers and encoding in ("", "identity"):
        passed["Content-Length"] = headers["content-length"]
    return passed


def file_name(headers: Mapping[str, str]) -> str | None:
    """The name the file's server gives it (``Content-Disposition``), if any."""
    return disposition_name(headers.get("content-disposition"))


def details(headers: Mapping[str, str]) -> dict[str, str]:
    """``contentLength`` and ``contentType`` as the reference's fileinfo reports them."""
    length = headers.get("content-length") or ""
    content_range = headers.get("content-range")
    if not length and content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        length = total if total.isdigit() else ""
    content_type = (headers.get("content-type") or "").split(";")[0].strip()
    return {"contentLength": length, "contentType": content_type}


def _query_pairs(userdata: Mapping[str, Any]) -> list[tuple[str, str]]:
    """As ``requests`` sends ``params``: lists repeat the key, ``None`` is left out;
    objects (which requests cannot send) go as JSON text."""
    pairs: list[tuple[str, str]] = []
    for key, value in userdata.items():
        for item in value if isinstance(value, list) else [value]:
            if item is None:
                continue
            text = item if isinstance(item, str) else None
            if text is None:
                text = json.dumps(item) if isinstance(item, dict | list) else str(item)
            pairs.append((str(key), text))
    return pairs
