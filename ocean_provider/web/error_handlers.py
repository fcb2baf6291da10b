"""One place that turns errors into JSON replies; nothing else builds error bodies."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from ocean_provider.errors import (
    MetricsTokenInvalid,
    ProviderError,
    RangeNotSatisfiable,
    RateLimited,
)
from ocean_provider.web.request_log import note_error

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
}


def error_reply(error: ProviderError) -> Response:
    note_error(error.code)
    response = jsonify(error.body())
    response.status_code = error.status
    return response


def _range_not_satisfiable(error: RangeNotSatisfiable) -> Response:
    """416 says how long the result is when the engine said so (RFC 9110 14.4)."""
    response = error_reply(error)
    if error.size is not None:
        response.headers["Content-Range"] = f"bytes */{error.size}"
    return response


def rate_limited_reply(error: RateLimited) -> Response:
    """429 says when to come back (RFC 6585 4); flask-limiter's refusals come here too."""
    response = error_reply(error)
    response.headers["Retry-After"] = str(error.retry_after)
    return response


def _metrics_token_invalid(error: MetricsTokenInvalid) -> Response:
    """401 names the scheme it wants (RFC 9110 11.6.1)."""
    response = error_reply(error)
    response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = HTTP_CODES.get(status, "http_error")
    message = {
        404: "no such endpoint",
        405: "method not allowed on this endpoint",
        413: "request body too large",
    }.get(status, exc.name)
    note_error(code)
    response = jsonify({"error": message, "code": code})
    response.status_code = status
    return response


def _unexpected(exc: Exception) -> Response:
    log.error("unexpected %s while handling a request", type(exc).__name__, exc_info=exc)
    note_error("internal_error")
    response = jsonify({"error": "internal error", "code": "internal_error"})
    response.status_code = 500
    return response


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ProviderError, error_reply)
    app.register_error_handler(RangeNotSatisfiable, _range_not_satisfiable)
    app.register_error_handler(RateLimited, rate_limited_reply)
    app.register_error_handler(MetricsTokenInvalid, _metrics_token_invalid)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
