"""Bad input to the engine's API: a precise 400 with a stable code, nothing stored, no 500."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import requests

from ocean_provider.devnet.embedded import EmbeddedEngine
from ocean_provider.errors import OperatorRejected
from tests.engine.jobs import OWNER, workflow

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("data_url")]
OPERATOR = "/api/v1/operator"
STAGE = "workflow.stages.0"
_DROP = object()  # a change that removes the field


def _start_body(engine: EmbeddedEngine, **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(workflow("print(1)", "DATA_URL"))
    body.update(owner=OWNER, **engine.client._signed(OWNER, None))
    for path, value in changes.items():
        *parents, last = path.split(".")
        node: Any = body
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is _DROP:
            del node[last]
        else:
            node[last] = value
    return body


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"owner": "xyz"}, "owner"),
        ({"owner": 5}, "owner"),
        ({"agreementId": ["a"]}, "agreementId"),
        ({"agreementId": ""}, "agreementId"),
        ({"environment": _DROP}, "environment"),
        ({"nonce": "soon"}, "nonce"),
        ({"workflow": "stages"}, "workflow"),
        ({"workflow.stages": []}, "workflow.stages"),
        ({f"{STAGE}.input": 5}, f"{STAGE}.input"),
        ({f"{STAGE}.input": []}, f"{STAGE}.input"),
        ({f"{STAGE}.input.0.files": []}, f"{STAGE}.input.0.files"),
        ({f"{STAGE}.input.0.id": _DROP}, f"{STAGE}.input.0.id"),
        ({f"{STAGE}.input.0.id": "../../etc"}, f"{STAGE}.input.0.id"),
        ({f"{STAGE}.input.0.id": "did:op:a/b"}, f"{STAGE}.input.0.id"),
        ({f"{STAGE}.algorithm.rawcode": ""}, f"{STAGE}.algorithm"),
        ({f"{STAGE}.algorithm.container": _DROP}, f"{STAGE}.algorithm.container"),
        ({f"{STAGE}.algorithm.container.image": ""}, f"{STAGE}.algorithm.container.image"),
        ({f"{STAGE}.output": _DROP}, f"{STAGE}.output"),
    ],
    ids=lambda v: ",".join(v) if isinstance(v, dict) else None,
)
def test_bad_start_bodies(
    running_engine: EmbeddedEngine, changes: dict[str, Any], field: str
) -> None:
    body = _start_body(running_engine, **changes)
    reply = requests.post(running_engine.url + f"{OPERATOR}/compute", json=body, timeout=10)
    assert reply.status_code == 400, reply.text
    assert reply.json()["code"] == "invalid_request"
    assert field in reply.json()["errors"], reply.json()["errors"]
    assert running_engine.context.store.find(OWNER, None, None) == []


def test_the_same_input_twice(running_engine: EmbeddedEngine) -> None:
    body = _start_body(running_engine)
    stage = body["workflow"]["stages"][0]
    stage["input"].append(copy.deepcopy(stage["input"][0]))
    reply = requests.post(running_engine.url + f"{OPERATOR}/compute", json=body, timeout=10)
    assert (reply.status_code, reply.json()["code"]) == (400, "invalid_request")
    assert STAGE in reply.json()["errors"]


def test_unknown_environment(running_engine: EmbeddedEngine) -> None:
    """A well-formed, fully signed start (the client adds the request header) for an
    environment the engine does not have."""
    payload = {**workflow("print(1)", "DATA_URL"), "environment": "gpu-cluster"}
    with pytest.raises(OperatorRejected) as caught:
        running_engine.client.start(OWNER, payload)
    assert caught.value.status == 400
    assert caught.value.message == "the compute environment does not exist"
    assert running_engine.context.store.find(OWNER, None, None) == []


@pytest.mark.parametrize(
    ("method", "path", "params", "field"),
    [
        ("GET", "compute", {"owner": "0x12"}, "owner"),
        ("GET", "compute", {}, "owner"),
        ("GET", "compute", {"owner": OWNER, "jobId": "j" * 300}, "jobId"),
        ("PUT", "compute", {"owner": "not an address"}, "owner"),
        ("DELETE", "compute", {"owner": OWNER}, "jobId"),
        ("GET", "getResult", {"owner": OWNER, "jobId": "j", "index": "\u00b2"}, "index"),
        ("GET", "getResult", {"owner": OWNER, "jobId": "j", "index": "-1"}, "index"),
        ("GET", "getResult", {"owner": OWNER, "index": "0"}, "jobId"),
    ],
)
def test_bad_queries(
    running_engine: EmbeddedEngine, method: str, path: str, params: dict[str, str], field: str
) -> None:
    url = running_engine.url + f"{OPERATOR}/{path}"
    reply = requests.request(method, url, params=params, timeout=10)
    assert reply.status_code == 400, reply.text
    assert reply.json()["code"] == "invalid_request"
    assert field in reply.json()["errors"]


def test_unsigned_and_bad_json_bodies(running_engine: EmbeddedEngine) -> None:
    url = running_engine.url + f"{OPERATOR}/compute"
    unsigned = _start_body(running_engine, providerSignature=_DROP)
    reply = requests.post(url, json=unsigned, timeout=10)
    assert (reply.status_code, reply.json()["code"]) == (400, "signature_missing")
    for raw in ("{bad", "[]", "null"):
        reply = requests.post(url, data=raw, headers={"Content-Type": "application/json"})
        assert (reply.status_code, reply.json()["code"]) == (400, "invalid_request")
