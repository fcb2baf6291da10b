"""Root information and nonces."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from ocean_provider import __version__
from ocean_provider.api.context import context
from ocean_provider.auth.nonces import nonce_text
from ocean_provider.compute.requests import NonceRequest
from ocean_provider.web.params import refuse_head, request_params
from ocean_provider.wire.fields import parse

root = Blueprint("root", __name__)
nonces = Blueprint("nonces", __name__)

HIDDEN_METHODS = {"HEAD", "OPTIONS"}
API_DOCS = {"openapi": "/api/openapi.json", "docs": "/api/docs/"}  # web.openapi serves them


def service_endpoints() -> dict[str, list[str]]:
    """``name -> [METHOD, path]`` for each services route, as clients look them up."""
    endpoints: dict[str, list[str]] = {}
    for rule in current_app.url_map.iter_rules():
        blueprint, _, name = rule.endpoint.partition(".")
        if blueprint not in ("services", "nonces", "documents", "consume"):
            continue
        methods = sorted((rule.methods or set()) - HIDDEN_METHODS)
        endpoints[name] = [methods[0], rule.rule]
    return endpoints


@root.get("/")
def version() -> Response:
    ctx = context()
    if ctx.root_body is None:  # the same for the app's whole life: built once
        settings = ctx.settings
        info = {
            "software": "Provider",
            "version": __version__,
            "chainIds": settings.chain_ids,
            "providerAddresses": {str(c): a for c, a in settings.provider_addresses.items()},
            "computeAddress": settings.universal_address,
            "serviceEndpoints": service_endpoints(),
            "apiDocs": API_DOCS,
        }
        ctx.root_body = jsonify(info).get_data()
    return Response(ctx.root_body, mimetype="application/json")


@nonces.get("/nonce")
def nonce() -> Response:
    refuse_head()
    req = parse(NonceRequest, request_params())
    value = context().auth.nonces.ensure_initial(req.user_address)
    return jsonify({"nonce": nonce_text(value)})
