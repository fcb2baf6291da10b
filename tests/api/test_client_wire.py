"""Ocean's clients, byte for byte: each row replays a client's own request for one call.

Paths come from ``GET /``'s ``serviceEndpoints`` as the clients look them up;
parameter names and places, signed texts and nonce forms are the clients' own:
ocean.js 3.4.6 (``ProviderInstance`` in ``src/services/Provider.ts``) and ocean.py
3.1.2 (``DataServiceProvider``). Both hash forms are signed: the 32-byte keccak,
and the same with its leading zero bytes dropped (later ocean.js), with a nonce
chosen so that the hash does start with a zero byte (ocean.js's stop signs no nonce,
so there both forms sign the same bytes).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import requests_mock as rm
from eth_account import Account
from eth_account.messages import encode_defunct
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from ocean_provider.auth.signing import message_hash
from tests.api.helpers import ENGINE_COMPUTE, ENGINE_RESULT, engine_job
from tests.conftest import DATASET_DID, Consumer

JOB = "a3c1d7e08f2b4c6d9e0f1a2b3c4d5e6f"
HASH_FORMS = ("full", "stripped")
Send = Callable[[], TestResponse]


@pytest.fixture
def engine_with_job(engine: rm.Mocker, consumer: Consumer) -> rm.Mocker:
    job = engine_job(consumer.address, JOB, status=70, results=[{"filename": "out.txt"}])
    engine.get(ENGINE_COMPUTE, json=[job])
    engine.put(ENGINE_COMPUTE, json=[{**job, "status": 7, "statusText": "Job stopped"}])
    engine.delete(ENGINE_COMPUTE, json=[{**job, "status": 8}])
    engine.get(ENGINE_RESULT, content=b"result bytes")
    return engine


def _endpoint(client: FlaskClient, name: str) -> str:
    method, path = client.get("/").get_json()["serviceEndpoints"][name]
    return str(path)


def _stored_nonce(client: FlaskClient, consumer: Consumer) -> str:
    path = _endpoint(client, "nonce")
    return str(client.get(path, query_string={"userAddress": consumer.address}).get_json()["nonce"])


def _sign(consumer: Consumer, text: str, form: str) -> str:
    digest = message_hash(text)
    payload = digest.lstrip(b"\x00") if form == "stripped" else digest
    signed = Account.sign_message(encode_defunct(primitive=payload), private_key=consumer.key)
    return "0x" + bytes(signed.signature).hex()


def _nonce_after(stored: int, prefix: str, form: str) -> int:
    """The next nonce, or for the stripped form the first one above ``stored`` whose
    hash of ``prefix + nonce`` starts with a zero byte (so that the forms differ)."""
    nonce = stored + 1
    while form == "stripped" and message_hash(f"{prefix}{nonce}")[0] != 0:
        nonce += 1
    return nonce


def _set_stored(client: FlaskClient, consumer: Consumer, value: int) -> None:
    """Move the address's stored nonce (what earlier calls of this client would have done)."""
    store = client.application.extensions["ocean_provider"].auth.nonces
    store.consume(consumer.address, Decimal(value), message_hash(f"earlier calls {value}"))


# --- ocean.js 3.4.6 ---------------------------------------------------------------------------


def ocean_js(client: FlaskClient, consumer: Consumer, call: str, form: str) -> Send:
    address = consumer.address
    stored = int(Decimal(_stored_nonce(client, consumer)))  # Number(nonce)
    if call == "status":  # unsigned: consumerAddress and jobId in the query
        path = _endpoint(client, "computeStatus")
        return lambda: client.get(f"{path}?consumerAddress={address}&jobId={JOB}")
    if call == "stop":  # signs consumerAddress + jobId; sends the nonce unsigned
        path = _endpoint(client, "computeStop")
        body = {
            "signature": _sign(consumer, f"{address}{JOB}", form),
            "agreementId": "",
            "consumerAddress": address,
            "nonce": str(stored + 1),
            "jobId": JOB,
        }
        return lambda: client.put(path, json=body)
    if call == "delete":  # signs with the next nonce, sends none
        path = _endpoint(client, "computeDelete")
        prefix = f"{address}{JOB}{DATASET_DID}"
        nonce = _nonce_after(stored, prefix, form)
        if nonce != stored + 1:
            _set_stored(client, consumer, nonce - 1)
        body = {
            "documentId": DATASET_DID,
            "consumerAddress": address,
            "jobId": JOB,
            "signature": _sign(consumer, f"{prefix}{nonce}", form),
        }
        return lambda: client.delete(path, json=body)
    assert call == "result"
    path = _endpoint(client, "computeResult")
    nonce = _nonce_after(stored, f"{address}{JOB}0", form)
    signature = _sign(consumer, f"{address}{JOB}0{nonce}", form)
    url = (
        f"{path}?consumerAddress={address}&jobId={JOB}&index=0&nonce={nonce}&signature={signature}"
    )
    return lambda: client.get(url)


# --- ocean.py 3.1.2 ---------------------------------------------------------------------------


def ocean_py(client: FlaskClient, consumer: Consumer, call: str, form: str) -> Send:
    address = consumer.address
    stored = math.ceil(Decimal(_stored_nonce(client, consumer)))  # ceil(N) + 1
    if call == "result":
        path = _endpoint(client, "computeResult")
        nonce = _nonce_after(stored, f"{address}{JOB}0", form)
        query = {
            "signature": _sign(consumer, f"{address}{JOB}0{nonce}", form),
            "nonce": str(nonce),
            "jobId": JOB,
            "index": "0",
            "consumerAddress": address,
        }
        return lambda: client.get(path, query_string=query)
    name = {"status": "computeStatus", "stop": "computeStop", "delete": "computeDelete"}[call]
    path = _endpoint(client, name)
    prefix = f"{address}{JOB}{DATASET_DID}"
    nonce = _nonce_after(stored, prefix, form)
    query = {
        "consumerAddress": address,
        "documentId": DATASET_DID,
        "jobId": JOB,
        "nonce": str(nonce),
        "signature": _sign(consumer, f"{prefix}{nonce}", form),
    }
    verb = {"status": client.get, "stop": client.put, "delete": client.delete}[call]
    return lambda: verb(path, query_string=query)


EXPECTED = {"status": 70, "stop": 7, "delete": 8}


@pytest.mark.parametrize("form", HASH_FORMS)
@pytest.mark.parametrize("call", ["status", "stop", "delete", "result"])
@pytest.mark.parametrize("wire", [ocean_js, ocean_py], ids=["ocean.js", "ocean.py"])
def test_client_call_as_sent(
    client: FlaskClient,
    consumer: Consumer,
    engine_with_job: rm.Mocker,
    wire: Callable[[FlaskClient, Consumer, str, str], Send],
    call: str,
    form: str,
) -> None:
    send = wire(client, consumer, call, form)
    reply = send()
    assert reply.status_code == 200, reply.get_data(as_text=True)
    if call == "result":
        assert reply.get_data() == b"result bytes"
    else:
        body: Any = reply.get_json()
        job = body[0] if isinstance(body, list) else body
        assert (job["jobId"], job["status"]) == (JOB, EXPECTED[call])
        assert {"results", "dateCreated", "owner"} <= set(job)
    if wire is ocean_js and call == "status":
        return  # unsigned: nothing to replay
    replay = send()  # the same signed request again: its nonce is spent
    assert replay.status_code == 400
    assert replay.get_json()["code"] in {"nonce_too_low", "signature_invalid"}


def test_ocean_js_stop_needs_a_fresh_nonce(
    client: FlaskClient, consumer: Consumer, engine_with_job: rm.Mocker
) -> None:
    """The nonce is not signed in this form, but it is still checked and consumed."""
    stale = ocean_js(client, consumer, "stop", "full")
    assert stale().status_code == 200
    again = stale()  # same body, same nonce
    assert (again.status_code, again.get_json()["code"]) == (400, "nonce_too_low")
    fresh = ocean_js(client, consumer, "stop", "full")  # a new nonce, the same signature
    assert fresh().status_code == 200  # stopping twice is harmless


def test_ocean_js_delete_with_another_nonce_is_refused(
    client: FlaskClient, consumer: Consumer, engine_with_job: rm.Mocker
) -> None:
    address = consumer.address
    stored = int(Decimal(_stored_nonce(client, consumer)))
    wrong = _sign(consumer, f"{address}{JOB}{DATASET_DID}{stored + 2}", "full")
    body = {"documentId": DATASET_DID, "consumerAddress": address, "jobId": JOB}
    reply = client.delete(_endpoint(client, "computeDelete"), json={**body, "signature": wrong})
    assert (reply.status_code, reply.get_json()["code"]) == (400, "signature_invalid")
    assert not [r for r in engine_with_job.request_history if r.method == "DELETE"]
