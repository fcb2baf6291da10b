"""Where request parameters come from, as the reference reads them."""

from __future__ import annotations

from typing import Any

from flask import request

from ocean_provider.errors import MethodNotAllowed, ValidationFailed


def request_params() -> dict[str, Any]:
    """Query args when there are any, else the JSON body (POST: the body when there is one)."""
    body = _json_body()
    if request.method == "POST" and body:
        return body
    if request.args:
        return {key: request.args.get(key) for key in request.args}
    return body


def _json_body() -> dict[str, Any]:
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise ValidationFailed({"body": ["The request body must be a JSON object."]})
    return body


def refuse_head() -> None:
    """Signed routes never run for HEAD: it must not consume a nonce."""
    if request.method == "HEAD":
        raise MethodNotAllowed("HEAD is not allowed on this endpoint")
