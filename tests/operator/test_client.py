"""OperatorClient against requests-mock: signing, retries and the stale-nonce re-sign."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import requests_mock as rm

from ocean_provider.auth.signing import verify_signature
from ocean_provider.errors import OperatorFailed, OperatorRejected, OperatorUnavailable
from ocean_provider.operator.client import NONCE_RETRIES, OperatorClient
from tests.api.helpers import ENGINE_COMPUTE, engine_job
from tests.conftest import ENGINE_URL, PROVIDER_KEY

OWNER = "0xA78deb2Fa79463945C247991075E2a0e98Ba7A09"
STALE = {"status_code": 400, "json": {"error": "nonce too low", "code": "nonce_too_low"}}


@pytest.fixture
def client() -> OperatorClient:
    return OperatorClient(ENGINE_URL, PROVIDER_KEY, connect_timeout=1, read_timeout=1, backoff=0)


def _check_signed(request: Any, address: str) -> None:
    body = request.json()
    verify_signature(address, f"{body['owner']}{body['nonce']}", body["providerSignature"])


def test_start_is_re_signed_after_a_stale_nonce(client: OperatorClient, engine: rm.Mocker) -> None:
    engine.post(ENGINE_COMPUTE, [STALE, {"json": [engine_job(OWNER)]}])
    (job,) = client.start(OWNER, {"agreementId": "0xtx"})
    assert job.job_id == "job1"
    first, second = (r.json() for r in engine.request_history)
    assert second["nonce"] > first["nonce"]
    assert second["providerSignature"] != first["providerSignature"]
    _check_signed(engine.request_history[1], client.provider_address)


def test_stale_nonce_retries_are_bounded(client: OperatorClient, engine: rm.Mocker) -> None:
    engine.post(ENGINE_COMPUTE, **STALE)
    with pytest.raises(OperatorRejected, match="nonce too low"):
        client.start(OWNER, {"agreementId": "0xtx"})
    assert engine.call_count == 1 + NONCE_RETRIES


def test_other_rejections_are_not_retried(client: OperatorClient, engine: rm.Mocker) -> None:
    engine.post(ENGINE_COMPUTE, status_code=400, json={"error": "bad", "code": "invalid_request"})
    with pytest.raises(OperatorRejected):
        client.start(OWNER, {"agreementId": "0xtx"})
    assert engine.call_count == 1


def test_post_is_never_retried_on_unavailable(client: OperatorClient, engine: rm.Mocker) -> None:
    engine.post(ENGINE_COMPUTE, status_code=503)
    with pytest.raises(OperatorFailed, match="HTTP 503"):
        client.start(OWNER, {"agreementId": "0xtx"})
    assert engine.call_count == 1


def test_status_retries_unavailable_then_succeeds(
    client: OperatorClient, engine: rm.Mocker
) -> None:
    engine.get(ENGINE_COMPUTE, [{"status_code": 503}, STALE, {"json": [engine_job(OWNER)]}])
    (job,) = client.status(OWNER, "job1")
    assert job.status == 1
    nonces = [int(r.qs["nonce"][0]) for r in engine.request_history]
    assert nonces == sorted(set(nonces))  # each attempt signed afresh


def test_connection_errors_become_unavailable(client: OperatorClient, engine: rm.Mocker) -> None:
    engine.get(ENGINE_COMPUTE, exc=requests.ConnectionError)
    with pytest.raises(OperatorUnavailable):
        client.status(OWNER)
    assert engine.call_count == 3
