"""Where request parameters come from, as the reference reads them."""

from __future__ import annotations

from typing import Any

from flask import request

from ocean_provider import bounded_json
from ocean_provider.errors import MethodNotAllowed, PayloadTooLarge, ValidationFailed

QUERY_ONLY = frozenset({"GET", "HEAD"})


def request_params() -> dict[str, Any]:
    """The query string for GET; otherwise query args when there are any, else the JSON body.

    POST takes the body when there is one. A GET never reads its body.
    """
    if request.method in QUERY_ONLY:
        return _query()
    body = _json_body()
    if request.method == "POST" and body:
        return body
    if request.args:
        return _query()
    return body


def _query() -> dict[str, Any]:
    return {key: request.args.get(key) for key in request.args}


def _json_body() -> dict[str, Any]:
    raw = body_bytes()
    if not raw.strip():
        return {}
    try:
        body = bounded_json.loads(raw)
    except bounded_json.JsonTooDeep:
        message = f"The request body nests JSON deeper than {bounded_json.MAX_DEPTH} levels."
        raise ValidationFailed({"body": [message]}) from None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ValidationFailed({"body": ["The request body must be a JSON object."]})
    return body


def body_bytes() -> bytes:
    """The whole body; 413 when it is over the cap, with or without a Content-Length.

    Werkzeug refuses an over-long Content-Length, but a chunked body (no length) is cut
    at the cap without a word. A body that fills the cap is over it when the server's
    stream still holds a byte.
    """
    raw = request.get_data(cache=True)
    cap = request.max_content_length
    if cap is not None and request.content_length is None and len(raw) >= cap:
        if request.environ["wsgi.input"].read(1):
            raise PayloadTooLarge("request body too large")
    return raw


def refuse_head() -> None:
    """Signed routes never run for HEAD: it must not consume a nonce."""
    if request.method == "HEAD":
        raise MethodNotAllowed("HEAD is not allowed on this endpoint")
