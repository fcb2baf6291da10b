"""OperatorClient against requests-mock: signing, retries and the stale-nonce re-sign."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import requests_mock as rm

from ocean_provider.auth.signing import verify_signature
from ocean_provider.errors import OperatorFailed, OperatorRejected, OperatorUnavailable
from ocean_provider.operator.client import NONCE_RETRIES, OperatorClient
from ocean_provider.wire.request_signature import HEADER, verify_request
from tests.api.helpers import ENGINE_COMPUTE, engine_job
from tests.conftest import ENGINE_URL, PROVIDER_KEY

OWNER = "0xA78deb2Fa79463945C247991075E2a0e98Ba7A09"
STALE = {"status_code": 400, "json": {"error": "nonce too low", "code": "nonce_too_low"}}
# Ocean's Operator-Service: text only, no code, on GET/PUT/getResult
OCEAN_STALE = {
    "status_code": 400,
    "json": {"error": "Invalid signature expected nonce (5) > current nonce (4)."},
}


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


def test_stale_nonce_retries_are_bounded_and_a_server_fault(
    client: OperatorClient, engine: rm.Mocker
) -> None:
    """Re-signs exhausted is the server's failure (503), never the caller's 400."""
    engine.post(ENGINE_COMPUTE, **STALE)
    with pytest.raises(OperatorUnavailable) as raised:
        client.start(OWNER, {"agreementId": "0xtx"})
    assert raised.value.status == 503
    assert engine.call_count == 1 + NONCE_RETRIES


def test_ocean_style_nonce_refusal_is_re_signed(client: OperatorClient, engine: rm.Mocker) -> None:
    engine.get(ENGINE_COMPUTE, [OCEAN_STALE, OCEAN_STALE, {"json": [engine_job(OWNER)]}])
    (job,) = client.status(OWNER, "job1")
    assert job.job_id == "job1" and engine.call_count == 3


@pytest.mark.parametrize("status", [500, 502, 503])
def test_engine_5xx_is_a_server_fault(
    client: OperatorClient, engine: rm.Mocker, status: int
) -> None:
    engine.get(ENGINE_COMPUTE, status_code=status, text="Traceback: providerSignature=0xabc")
    with pytest.raises((OperatorFailed, OperatorUnavailable)) as raised:
        client.status(OWNER, "job1")
    assert raised.value.status in (502, 503) and "0xabc" not in raised.value.message


@pytest.mark.parametrize(
    ("method", "call", "body"),
    [
        ("GET", lambda c: c.status(OWNER, "job1", "did:op:x y"), b""),
        ("PUT", lambda c: c.stop(OWNER, "job1", None), b""),
        ("DELETE", lambda c: c.delete(OWNER, "job1", None), b""),
        ("POST", lambda c: c.start(OWNER, {"agreementId": "0xtx", "x": "é&="}), None),
    ],
)
def test_every_call_carries_a_request_signature_over_what_was_sent(
    client: OperatorClient, engine: rm.Mocker, method: str, call: Any, body: bytes | None
) -> None:
    engine.register_uri(method, ENGINE_COMPUTE, json=[engine_job(OWNER)])
    call(client)
    (sent,) = engine.request_history
    raw = sent.body if body is None else body
    raw = raw.encode() if isinstance(raw, str) else raw
    nonce = str(sent.json()["nonce"]) if method == "POST" else sent.qs["nonce"][0]
    url = requests.utils.urlparse(sent.url)
    verify_request(
        client.provider_address,
        sent.headers[HEADER],
        method=method,
        path=url.path,
        query=url.query,
        body=raw or b"",
        nonce=nonce,
    )
    assert "providerSignature" not in str(sent.headers)


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


def test_signatures_never_reach_the_logs(
    client: OperatorClient, engine: rm.Mocker, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    engine.get(ENGINE_COMPUTE, [STALE, {"json": [engine_job(OWNER)]}])
    with caplog.at_level(logging.DEBUG):
        client.status(OWNER, "job1")
        logging.getLogger("urllib3.connectionpool").debug(
            '%s "%s %s"', "http://e", "GET", "/api/v1/operator/compute?providerSignature=0xab"
        )
    ours = [r for r in caplog.records if not r.name.startswith("requests_mock")]  # the fake's
    text = "\n".join(r.getMessage() for r in ours).lower()
    assert ours
    for sent in engine.request_history:
        for secret in (sent.qs["providersignature"][0], sent.headers[HEADER].lower()):
            assert secret[2:12] not in text
    assert "0xab" not in text
