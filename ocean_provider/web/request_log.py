"""Each request's id, duration and outcome: the ``X-Request-ID`` reply header, one log line
per request (``LOG_FORMAT=json``), and what the metrics count.

The id comes from the caller's ``X-Request-ID`` when it is well formed (1-64 characters of
letters, digits and ``._:-``), else it is made here; every reply carries it, errors too, and
the Provider passes it on to the engine. The line names the URL rule, never the path with its
query string (signatures travel there), and the signer once authentication knows it.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, g, has_request_context, request

from ocean_provider.web.log_format import FIELDS

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
UNMATCHED = "unmatched"  # the route of a request no URL rule matched (404, 405)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
access_log = logging.getLogger("ocean_provider.access")

# What a finished request tells an observer: route, method, status, seconds, error code
RequestObserver = Callable[[str, str, int, float, str | None], None]


def request_id() -> str:
    """This request's id: the caller's when well formed, else a new one (kept on ``g``)."""
    rid: str | None = g.get("request_id")
    if rid is None:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        rid = given if REQUEST_ID.fullmatch(given) else os.urandom(16).hex()  # 128 random bits
        g.request_id = rid
    return rid


def current_request_id() -> str | None:
    """The id of the request being served, or None outside one (a background thread)."""
    return request_id() if has_request_context() else None


def note_signer(address: str) -> None:
    """Authentication calls this with the checksummed signer; the request line shows it."""
    if has_request_context():
        g.signer = address


def note_error(code: str) -> None:
    """The error handler calls this with the reply's stable code."""
    if has_request_context():
        g.error_code = code


def route() -> str:
    """The URL rule that matched (``/api/services/compute``), never the raw path."""
    rule = request.url_rule
    return rule.rule if rule is not None else UNMATCHED


def install_request_log(
    app: Flask, *, json_lines: bool, observers: tuple[RequestObserver, ...] = ()
) -> None:
    """Time each request, echo its id, log one line (``json_lines``) and tell ``observers``."""

    def started() -> None:
        g.request_started = time.perf_counter()
        request_id()

    def finished(response: Response) -> Response:
        rid = request_id()
        response.headers[REQUEST_ID_HEADER] = rid
        seconds = time.perf_counter() - g.get("request_started", time.perf_counter())
        method = request.method if request.method in METHODS else "OTHER"
        code: str | None = g.get("error_code")
        rule = route()
        for observe in observers:
            observe(rule, method, response.status_code, seconds, code)
        if json_lines:
            _log_line(rule, method, response.status_code, seconds, rid, code)
        return response

    app.before_request(started)
    app.after_request(finished)


def _log_line(
    rule: str, method: str, status: int, seconds: float, rid: str, code: str | None
) -> None:
    fields: dict[str, Any] = {
        "route": rule,
        "method": method,
        "status": status,
        "duration_ms": round(seconds * 1000, 2),
        "request_id": rid,
    }
    signer = g.get("signer")
    if signer is not None:
        fields["signer"] = signer
    if code is not None:
        fields["code"] = code
    access_log.info("%s %s %d", method, rule, status, extra={FIELDS: fields})
