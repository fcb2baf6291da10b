"""The Provider's OpenAPI document and docs page: generated from the app's routes and the
request models its views parse, served with its UI from the package (no CDN)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ocean_provider.api.info import service_endpoints
from ocean_provider.api.openapi import PROVIDER_OPERATIONS
from ocean_provider.compute.requests import StartRequest


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    reply = client.get("/api/openapi.json")
    assert reply.status_code == 200
    assert reply.mimetype == "application/json"
    body: dict[str, Any] = reply.get_json()
    return body


def test_every_client_endpoint_is_documented(app: Flask, document: dict[str, Any]) -> None:
    with app.app_context():
        endpoints = service_endpoints()
    assert endpoints  # the names ocean.js and ocean.py look up
    for name, (method, path) in endpoints.items():
        operation = document["paths"][path][method.lower()]
        assert operation["summary"], name
    assert "get" in document["paths"]["/"]
    documented = {rule.endpoint for rule in app.url_map.iter_rules()} & set(PROVIDER_OPERATIONS)
    assert documented == set(PROVIDER_OPERATIONS)  # no entry for a route that is gone


def test_request_models_are_the_views_own(document: dict[str, Any]) -> None:
    start = document["paths"]["/api/services/compute"]["post"]
    schema = start["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/StartRequest"}
    required = {
        field.alias or name
        for name, field in StartRequest.model_fields.items()
        if field.is_required()
    }
    assert set(document["components"]["schemas"]["StartRequest"]["required"]) == required
    status = document["paths"]["/api/services/compute"]["get"]
    assert {p["name"] for p in status["parameters"]} >= {"consumerAddress", "jobId", "signature"}
    assert all(p["in"] == "query" for p in status["parameters"])


def test_errors_are_documented_with_their_codes(document: dict[str, Any]) -> None:
    responses = document["paths"]["/api/services/compute"]["post"]["responses"]
    assert "order_already_used" in responses["400"]["description"]
    assert "signature_reused" in responses["400"]["description"]
    assert "operator_unavailable" in responses["503"]["description"]
    error = document["components"]["schemas"]["ErrorReply"]
    assert set(error["required"]) == {"error", "code"}
    assert responses["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorReply"
    }


def test_binary_bodies_and_replies(document: dict[str, Any]) -> None:
    encrypt = document["paths"]["/api/services/encrypt"]["post"]
    assert list(encrypt["requestBody"]["content"]) == ["application/octet-stream"]
    assert [p["name"] for p in encrypt["parameters"]] == ["chainId"]
    assert list(encrypt["responses"]["201"]["content"]) == ["text/plain"]
    result = document["paths"]["/api/services/computeResult"]["get"]["responses"]["200"]
    assert list(result["content"]) == ["application/octet-stream"]


def test_root_links_the_documents(client: FlaskClient) -> None:
    body = client.get("/").get_json()
    assert body["apiDocs"] == {"openapi": "/api/openapi.json", "docs": "/api/docs/"}
    assert "apiDocs" not in body["serviceEndpoints"]
    assert client.get(body["apiDocs"]["openapi"]).status_code == 200


def test_docs_page_uses_the_packaged_ui(client: FlaskClient) -> None:
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/api/openapi.json" in html
    assert "https://" not in html  # nothing from a CDN
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        reply = client.get(f"/api/docs/{asset}")
        assert reply.status_code == 200
        reply.close()
