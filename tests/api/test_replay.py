"""Every route's signature replayed on every other route (and its own): all refused.

Signed messages are concatenations without separators, so the text a consumer
signed for one route can be read as another route's message with a larger
nonce: ``consumer + "job1" + "0" + N`` (a result download) is also a delete of
job ``job`` with nonce ``10N``. Each reading below is the one an attacker would
pick: the longest run of trailing digits as the nonce, so that it beats the
stored one.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests_mock as rm
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from ocean_provider.auth.messages import job_message, result_message, start_message
from tests.api.helpers import (
    COMPUTE,
    ENGINE_COMPUTE,
    ENGINE_ENVS,
    ENGINE_RESULT,
    ENVIRONMENT,
    RESULT,
    engine_job,
    raw_algorithm,
)
from tests.conftest import DATASET_DID, TX, Consumer

ROUTES = ("start", "status", "stop", "delete", "result")
AUTH_REFUSALS = {"signature_reused", "nonce_too_low", "signature_invalid"}
TRAILING_DIGITS = re.compile(r"[0-9]+$")


def _any_job(request: Any, context: Any) -> list[dict[str, Any]]:
    """An engine that has whatever job of whichever owner is asked about."""
    query = parse_qs(urlsplit(request.url).query)
    owner = request.json()["owner"] if request.method == "POST" else query["owner"][0]
    job_id = query.get("jobid", query.get("jobId", ["job1"]))[0]
    return [engine_job(owner, job_id=job_id, status=70, results=[{"filename": "out.txt"}])]


@pytest.fixture
def any_engine(engine: rm.Mocker) -> rm.Mocker:
    engine.get(ENGINE_ENVS, json=[ENVIRONMENT])
    for verb in ("get", "put", "delete", "post"):
        getattr(engine, verb)(ENGINE_COMPUTE, json=_any_job)
    engine.get(ENGINE_RESULT, content=b"result bytes")
    return engine


def _message(route: str, consumer: str, fields: dict[str, Any]) -> str:
    if route == "start":
        return start_message(consumer, fields["documentId"])
    if route == "result":
        return result_message(consumer, fields["jobId"], fields["index"])
    return job_message(consumer, fields.get("jobId"), fields.get("documentId"))


def _send(client: FlaskClient, route: str, params: dict[str, Any]) -> TestResponse:
    if route == "start":
        body = {
            "consumerAddress": params["consumerAddress"],
            "nonce": params["nonce"],
            "signature": params["signature"],
            "environment": ENVIRONMENT["id"],
            "dataset": {
                "documentId": params["documentId"],
                "serviceId": "compute-1",
                "transferTxId": TX,
            },
            "algorithm": raw_algorithm(),
        }
        return client.post(COMPUTE, json=body)
    if route == "result":
        return client.get(RESULT, query_string=params)
    verb = {"status": "get", "stop": "put", "delete": "delete"}[route]
    return getattr(client, verb)(COMPUTE, query_string=params)


def _genuine(route: str, consumer: Consumer) -> dict[str, Any]:
    """What a client signs and sends for ``route``."""
    fields: dict[str, Any] = {
        "start": {"documentId": DATASET_DID},
        "status": {"jobId": "job1", "documentId": DATASET_DID},
        "stop": {"jobId": "job1"},
        "delete": {"jobId": "job1", "documentId": DATASET_DID},
        "result": {"jobId": "job1", "index": 0},
    }[route]
    nonce = consumer.nonce()
    signature = consumer.sign(_message(route, consumer.address, fields), nonce)
    return {**fields, "consumerAddress": consumer.address, "nonce": nonce, "signature": signature}


def _reading(route: str, consumer: str, signed_text: str, signature: str) -> dict[str, Any]:
    """``signed_text`` read as a request of ``route`` with the largest nonce it allows."""
    rest = signed_text.removeprefix(consumer)
    digits = TRAILING_DIGITS.search(rest)
    assert digits is not None
    run = digits.group()
    middle = rest[: -len(run)]
    if route == "result":  # one digit of the run is the index, the others the nonce
        fields: dict[str, Any] = {"jobId": middle, "index": int(run[0])}
        nonce = run[1:]
    elif route == "start":
        fields, nonce = {"documentId": middle}, run
    else:
        fields, nonce = {"jobId": middle}, run
    assert _message(route, consumer, fields) + nonce == signed_text
    return {**fields, "consumerAddress": consumer, "nonce": nonce, "signature": signature}


@pytest.mark.parametrize("target", ROUTES)
@pytest.mark.parametrize("source", ROUTES)
def test_a_signature_works_once_whatever_route_reads_it(
    client: FlaskClient, consumer: Consumer, any_engine: rm.Mocker, source: str, target: str
) -> None:
    params = _genuine(source, consumer)
    first = _send(client, source, params)
    assert first.status_code == 200, first.get_json()
    signed = _message(source, consumer.address, params) + params["nonce"]
    calls = len(any_engine.request_history)
    replay = _send(client, target, _reading(target, consumer.address, signed, params["signature"]))
    assert replay.status_code == 400, replay.get_data(as_text=True)[:300]
    assert replay.get_json()["code"] in AUTH_REFUSALS
    assert len(any_engine.request_history) == calls  # refused before the engine was asked


def test_the_reading_that_beats_the_nonce_is_refused_as_reused(
    client: FlaskClient, consumer: Consumer, any_engine: rm.Mocker
) -> None:
    """The review's case: a result signature (index 0, nonce N) as DELETE with nonce "0N"."""
    params = _genuine("result", consumer)
    assert _send(client, "result", params).status_code == 200
    signed = _message("result", consumer.address, params) + params["nonce"]
    delete = _reading("delete", consumer.address, signed, params["signature"])
    assert int(delete["nonce"]) > int(params["nonce"])  # the nonce check alone lets it through
    replay = _send(client, "delete", delete)
    assert (replay.status_code, replay.get_json()["code"]) == (400, "signature_reused")
    assert not [r for r in any_engine.request_history if r.method == "DELETE"]


def test_delete_without_job_id_is_refused_before_its_nonce_is_spent(
    client: FlaskClient, consumer: Consumer, any_engine: rm.Mocker
) -> None:
    params = _genuine("delete", consumer)
    del params["jobId"]
    params["signature"] = consumer.sign(
        job_message(consumer.address, None, DATASET_DID), params["nonce"]
    )
    refused = client.delete(COMPUTE, query_string=params)
    assert (refused.status_code, refused.get_json()["code"]) == (400, "invalid_request")
    assert "jobId" in refused.get_json()["errors"]
    assert not any_engine.request_history
    # the same nonce is still fresh for a well-formed request
    fields = {"jobId": "job1", "documentId": DATASET_DID}
    signature = consumer.sign(_message("delete", consumer.address, fields), params["nonce"])
    valid = {**params, **fields, "signature": signature}
    assert client.delete(COMPUTE, query_string=valid).status_code == 200
