"""``/metrics`` on the Provider: requests by URL rule and status, refusals by code, engine
calls by kind and outcome; bounded labels only; the optional bearer token."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import requests_mock as rm
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from ocean_provider.app import create_app
from ocean_provider.web.metrics import METRICS_ENDPOINT, METRICS_PATH
from ocean_provider.web.rate_limits import EXEMPT_PATHS
from tests.api.helpers import (
    COMPUTE,
    ENGINE_COMPUTE,
    ENGINE_ENVS,
    ENVIRONMENT,
    engine_job,
    job_params,
    start_body,
)
from tests.conftest import (
    DATASET_DID,
    TX,
    Consumer,
    FakeDdoResolver,
    FakeOrderVerifier,
    make_settings,
)


def _app(tmp_path: Path, ddos: FakeDdoResolver, orders: FakeOrderVerifier, **env: str) -> Flask:
    return create_app(make_settings(tmp_path, **env), ddos=ddos, orders=orders)


@pytest.fixture
def client(tmp_path: Path, ddos: FakeDdoResolver, orders: FakeOrderVerifier) -> FlaskClient:
    return _app(tmp_path, ddos, orders).test_client()


def samples(
    client: FlaskClient, **headers: str
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    reply = client.get("/metrics", headers=headers)
    assert reply.status_code == 200
    assert reply.content_type.startswith("text/plain")
    text = reply.get_data(as_text=True)
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def test_requests_count_by_url_rule_never_by_path(
    client: FlaskClient, engine: rm.Mocker, consumer: Consumer
) -> None:
    engine.get(ENGINE_COMPUTE, json=[engine_job(consumer.address)])
    for _ in range(2):
        assert client.get(COMPUTE, query_string=job_params(consumer)).status_code == 200
    client.get(f"/no/such/{consumer.address}")
    found = samples(client)
    ok = {"route": COMPUTE, "method": "GET", "status": "200"}
    assert value(found, "ocean_provider_http_requests_total", **ok) == 2
    missing = {"route": "unmatched", "method": "GET", "status": "404"}
    assert value(found, "ocean_provider_http_requests_total", **missing) == 1
    latency = {"route": COMPUTE, "method": "GET"}
    assert value(found, "ocean_provider_http_request_duration_seconds_count", **latency) == 2
    text = client.get("/metrics").get_data(as_text=True)
    assert consumer.address not in text and consumer.address.lower() not in text


def test_nonce_refusals_count_by_code(
    client: FlaskClient, engine: rm.Mocker, consumer: Consumer
) -> None:
    engine.get(ENGINE_COMPUTE, json=[engine_job(consumer.address)])
    params = job_params(consumer)
    assert client.get(COMPUTE, query_string=params).status_code == 200
    assert client.get(COMPUTE, query_string=params).json["code"] == "nonce_too_low"  # type: ignore[index]
    client.get(COMPUTE, query_string={**job_params(consumer), "signature": "0x" + "11" * 65})
    found = samples(client)
    assert value(found, "ocean_provider_auth_refusals_total", code="nonce_too_low") == 1
    assert value(found, "ocean_provider_auth_refusals_total", code="signature_invalid") == 1


def test_order_refusals_count_by_code(
    client: FlaskClient, engine: rm.Mocker, consumer: Consumer, orders: FakeOrderVerifier
) -> None:
    engine.get(ENGINE_ENVS, json=[ENVIRONMENT])
    orders.bad.add(TX)
    reply = client.post(COMPUTE, json=start_body(consumer))
    assert reply.status_code == 400 and reply.json["code"] == "order_invalid"  # type: ignore[index]
    found = samples(client)
    assert value(found, "ocean_provider_order_refusals_total", code="order_invalid") == 1
    text = client.get("/metrics").get_data(as_text=True)
    assert DATASET_DID not in text and TX not in text


def test_engine_calls_count_by_kind_and_outcome(
    client: FlaskClient, engine: rm.Mocker, consumer: Consumer
) -> None:
    engine.get(ENGINE_COMPUTE, json=[engine_job(consumer.address)])
    client.get(COMPUTE, query_string=job_params(consumer))
    engine.put(ENGINE_COMPUTE, status_code=500, json={"error": "boom"})
    client.put(COMPUTE, query_string=job_params(consumer))
    engine.delete(ENGINE_COMPUTE, exc=requests.ConnectionError("down"))
    client.delete(COMPUTE, query_string=job_params(consumer))
    engine.get(ENGINE_COMPUTE, status_code=404, json={"error": "no such job"})
    client.get(COMPUTE, query_string=job_params(consumer))
    found = samples(client)
    calls = "ocean_provider_engine_calls_total"
    # stop and delete ask for the job's status first (only the owner's jobs)
    assert value(found, calls, call="status", outcome="ok") == 3
    assert value(found, calls, call="stop", outcome="error") == 1
    assert value(found, calls, call="delete", outcome="unavailable") == 1
    assert value(found, calls, call="status", outcome="refused") == 1
    count = "ocean_provider_engine_call_duration_seconds_count"
    assert value(found, count, call="status") == 4


def test_a_metrics_token_is_asked_for_when_set(
    tmp_path: Path, ddos: FakeDdoResolver, orders: FakeOrderVerifier
) -> None:
    client = _app(tmp_path, ddos, orders, METRICS_TOKEN="s3cret-token").test_client()
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert refused.json == {
        "error": "/metrics needs the bearer token METRICS_TOKEN names",
        "code": "metrics_token_invalid",
    }
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert samples(client, Authorization="Bearer s3cret-token")


def test_metrics_is_one_endpoint_rate_limits_can_exempt(client: FlaskClient) -> None:
    app = client.application
    (rule,) = [r for r in app.url_map.iter_rules() if r.rule == "/metrics"]
    assert rule.endpoint == METRICS_ENDPOINT and METRICS_PATH in EXEMPT_PATHS
    assert "X-Request-ID" in client.get("/metrics").headers
