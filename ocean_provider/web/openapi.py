"""The OpenAPI 3 document of an app, built by spectree from the pydantic models the views
validate with, and its docs page (Swagger UI from the ``flask-swagger-ui`` package: no CDN).

Each app lists its routes as ``Operation``s keyed by Flask endpoint (``api.openapi``,
``engine.openapi``). The document is generated from the app's own URL map, so paths and
methods cannot drift from the code; spectree only reads the models here. It never wraps a
served view (its wrapper would read streamed replies into memory and answer bad requests
with its own errors), so the views' validation and their stable error codes stay the only
ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response
from flask_swagger_ui import get_swaggerui_blueprint
from pydantic import BaseModel
from spectree import Response as SpecResponse
from spectree import SpecTree

from ocean_provider import __version__

STATUS_TEXT = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    413: "Body too large",
    416: "Range not satisfiable",
    429: "Too many requests",
    500: "Internal error",
    501: "Not implemented",
    502: "Bad gateway",
    503: "Unavailable",
}


class ErrorReply(BaseModel):
    """Every error: ``error`` (a message, or resource -> code as the reference has it) and
    a stable ``code``; a request of the wrong shape also has ``errors`` (field -> messages)."""

    error: str | dict[str, str]
    code: str
    message: str | None = None
    errors: dict[str, list[str]] | None = None
    success: bool | None = None


@dataclass(frozen=True)
class Operation:
    """What one route takes and answers: the request models its view parses (``query`` for
    the query string, ``body`` for a JSON body), its reply, and the error codes per status."""

    summary: str
    reply: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    status: int = 200
    reply_media: str = "application/json"  # a route whose reply is not JSON names its type
    body_media: str | None = None  # a raw (not JSON) body: its media type
    errors: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


METRICS_OPERATION = Operation(
    "Prometheus metrics, text exposition format (bearer token when METRICS_TOKEN is set)",
    reply_media="text/plain",
    errors={401: ("metrics_token_invalid",)},
    tags=("operations",),
)


def build_document(
    app: Flask, operations: Mapping[str, Operation], *, title: str, description: str
) -> dict[str, Any]:
    """The OpenAPI document of ``app``'s routes that ``operations`` describe."""
    spec = SpecTree(
        "flask",
        mode="strict",
        path="-",  # nothing served by spectree: no route of ours starts with it
        page_templates={},
        title=title,
        description=description,
        version=__version__,
        validation_error_status=400,
        validation_error_model=ErrorReply,
        naming_strategy=lambda model: model.__name__,
        nested_naming_strategy=lambda _parent, child: child,
    )
    paper = Flask(app.import_name)  # the same rules, holding spectree's records only
    for rule in app.url_map.iter_rules():
        operation = operations.get(rule.endpoint)
        if operation is not None:
            paper.add_url_rule(
                rule.rule,
                rule.endpoint,
                _recorded(spec, operation),
                methods=sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}),
            )
    with paper.app_context():
        document: dict[str, Any] = spec.spec
    document.pop("security", None)
    _add_media(document, app, operations)
    return document


def _recorded(spec: SpecTree, operation: Operation) -> Callable[[], Response]:
    def view() -> Response:  # never served
        raise NotImplementedError

    view.__doc__ = operation.summary
    responses: dict[str, Any] = {}
    if operation.reply is not None and operation.reply_media == "application/json":
        responses[f"HTTP_{operation.status}"] = operation.reply
    else:
        responses[f"HTTP_{operation.status}"] = None
    for status, codes in sorted(operation.errors.items()):
        text = STATUS_TEXT.get(status, "Error")
        responses[f"HTTP_{status}"] = (ErrorReply, f"{text}; code: {', '.join(codes)}")
    recorded: Callable[[], Response] = spec.validate(
        query=operation.query,
        json=operation.body,
        resp=SpecResponse(**responses),
        tags=operation.tags,
        skip_validation=True,
    )(view)
    return recorded


def _add_media(document: dict[str, Any], app: Flask, operations: Mapping[str, Operation]) -> None:
    """Replies and bodies that are not JSON (results, downloads, ECIES documents)."""
    for rule in app.url_map.iter_rules():
        operation = operations.get(rule.endpoint)
        if operation is None:
            continue
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            entry = document["paths"][rule.rule][method.lower()]
            if operation.reply_media != "application/json":
                reply = entry["responses"][str(operation.status)]
                binary = {"type": "string", "format": "binary"}
                if operation.reply_media.startswith("text/"):
                    binary = {"type": "string"}
                reply["content"] = {operation.reply_media: {"schema": binary}}
            if operation.body_media is not None:
                entry["requestBody"] = {
                    "required": True,
                    "content": {
                        operation.body_media: {"schema": {"type": "string", "format": "binary"}}
                    },
                }


def register_openapi(
    app: Flask,
    operations: Mapping[str, Operation],
    *,
    prefix: str,
    title: str,
    description: str,
) -> None:
    """``{prefix}/openapi.json`` (built on first use, then served as is) and the docs page
    at ``{prefix}/docs``."""
    built: list[bytes] = []

    def openapi_document() -> Response:
        if not built:
            document = build_document(app, operations, title=title, description=description)
            built.append(json.dumps(document).encode())
        return Response(built[0], mimetype="application/json")

    app.add_url_rule(f"{prefix}/openapi.json", "openapi_document", openapi_document)
    docs = get_swaggerui_blueprint(
        f"{prefix}/docs",
        f"{prefix}/openapi.json",
        config={"app_name": title, "tryItOutEnabled": True},
        blueprint_name="openapi_docs",
    )
    app.register_blueprint(docs)
