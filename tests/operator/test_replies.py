"""Engine replies through OperatorClient (requests-mock): mapped errors, bounds, filtering."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests_mock as rm

from ocean_provider.errors import (
    JobNotFound,
    OperatorFailed,
    OperatorRejected,
    ProviderError,
    RangeNotSatisfiable,
    ResultNotFound,
)
from ocean_provider.operator.client import OperatorClient
from tests.api.helpers import ENGINE_COMPUTE, ENGINE_ENVS, ENGINE_RESULT, engine_job
from tests.conftest import ENGINE_URL, PROVIDER_KEY

OWNER = "0xA78deb2Fa79463945C247991075E2a0e98Ba7A09"
OTHER = "0x" + "5" * 40
LEAK = "providerSignature=0x" + "ab" * 65 + " at http://10.0.0.5/secret"


@pytest.fixture
def client() -> OperatorClient:
    return OperatorClient(
        ENGINE_URL,
        PROVIDER_KEY,
        connect_timeout=1,
        read_timeout=1,
        backoff=0,
        max_reply_bytes=1024 * 1024,
    )


@pytest.mark.parametrize(
    ("status", "body", "error", "http", "message"),
    [
        (400, {"error": LEAK, "code": "invalid_request"}, OperatorRejected, 400, "as invalid"),
        (400, {"error": LEAK}, OperatorRejected, 400, "refused the request"),
        (400, {"error": LEAK, "code": "environment_not_found"}, OperatorRejected, 400, "environ"),
        (400, {"error": LEAK, "code": "agreement_in_use"}, OperatorRejected, 400, "already used"),
        (400, {"error": LEAK, "code": "signature_invalid"}, OperatorFailed, 502, "credentials"),
        (401, {"error": LEAK}, OperatorFailed, 502, "credentials"),
        (404, {"error": LEAK}, JobNotFound, 404, "no such job"),
        (413, {"error": LEAK}, OperatorRejected, 400, "too large"),
        (418, LEAK, OperatorRejected, 400, "refused the request"),
        (500, {"error": LEAK}, OperatorFailed, 502, "HTTP 500"),
    ],
)
def test_engine_errors_become_our_fixed_messages(
    client: OperatorClient,
    engine: rm.Mocker,
    status: int,
    body: Any,
    error: type[ProviderError],
    http: int,
    message: str,
) -> None:
    reply = {"json": body} if isinstance(body, dict) else {"text": body}
    engine.get(ENGINE_COMPUTE, status_code=status, **reply)
    with pytest.raises(error) as raised:
        client.status(OWNER, "job1")
    assert raised.value.status == http and message in raised.value.message
    text = json.dumps(raised.value.body())
    assert "providerSignature" not in text and "0xabab" not in text and "10.0.0.5" not in text


@pytest.mark.parametrize(
    "fields",
    [
        {"dateCreated": "nan"},
        {"dateCreated": "inf"},
        {"dateCreated": "-inf"},
        {"dateFinished": "1e300"},
        {"dateCreated": -5},
        {"dateCreated": True},
        {"dateCreated": "yesterday"},
        {"status": 2**70},
        {"status": -1},
        {"status": "seventy"},
        {"stopreq": 2**40},
        {"statusText": "x" * 100_000},
        {"results": [{"index": -1, "filename": "a"}]},
        {"results": [{"filename": "a", "filesize": 2**70}]},
        {"jobId": ""},
    ],
    ids=lambda fields: next(iter(fields)) + "=" + str(next(iter(fields.values())))[:12],
)
def test_out_of_range_job_fields_are_502(
    client: OperatorClient, engine: rm.Mocker, fields: dict[str, Any]
) -> None:
    engine.get(ENGINE_COMPUTE, json=[{**engine_job(OWNER), **fields}])
    with pytest.raises(OperatorFailed) as raised:
        client.status(OWNER, "job1")
    assert raised.value.status == 502


def test_good_dates_and_ocean_statuses_pass(client: OperatorClient, engine: rm.Mocker) -> None:
    job = {**engine_job(OWNER, status=71), "dateFinished": 1700000100, "results": ""}
    engine.get(ENGINE_COMPUTE, json=[job])
    (parsed,) = client.status(OWNER, "job1")
    assert (parsed.status, parsed.date_created, parsed.date_finished) == (
        71,
        1700000000.5,
        1700000100.0,
    )


def test_only_the_jobs_asked_for_are_kept(client: OperatorClient, engine: rm.Mocker) -> None:
    flood = [engine_job(OWNER, "job1")] * 2000 + [
        engine_job(OWNER, "job2"),
        engine_job(OTHER, "job1"),
        engine_job("not an address", "job1"),
    ]
    engine.get(ENGINE_COMPUTE, json=flood)
    (job,) = client.status(OWNER, "job1")
    assert (job.job_id, job.owner) == ("job1", OWNER)


def test_document_filter_and_owner_list(client: OperatorClient, engine: rm.Mocker) -> None:
    jobs = [
        engine_job(OWNER, "a", inputDID=["did:op:1"]),
        engine_job(OWNER, "b", inputDID=["did:op:2"]),
        engine_job(OTHER.lower(), "c", inputDID=["did:op:1"]),
    ]
    engine.get(ENGINE_COMPUTE, json=jobs)
    assert [j.job_id for j in client.status(OWNER, None, "did:op:1")] == ["a"]
    assert [j.job_id for j in client.status(OWNER)] == ["a", "b"]
    assert [j.job_id for j in client.status(OTHER)] == ["c"]  # owner compared checksummed


def test_start_keeps_only_the_owners_jobs(client: OperatorClient, engine: rm.Mocker) -> None:
    engine.post(ENGINE_COMPUTE, json=[engine_job(OTHER, "x"), engine_job(OWNER, "y")])
    assert [j.job_id for j in client.start(OWNER, {"agreementId": "0xtx"})] == ["y"]


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_oversized_reply_is_502_without_reading_it_all(
    client: OperatorClient, engine: rm.Mocker, declared: bool
) -> None:
    sent: list[int] = []

    def body() -> Any:
        for _ in range(60):  # 60 MB, one MB at a time
            sent.append(1)
            yield b" " * (1024 * 1024)

    headers = {"Content-Length": str(60 * 1024 * 1024)} if declared else {}
    engine.get(ENGINE_COMPUTE, body=_Stream(body()), headers=headers)
    with pytest.raises(OperatorFailed, match="over") as raised:
        client.status(OWNER, "job1")
    assert raised.value.status == 502
    assert len(sent) <= 2


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000 + "]" * 100_000, json.dumps([{"jobId": "x", "output": "[" * 10}]) + "[" * 70],
)
def test_deep_or_broken_json_reply_is_502(
    client: OperatorClient, engine: rm.Mocker, text: str
) -> None:
    engine.get(ENGINE_COMPUTE, text=text)
    with pytest.raises(OperatorFailed) as raised:
        client.status(OWNER, "job1")
    assert raised.value.status == 502


def test_environments_are_read_within_the_cap(client: OperatorClient, engine: rm.Mocker) -> None:
    engine.get(ENGINE_ENVS, text="[" + ",".join(['{"id": "e"}'] * 200_000) + "]")
    with pytest.raises(OperatorFailed, match="over"):
        client.environments(8996)


def test_unsatisfiable_range_is_416_with_the_size(
    client: OperatorClient, engine: rm.Mocker
) -> None:
    engine.get(
        ENGINE_RESULT,
        status_code=416,
        headers={"Content-Range": "bytes */4"},
        json={"error": LEAK, "code": "range_not_satisfiable"},
    )
    with pytest.raises(RangeNotSatisfiable) as raised:
        client.result(OWNER, "job1", 0, "bytes=10-20")
    assert (raised.value.status, raised.value.size) == (416, 4)
    assert "providerSignature" not in raised.value.message


def test_missing_result_is_404(client: OperatorClient, engine: rm.Mocker) -> None:
    engine.get(ENGINE_RESULT, status_code=404, json={"error": LEAK})
    with pytest.raises(ResultNotFound):
        client.result(OWNER, "job1", 0, None)


def test_result_call_sends_no_consumer_signature(client: OperatorClient, engine: rm.Mocker) -> None:
    engine.get(ENGINE_RESULT, content=b"data")
    stream = client.result(OWNER, "job1", 2, "bytes=0-1")
    assert b"".join(stream.chunks()) == b"data"
    (sent,) = engine.request_history
    assert set(sent.qs) == {
        "owner",
        "jobid",
        "index",
        "provideraddress",
        "providersignature",
        "nonce",
    }
    assert sent.headers["Range"] == "bytes=0-1"


@pytest.mark.parametrize(
    "name",
    [
        "semi;colon.txt",
        'x";filename=evil.html',
        "a b.txt",
        "café.txt",
        "plain.txt",
        'naïve "q".csv',
    ],
)
def test_result_file_names_survive_rfc6266_quoting(
    client: OperatorClient, engine: rm.Mocker, name: str
) -> None:
    from werkzeug.datastructures import Headers

    headers = Headers()
    headers.set("Content-Disposition", "attachment", **_names(name))
    engine.get(
        ENGINE_RESULT, content=b"x", headers={"Content-Disposition": headers["Content-Disposition"]}
    )
    assert client.result(OWNER, "job1", 0, None).filename == name


def test_result_file_name_cannot_carry_a_path(client: OperatorClient, engine: rm.Mocker) -> None:
    engine.get(
        ENGINE_RESULT,
        content=b"x",
        headers={"Content-Disposition": 'attachment; filename="../etc/passwd"'},
    )
    assert client.result(OWNER, "job1", 0, None).filename == ".._etc_passwd"


def _names(name: str) -> dict[str, str]:
    """What werkzeug's send_file sets (the engine's getResult)."""
    from urllib.parse import quote

    try:
        name.encode("ascii")
    except UnicodeEncodeError:
        return {"filename": "fallback.txt", "filename*": "UTF-8''" + quote(name, safe="")}
    return {"filename": name}


class _Stream:
    """A file-like body for requests-mock that yields its chunks lazily."""

    closed = False

    def __init__(self, chunks: Any) -> None:
        self._chunks = chunks
        self._buffer = b""

    def read(self, amount: int = -1, **_: Any) -> bytes:
        while amount < 0 or len(self._buffer) < amount:
            try:
                self._buffer += next(self._chunks)
            except StopIteration:
                break
        if amount < 0:
            amount = len(self._buffer)
        out, self._buffer = self._buffer[:amount], self._buffer[amount:]
        return out

    def close(self) -> None:
        pass
