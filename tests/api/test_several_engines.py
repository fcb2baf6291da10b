"""Two engines behind one Provider (``OPERATOR_SERVICES``), requests-mock standing in for both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import requests_mock as rm
from flask import Flask
from flask.testing import FlaskClient

from ocean_provider.app import create_app
from tests.api.helpers import (
    COMPUTE,
    ENGINE_COMPUTE,
    ENGINE_ENVS,
    ENVIRONMENT,
    RESULT,
    engine_job,
    job_params,
    result_params,
)
from tests.api.helpers import start_body as signed_start
from tests.conftest import TX2, Consumer, FakeDdoResolver, FakeOrderVerifier, make_settings

ENGINE_A = "http://engine-a.test:8050"
ENGINE_B = "http://engine-b.test:8050"
OPERATOR = "/api/v1/operator"
ENVS = "/api/services/computeEnvironments?chainId=8996"


@pytest.fixture
def client(tmp_path: Path, ddos: FakeDdoResolver, engine: rm.Mocker) -> FlaskClient:
    """The production wiring from the settings: a router over one client per engine."""
    engines = [{"name": "a", "url": ENGINE_A}, {"name": "b", "url": ENGINE_B}]
    settings = make_settings(
        tmp_path, OPERATOR_SERVICE_URL="", OPERATOR_SERVICES=json.dumps(engines)
    )
    app = create_app(settings, ddos=ddos, orders=FakeOrderVerifier())
    return app.test_client()


def _engine_ids(request: Any) -> list[str]:
    return parse_qs(urlsplit(request.url).query).get("jobId", [])


def start_body(consumer: Consumer, env: str, tx: str) -> dict[str, Any]:
    body = signed_start(consumer, environment=env)
    body["dataset"]["transferTxId"] = tx
    return body


def test_jobs_are_routed_to_their_environments_engine_and_named_for_it(
    client: FlaskClient, engine: rm.Mocker, consumer: Consumer
) -> None:
    engine.get(f"{ENGINE_A}{OPERATOR}/environments", json=[dict(ENVIRONMENT, id="cpu-a")])
    engine.get(f"{ENGINE_B}{OPERATOR}/environments", json=[dict(ENVIRONMENT, id="cpu-b")])
    listed = client.get(ENVS).get_json()
    assert [(env["id"], env["reachable"]) for env in listed] == [("cpu-a", True), ("cpu-b", True)]

    done = engine_job(consumer.address, "77", status=70, results=[{"filename": "out.txt"}])
    engine.post(f"{ENGINE_B}{OPERATOR}/compute", json=[engine_job(consumer.address, "77")])
    engine.get(f"{ENGINE_B}{OPERATOR}/compute", json=[done])
    engine.get(f"{ENGINE_B}{OPERATOR}/getResult", content=b"out")
    started = client.post(COMPUTE, json=start_body(consumer, "cpu-b", TX2))
    assert started.status_code == 200, started.get_json()
    assert started.get_json()[0]["jobId"] == "b-77"
    assert engine.request_history[-1].json()["environment"] == "cpu-b"

    (status,) = client.get(COMPUTE, query_string=job_params(consumer, "b-77")).get_json()
    assert status["jobId"] == "b-77" and "jobId=b-77" in status["resultsUrls"][0]
    assert _engine_ids(engine.request_history[-1]) == ["77"]  # the engine's own id
    result = client.get(RESULT, query_string=result_params(consumer, "b-77", 0))
    assert (result.status_code, result.data) == (200, b"out")
    assert _engine_ids(engine.request_history[-1]) == ["77"]
    assert not any(
        r.url.startswith(ENGINE_A + OPERATOR + "/compute") for r in engine.request_history
    )


def test_a_down_engine_is_503_for_its_jobs_and_the_other_answers(
    client: FlaskClient, engine: rm.Mocker, consumer: Consumer
) -> None:
    engine.get(f"{ENGINE_A}{OPERATOR}/environments", json=[dict(ENVIRONMENT, id="cpu-a")])
    down = {"exc": requests.ConnectionError("refused")}
    for path in ("/environments", "/compute", "/getResult"):
        engine.register_uri(rm.ANY, f"{ENGINE_B}{OPERATOR}{path}", **down)
    engine.get(f"{ENGINE_A}{OPERATOR}/compute", json=[engine_job(consumer.address, "1")])

    listed = client.get(ENVS)
    assert listed.status_code == 200 and [env["id"] for env in listed.get_json()] == ["cpu-a"]
    for reply in (
        client.get(COMPUTE, query_string=job_params(consumer, "b-9")),
        client.put(COMPUTE, query_string=job_params(consumer, "b-9")),
        client.get(RESULT, query_string=result_params(consumer, "b-9", 0)),
    ):
        assert (reply.status_code, reply.get_json()["code"]) == (503, "operator_unavailable")
    mine = client.get(COMPUTE, query_string=job_params(consumer, "a-1"))
    assert mine.status_code == 200 and mine.get_json()[0]["jobId"] == "a-1"
    listing = client.get(COMPUTE, query_string=job_params(consumer, None))
    assert [job["jobId"] for job in listing.get_json()] == ["a-1"]


def test_one_engine_is_as_before_its_ids_bare_and_no_reachable(
    app: Flask, engine: rm.Mocker, consumer: Consumer
) -> None:
    """``OPERATOR_SERVICE_URL`` alone: the wire is unchanged."""
    engine.get(ENGINE_ENVS, json=[ENVIRONMENT])
    engine.get(ENGINE_COMPUTE, json=[engine_job(consumer.address, "77")])
    client = app.test_client()
    (env,) = client.get(ENVS).get_json()
    assert "reachable" not in env
    (job,) = client.get(COMPUTE, query_string=job_params(consumer, "77")).get_json()
    assert job["jobId"] == "77"
