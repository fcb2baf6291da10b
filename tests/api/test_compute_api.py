"""Compute endpoints through Flask's test client, with requests-mock standing in for the engine."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import requests_mock as rm
from eth_account import Account
from flask.testing import FlaskClient

from ocean_provider.auth.signing import verify_signature
from ocean_provider.operator.client import STREAM_CHUNK_BYTES
from tests.api.helpers import (
    COMPUTE,
    ENGINE_COMPUTE,
    ENGINE_ENVS,
    ENGINE_RESULT,
    ENVIRONMENT,
    RESULT,
    engine_job,
    job_params,
    published_algorithm,
    result_params,
    start_body,
)
from tests.conftest import (
    ALGO_TX,
    DATASET_DID,
    PROVIDER_KEY,
    TX,
    TX2,
    Consumer,
    FakeDdoResolver,
    FakeOrderVerifier,
)

PROVIDER_ADDRESS = "0x" + "0" * 40  # replaced in tests by the key's address


def _owner_filtered(jobs: list[dict[str, Any]]) -> Any:
    """An engine that, like ours and Ocean's, returns only the queried owner's jobs."""

    def reply(request: Any, context: Any) -> list[dict[str, Any]]:
        query = parse_qs(urlsplit(request.url).query)
        owner = query.get("owner", [""])[0]
        job_id = query.get("jobid", query.get("jobId", [None]))[0]
        return [
            j
            for j in jobs
            if j["owner"].lower() == owner.lower() and (job_id is None or j["jobId"] == job_id)
        ]

    return reply


@pytest.fixture
def envs(engine: rm.Mocker) -> None:
    engine.get(ENGINE_ENVS, json=[ENVIRONMENT])


def test_root_lists_endpoints_under_client_names(client: FlaskClient) -> None:
    body = client.get("/").get_json()
    assert body["software"] == "Provider"
    assert body["chainIds"] == [8996]
    assert list(body["providerAddresses"]) == ["8996"]
    endpoints = body["serviceEndpoints"]
    assert endpoints["computeStart"] == ["POST", "/api/services/compute"]
    assert endpoints["computeStatus"] == ["GET", "/api/services/compute"]
    assert endpoints["computeStop"] == ["PUT", "/api/services/compute"]
    assert endpoints["computeDelete"] == ["DELETE", "/api/services/compute"]
    assert endpoints["computeResult"] == ["GET", "/api/services/computeResult"]
    assert endpoints["computeEnvironments"] == ["GET", "/api/services/computeEnvironments"]
    assert endpoints["nonce"] == ["GET", "/api/services/nonce"]


def test_nonce_endpoint(client: FlaskClient, consumer: Consumer, engine: rm.Mocker) -> None:
    reply = client.get("/api/services/nonce", query_string={"userAddress": consumer.address})
    assert reply.get_json() == {"nonce": "1"}
    assert client.head("/api/services/nonce?userAddress=" + consumer.address).status_code == 405


def test_an_environment_without_its_address_announces_the_providers(
    client: FlaskClient, engine: rm.Mocker
) -> None:
    unnamed = [dict(ENVIRONMENT, consumerAddress="0x" + "0" * 40), dict(ENVIRONMENT, id="b")]
    del unnamed[1]["consumerAddress"]
    engine.get(ENGINE_ENVS, json=unnamed)
    listed = client.get("/api/services/computeEnvironments?chainId=8996").get_json()
    provider = Account.from_key(PROVIDER_KEY).address
    assert [env["consumerAddress"] for env in listed] == [provider, provider]


def test_environments_list_and_by_chain(client: FlaskClient, envs: None) -> None:
    listed = client.get("/api/services/computeEnvironments?chainId=8996").get_json()
    assert listed[0]["id"] == "ocean-compute" and listed[0]["feeToken"] == "0x" + "0" * 40
    assert listed[0]["consumerAddress"] == "0x" + "c" * 40  # the engine's own, kept
    by_chain = client.get("/api/services/computeEnvironments").get_json()
    assert list(by_chain) == ["8996"] and by_chain["8996"][0]["maxJobs"] == 2
    unknown = client.get("/api/services/computeEnvironments?chainId=1")
    assert (unknown.status_code, unknown.get_json()["code"]) == (400, "environment_not_found")


def test_start_raw_algorithm(
    client: FlaskClient, consumer: Consumer, engine: rm.Mocker, envs: None
) -> None:
    engine.post(ENGINE_COMPUTE, json=[engine_job(consumer.address)])
    reply = client.post(COMPUTE, json=start_body(consumer))
    assert reply.status_code == 200, reply.get_json()
    job = reply.get_json()[0]
    assert job["jobId"] == "job1" and job["status"] == 1
    assert job["owner"] == consumer.address and job["documentId"] == DATASET_DID
    assert job["dateCreated"] == "1700000000.5" and job["dateFinished"] is None
    sent = engine.request_history[-1].json()
    assert sent["owner"] == consumer.address and sent["environment"] == "ocean-compute"
    assert sent["agreementId"] == TX and sent["chainId"] == 8996
    verify_signature(
        sent["providerAddress"], f"{consumer.address}{sent['nonce']}", sent["providerSignature"]
    )
    stage = sent["workflow"]["stages"][0]
    assert stage["algorithm"]["rawcode"] == "print('hi')"
    assert stage["input"][0]["id"] == DATASET_DID
    assert stage["input"][0]["files"][0]["url"].endswith("compute-1.csv")
    assert stage["input"][0]["ddo"]["id"] == DATASET_DID


def test_start_published_algorithm_checks_both_orders(
    client: FlaskClient,
    consumer: Consumer,
    engine: rm.Mocker,
    envs: None,
    orders: FakeOrderVerifier,
) -> None:
    engine.post(ENGINE_COMPUTE, json=[engine_job(consumer.address)])
    body = start_body(
        consumer,
        algorithm={**published_algorithm(), "algocustomdata": {"k": 1}},
        additionalInputs=[
            {"documentId": DATASET_DID, "serviceId": "access-1", "transferTxId": TX2}
        ],
    )
    assert client.post(COMPUTE, json=body).status_code == 200
    assert orders.calls == [TX, TX2, ALGO_TX]
    stage = engine.request_history[-1].json()["workflow"]["stages"][0]
    assert stage["algorithm"]["algocustomdata"] == {"k": 1}
    assert [i["remote"]["txId"] for i in stage["input"]] == [TX, TX2]


@pytest.mark.parametrize(
    ("ddo_change", "algorithm", "bad_tx", "error"),
    [
        ({"raw_allowed": False}, None, None, {"dataset": "no_raw_algo_allowed"}),
        (
            {"trusted": ["did:op:other"]},
            published_algorithm(),
            None,
            {"dataset": "not_trusted_algo"},
        ),
        ({}, None, TX, {"compute-1": "order_invalid"}),
    ],
)
def test_start_refused_by_policy_or_order(
    client: FlaskClient,
    consumer: Consumer,
    engine: rm.Mocker,
    envs: None,
    ddos: FakeDdoResolver,
    orders: FakeOrderVerifier,
    ddo_change: dict[str, Any],
    algorithm: dict[str, Any] | None,
    bad_tx: str | None,
    error: dict[str, str],
) -> None:
    from tests.conftest import dataset_ddo

    ddos.ddos[DATASET_DID] = dataset_ddo(**ddo_change)
    if bad_tx:
        orders.bad.add(bad_tx)
    body = start_body(consumer, **({"algorithm": algorithm} if algorithm else {}))
    reply = client.post(COMPUTE, json=body)
    assert reply.status_code == 400
    assert reply.get_json()["error"] == error
    assert not [r for r in engine.request_history if r.method == "POST"]


def test_status_signed_shows_results(
    client: FlaskClient, consumer: Consumer, engine: rm.Mocker
) -> None:
    results = [
        {"filename": "out.txt", "filesize": 3, "type": "output", "index": 0},
        {"filename": "algorithm.log", "filesize": 9, "type": "algorithmLog", "index": 1},
    ]
    job = engine_job(consumer.address, status=70, results=results, dateFinished="1700000100")
    engine.get(ENGINE_COMPUTE, json=_owner_filtered([job]))
    reply = client.get(COMPUTE, query_string=job_params(consumer))
    assert reply.status_code == 200
    status = reply.get_json()[0]
    assert status["resultsUrls"] == [
        "http://provider.test/api/services/computeResult?consumerAddress="
        f"{consumer.address}&jobId=job1&index=0"
    ]
    assert status["algorithmLogUrl"].endswith("index=1")
    assert status["dateFinished"] == "1700000100"
    query = parse_qs(urlsplit(engine.request_history[-1].url).query)
    assert query["owner"] == [consumer.address] and "providerSignature" in query


def test_stop_and_delete(client: FlaskClient, consumer: Consumer, engine: rm.Mocker) -> None:
    engine.get(ENGINE_COMPUTE, json=_owner_filtered([engine_job(consumer.address, status=40)]))
    engine.put(ENGINE_COMPUTE, json=[engine_job(consumer.address, status=7, stopreq=1)])
    stopped = client.put(COMPUTE, query_string=job_params(consumer))
    assert stopped.status_code == 200 and stopped.get_json()[0]["status"] == 7
    engine.delete(ENGINE_COMPUTE, json=[engine_job(consumer.address, status=8)])
    deleted = client.delete(COMPUTE, json=job_params(consumer))
    assert deleted.status_code == 200 and deleted.get_json()[0]["status"] == 8


def test_delete_against_ocean_operator_that_answers_empty(
    client: FlaskClient, consumer: Consumer, engine: rm.Mocker
) -> None:
    engine.get(ENGINE_COMPUTE, json=_owner_filtered([engine_job(consumer.address, status=70)]))
    engine.delete(ENGINE_COMPUTE, text='""')
    reply = client.delete(COMPUTE, query_string=job_params(consumer))
    assert reply.status_code == 200 and reply.get_json()[0]["status"] == 70


def test_replayed_nonce_is_refused_before_the_engine(
    client: FlaskClient, consumer: Consumer, engine: rm.Mocker
) -> None:
    engine.put(ENGINE_COMPUTE, json=[engine_job(consumer.address, status=7)])
    engine.get(ENGINE_COMPUTE, json=_owner_filtered([engine_job(consumer.address)]))
    params = job_params(consumer)
    assert client.put(COMPUTE, query_string=params).status_code == 200
    replay = client.put(COMPUTE, query_string=params)
    assert (replay.status_code, replay.get_json()["code"]) == (400, "nonce_too_low")
    assert sum(r.method == "PUT" for r in engine.request_history) == 1


def test_nonce_race_exactly_one_request_wins(
    client: FlaskClient, consumer: Consumer, engine: rm.Mocker
) -> None:
    import threading

    engine.get(ENGINE_COMPUTE, json=_owner_filtered([engine_job(consumer.address)]))
    params = job_params(consumer)
    barrier = threading.Barrier(8)
    codes: list[int] = []

    def call() -> None:
        barrier.wait()
        codes.append(client.application.test_client().get(COMPUTE, query_string=params).status_code)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(codes) == [200] + [400] * 7


def test_head_never_consumes_a_nonce(
    client: FlaskClient, consumer: Consumer, engine: rm.Mocker
) -> None:
    engine.get(ENGINE_COMPUTE, json=_owner_filtered([engine_job(consumer.address)]))
    params = job_params(consumer)
    assert client.head(COMPUTE, query_string=params).status_code == 405
    assert client.head(RESULT, query_string=result_params(consumer)).status_code == 405
    assert client.get(COMPUTE, query_string=params).status_code == 200


@pytest.mark.parametrize("method", ["status", "stop", "delete", "result"])
def test_foreign_job_looks_missing(
    client: FlaskClient, consumer: Consumer, other: Consumer, engine: rm.Mocker, method: str
) -> None:
    engine.get(ENGINE_COMPUTE, json=_owner_filtered([engine_job(consumer.address)]))
    for verb in ("put", "delete"):
        getattr(engine, verb)(ENGINE_COMPUTE, json=[engine_job(consumer.address, status=7)])
    engine.get(ENGINE_RESULT, content=b"secret")
    if method == "result":
        reply = client.get(RESULT, query_string=result_params(other))
    else:
        verb = {"status": "get", "stop": "put", "delete": "delete"}[method]
        reply = getattr(client, verb)(COMPUTE, query_string=job_params(other))
    missing = client.get(COMPUTE, query_string=job_params(other, job_id="nope"))
    assert reply.status_code == 404 and missing.status_code == 404
    assert reply.get_json() == missing.get_json() or reply.get_json()["code"] == "job_not_found"
    assert not [r for r in engine.request_history if r.method in ("PUT", "DELETE")]
    assert not [r for r in engine.request_history if "getResult" in r.url]


def test_result_is_streamed_in_chunks(
    client: FlaskClient, consumer: Consumer, engine: rm.Mocker
) -> None:
    size = 32 * 1024 * 1024
    served = {"bytes": 0, "largest_read": 0}

    class Upstream:
        """A 32 MiB body produced on demand; records how the Provider reads it."""

        def read(self, amount: int = -1, **_: Any) -> bytes:
            amount = size - served["bytes"] if amount < 0 else amount
            amount = min(amount, size - served["bytes"])
            served["bytes"] += amount
            served["largest_read"] = max(served["largest_read"], amount)
            return b"x" * amount

        def stream(self, amount: int = 65536, decode_content: bool = True) -> Any:
            while chunk := self.read(amount):
                yield chunk

        closed = False

        def close(self) -> None:
            self.closed = True

    engine.get(ENGINE_COMPUTE, json=_owner_filtered([engine_job(consumer.address)]))
    engine.get(
        ENGINE_RESULT,
        body=Upstream(),
        headers={
            "Content-Type": "text/plain",
            "Content-Disposition": "attachment;filename=out.txt",
        },
    )
    reply = client.get(RESULT, query_string=result_params(consumer), buffered=False)
    assert reply.status_code == 200
    assert reply.headers["Content-Disposition"] == "attachment; filename=out.txt"
    chunks = iter(reply.response)
    first = next(chunks)
    assert 0 < len(first) <= STREAM_CHUNK_BYTES and served["bytes"] < size  # no read-ahead
    total = len(first) + sum(len(chunk) for chunk in chunks)
    reply.close()
    assert total == size and served["largest_read"] <= STREAM_CHUNK_BYTES
    query = parse_qs(urlsplit(engine.request_history[-1].url).query)
    assert query["index"] == ["0"] and "consumerSignature" not in query


def test_result_range_passes_through(
    client: FlaskClient, consumer: Consumer, engine: rm.Mocker
) -> None:
    engine.get(ENGINE_COMPUTE, json=_owner_filtered([engine_job(consumer.address)]))
    engine.get(
        ENGINE_RESULT,
        status_code=206,
        content=b"234",
        headers={"Content-Range": "bytes 2-4/10", "Content-Type": "text/plain"},
    )
    reply = client.get(RESULT, query_string=result_params(consumer), headers={"Range": "bytes=2-4"})
    assert reply.status_code == 206 and reply.data == b"234"
    assert reply.headers["Content-Range"] == "bytes 2-4/10"
    assert engine.request_history[-1].headers["Range"] == "bytes=2-4"


def test_result_index_out_of_range(
    client: FlaskClient, consumer: Consumer, engine: rm.Mocker
) -> None:
    engine.get(ENGINE_COMPUTE, json=_owner_filtered([engine_job(consumer.address)]))
    engine.get(ENGINE_RESULT, status_code=404, json={"error": "No such index 3"})
    reply = client.get(RESULT, query_string=result_params(consumer, index=3))
    assert (reply.status_code, reply.get_json()["code"]) == (404, "result_not_found")


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        ({"exc": requests.ConnectionError}, 503, "operator_unavailable"),
        ({"exc": requests.ConnectTimeout}, 503, "operator_unavailable"),
        ({"exc": requests.ReadTimeout}, 503, "operator_unavailable"),
        ({"status_code": 500, "text": "Traceback: db at postgres://u:p@h"}, 502, "operator_error"),
        ({"status_code": 503, "text": "busy"}, 502, "operator_error"),
        ({"status_code": 200, "text": "<html>"}, 502, "operator_error"),
        ({"status_code": 200, "json": {"unexpected": True}}, 502, "operator_error"),
        ({"status_code": 400, "json": {"error": "Environment invalid"}}, 400, "operator_rejected"),
    ],
)
def test_engine_failures_map_to_clear_errors(
    client: FlaskClient,
    consumer: Consumer,
    engine: rm.Mocker,
    failure: dict[str, Any],
    status: int,
    code: str,
) -> None:
    engine.get(ENGINE_COMPUTE, **failure)
    reply = client.get(COMPUTE, query_string=job_params(consumer))
    assert (reply.status_code, reply.get_json()["code"]) == (status, code)
    assert "postgres" not in reply.get_data(as_text=True)
    assert "engine.test" not in reply.get_data(as_text=True)


def test_idempotent_calls_retry_but_start_does_not(
    client: FlaskClient, consumer: Consumer, engine: rm.Mocker, envs: None
) -> None:
    engine.get(
        ENGINE_COMPUTE,
        [{"exc": requests.ConnectionError}, {"json": [engine_job(consumer.address)]}],
    )
    assert client.get(COMPUTE, query_string=job_params(consumer)).status_code == 200
    engine.post(
        ENGINE_COMPUTE, [{"exc": requests.ReadTimeout}, {"json": [engine_job(consumer.address)]}]
    )
    reply = client.post(COMPUTE, json=start_body(consumer))
    assert reply.status_code == 503
    assert sum(r.method == "POST" for r in engine.request_history) == 1


def test_engine_signatures_use_fresh_increasing_nonces(
    client: FlaskClient, consumer: Consumer, engine: rm.Mocker
) -> None:
    engine.get(ENGINE_COMPUTE, json=_owner_filtered([engine_job(consumer.address)]))
    for _ in range(3):
        client.get(COMPUTE, query_string=job_params(consumer))
    nonces = [int(parse_qs(urlsplit(r.url).query)["nonce"][0]) for r in engine.request_history]
    assert nonces == sorted(set(nonces))
    from eth_account import Account

    last = parse_qs(urlsplit(engine.request_history[-1].url).query)
    verify_signature(
        Account.from_key(PROVIDER_KEY).address,
        f"{consumer.address}job1{last['nonce'][0]}",
        last["providerSignature"][0],
    )


def test_body_in_json_and_query_are_not_merged(
    client: FlaskClient, consumer: Consumer, engine: rm.Mocker
) -> None:
    engine.get(ENGINE_COMPUTE, json=_owner_filtered([engine_job(consumer.address)]))
    reply = client.get(COMPUTE, query_string={"jobId": "job1"}, json=job_params(consumer))
    assert reply.status_code == 400
    assert "consumerAddress" in reply.get_json()["errors"]


def test_large_body_refused(client: FlaskClient) -> None:
    reply = client.post(
        COMPUTE, data=b"{" + b" " * (2 << 20) + b"}", content_type="application/json"
    )
    assert (reply.status_code, reply.get_json()["code"]) == (413, "payload_too_large")


def test_unknown_route_and_method_are_json(client: FlaskClient) -> None:
    assert client.get("/api/services/nope").get_json()["code"] == "not_found"
    reply = client.patch(COMPUTE)
    assert (reply.status_code, reply.get_json()["code"]) == (405, "method_not_allowed")


def test_errors_carry_no_signature(client: FlaskClient, consumer: Consumer) -> None:
    params = job_params(consumer)
    corrupted = bytearray.fromhex(params["signature"].removeprefix("0x"))
    corrupted[40] ^= 0xFF  # a byte of s: recovers someone else, never the consumer
    params["signature"] = "0x" + corrupted.hex()
    reply = client.get(COMPUTE, query_string=params)
    assert reply.status_code == 400 and params["signature"] not in json.dumps(reply.get_json())
