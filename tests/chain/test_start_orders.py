"""initializeCompute, an order on anvil with its fee, then POST /compute: end to end.

The Provider runs with its real chain parts (fee issuer, order verifier, order
ledger in SQLite) against anvil; the DDO is faked (DDO resolution is a later
issue) and the engine is a requests-mock stub.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests_mock as rm
from flask import Flask
from flask.testing import FlaskClient

from ocean_provider.app import create_app
from ocean_provider.auth.messages import start_message
from ocean_provider.devnet.assets import ProviderFee, start_order
from tests.api.helpers import ENGINE_COMPUTE, ENGINE_ENVS, engine_job, raw_algorithm
from tests.chain.conftest import Market, datatoken_of
from tests.conftest import Consumer, FakeDdoResolver, make_settings

pytestmark = pytest.mark.integration

INITIALIZE = "/api/services/initializeCompute"
COMPUTE = "/api/services/compute"


@pytest.fixture
def engine(market: Market) -> Iterator[rm.Mocker]:
    with rm.Mocker(real_http=True) as mocker:  # the chain's RPC goes through for real
        mocker.get(ENGINE_ENVS, json=[market.environment])
        yield mocker


@pytest.fixture
def provider(tmp_path: Path, market: Market, engine: rm.Mocker) -> Flask:
    settings = make_settings(
        tmp_path,
        NETWORK_URL=market.chain.url,
        PROVIDER_PRIVATE_KEY=market.chain.provider_key,
        ORDER_WAIT="0.3",
    )
    ddos = FakeDdoResolver({market.asset.did: dict(market.asset.ddo)})
    return create_app(settings, ddos=ddos)


@pytest.fixture
def client(provider: Flask) -> FlaskClient:
    return provider.test_client()


@pytest.fixture
def buyer(market: Market) -> Consumer:
    return Consumer(market.chain.consumer_key)


def engine_starts(engine: rm.Mocker) -> list[Any]:
    """The engine's POST requests (the mocker also records the RPC calls it lets through)."""
    return [r for r in engine.request_history if r.method == "POST" and r.url == ENGINE_COMPUTE]


def initialize(
    client: FlaskClient, market: Market, valid_until: int | None = None, **dataset: Any
) -> Any:
    body = {
        "datasets": [{"documentId": market.asset.did, "serviceId": "compute-1", **dataset}],
        "algorithm": raw_algorithm(),
        "compute": {
            "env": market.environment["id"],
            "validUntil": valid_until or int(time.time()) + 3600,
        },
        "consumerAddress": market.chain.consumer,
    }
    return client.post(INITIALIZE, json=body)


def buy(client: FlaskClient, market: Market, consumer: str | None = None) -> str:
    """Initialize, then order as the consumer pays (for ``consumer``, the buyer by default)."""
    reply = initialize(client, market)
    assert reply.status_code == 200, reply.get_json()
    (item,) = reply.get_json()["datasets"]
    assert item["datatoken"] == datatoken_of(market.asset)
    fee: ProviderFee = item["providerFee"]
    return start_order(
        market.chain.w3,
        item["datatoken"],
        market.chain.consumer_key,
        consumer=consumer or market.chain.consumer,
        service_index=1,
        provider_fee=fee,
    )


def start(client: FlaskClient, market: Market, buyer: Consumer, tx: str) -> Any:
    nonce = buyer.nonce()
    body = {
        "consumerAddress": buyer.address,
        "nonce": nonce,
        "signature": buyer.sign(start_message(buyer.address, market.asset.did), nonce),
        "environment": market.environment["id"],
        "dataset": {"documentId": market.asset.did, "serviceId": "compute-1", "transferTxId": tx},
        "algorithm": raw_algorithm(),
    }
    return client.post(COMPUTE, json=body)


def test_initialize_order_start(
    client: FlaskClient, market: Market, buyer: Consumer, engine: rm.Mocker
) -> None:
    engine.post(ENGINE_COMPUTE, json=[engine_job(buyer.address)])
    tx = buy(client, market)
    reply = start(client, market, buyer, tx)
    assert reply.status_code == 200, reply.get_json()
    (sent,) = [request.json() for request in engine_starts(engine)]
    assert sent["agreementId"] == tx and sent["validUntil"] > time.time()
    assert sent["workflow"]["stages"][0]["input"][0]["remote"]["txId"] == tx


def test_an_order_starts_one_job_only(
    client: FlaskClient, market: Market, buyer: Consumer, engine: rm.Mocker
) -> None:
    engine.post(ENGINE_COMPUTE, json=[engine_job(buyer.address)])
    tx = buy(client, market)
    assert start(client, market, buyer, tx).status_code == 200
    again = start(client, market, buyer, tx)
    assert again.status_code == 400
    assert again.get_json()["error"] == {"dataset.transferTxId": "order_already_used"}
    assert len(engine_starts(engine)) == 1


def test_a_failed_engine_call_does_not_burn_the_order(
    client: FlaskClient, market: Market, buyer: Consumer, engine: rm.Mocker
) -> None:
    engine.post(
        ENGINE_COMPUTE,
        [{"status_code": 503, "json": {"error": "busy"}}, {"json": [engine_job(buyer.address)]}],
    )
    tx = buy(client, market)
    assert start(client, market, buyer, tx).status_code >= 500
    assert start(client, market, buyer, tx).status_code == 200


def test_two_concurrent_starts_with_one_order(
    provider: Flask, market: Market, buyer: Consumer, engine: rm.Mocker
) -> None:
    engine.post(ENGINE_COMPUTE, json=lambda request, _: [engine_job(request.json()["owner"])])
    friend = Consumer(market.chain.other_consumer_key)
    tx = buy(provider.test_client(), market, consumer=friend.address)  # both may start it
    barrier = threading.Barrier(2)
    codes: list[Any] = []

    def attempt(signer: Consumer) -> None:
        client = provider.test_client()
        barrier.wait()
        reply = start(client, market, signer, tx)
        body = reply.get_json()
        codes.append((reply.status_code, body.get("code") if isinstance(body, dict) else None))

    threads = [threading.Thread(target=attempt, args=(c,)) for c in (buyer, friend)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes, key=str) == [(200, None), (400, "order_already_used")]
    assert len(engine_starts(engine)) == 1


def test_a_stranger_cannot_start_with_someone_elses_order(
    client: FlaskClient, market: Market, engine: rm.Mocker
) -> None:
    tx = buy(client, market)
    stranger = Consumer(market.chain.other_consumer_key)
    reply = start(client, market, stranger, tx)
    assert reply.status_code == 400
    assert reply.get_json()["error"] == {"dataset.transferTxId": "order_wrong_consumer"}


def test_initialize_returns_the_still_valid_order(client: FlaskClient, market: Market) -> None:
    tx = buy(client, market)
    covered = int(time.time()) + 3000  # the order's fee runs to about now + 3600
    reply = initialize(client, market, valid_until=covered, transferTxId=tx)
    assert reply.get_json() == {"datasets": [{"validOrder": tx}]}


def test_initialize_asks_for_a_new_fee_when_the_order_falls_short(
    client: FlaskClient, market: Market
) -> None:
    tx = buy(client, market)
    body = {
        "datasets": [
            {"documentId": market.asset.did, "serviceId": "compute-1", "transferTxId": tx}
        ],
        "algorithm": raw_algorithm(),
        "compute": {"env": market.environment["id"], "validUntil": int(time.time()) + 7200},
        "consumerAddress": market.chain.consumer,
    }
    (item,) = client.post(INITIALIZE, json=body).get_json()["datasets"]
    assert (
        item["validOrder"] == tx
        and item["providerFee"]["validUntil"] == body["compute"]["validUntil"]
    )


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"compute": {"env": "env-1", "validUntil": 1}}, 400, "invalid_request"),
        ({"compute": {"env": "nope", "validUntil": 2**40}}, 400, "environment_not_found"),
        ({"datasets": []}, 400, "invalid_request"),
        ({"datasets": [{"documentId": "did:op:x", "serviceId": "s"}]}, 400, "did_not_found"),
        ({"consumerAddress": "0x12"}, 400, "invalid_request"),
    ],
)
def test_initialize_refusals(
    client: FlaskClient, market: Market, change: dict[str, Any], status: int, code: str
) -> None:
    body = {
        "datasets": [{"documentId": market.asset.did, "serviceId": "compute-1"}],
        "algorithm": raw_algorithm(),
        "compute": {"env": market.environment["id"], "validUntil": int(time.time()) + 3600},
        "consumerAddress": market.chain.consumer,
        **change,
    }
    reply = client.post(INITIALIZE, json=body)
    assert (reply.status_code, reply.get_json()["code"]) == (status, code)


def test_root_lists_initialize_compute(client: FlaskClient) -> None:
    endpoints = client.get("/").get_json()["serviceEndpoints"]
    assert endpoints["initializeCompute"] == ["POST", INITIALIZE]
