"""The engine's OpenAPI document (Operator-Service API) and docs page."""

from __future__ import annotations

from ocean_provider.devnet.embedded import EmbeddedEngine


def test_engine_serves_its_document(running_engine: EmbeddedEngine) -> None:
    client = running_engine.app.test_client()
    document = client.get("/api/v1/openapi.json").get_json()
    paths = document["paths"]
    compute = paths["/api/v1/operator/compute"]
    assert set(compute) == {"get", "post", "put", "delete"}
    assert compute["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/StartJob"
    }
    assert "nonce_not_fresh" in compute["get"]["responses"]["400"]["description"]
    assert set(paths) >= {
        "/",
        "/api/v1/operator/getResult",
        "/api/v1/operator/environments",
        "/api/v1/operator/health",
    }
    assert "/api/v1/openapi.json" not in paths
    page = client.get("/api/v1/docs/")
    assert page.status_code == 200
    assert "/api/v1/openapi.json" in page.get_data(as_text=True)
