"""ProviderClient against requests-mock: each call's wire form, its signature (checked with the
Provider's own verifier), reply parsing and error mapping."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import requests_mock as rm

from ocean_provider.auth.messages import job_message, result_message, start_message
from ocean_provider.auth.signing import MessageSigner, verify_signature
from ocean_provider.chain.fees import sign_fee
from ocean_provider.client import (
    Job,
    Ordered,
    ProviderClient,
    ProviderRefused,
    ProviderReplyInvalid,
    RawAlgorithm,
    ServiceRef,
)
from ocean_provider.compute.status import status_object
from ocean_provider.wire.jobs import OperatorJob
from tests.api.helpers import engine_job
from tests.conftest import ALGO_DID, ALGO_TX, CONSUMER_KEY, DATASET_DID, PROVIDER_KEY, TX

PROVIDER = "http://provider.test"
SERVICES = PROVIDER + "/api/services"
CONTAINER = {"entrypoint": "python $ALGO", "image": "python", "tag": "3.11"}
STORED_NONCE = 1_000


@pytest.fixture
def http() -> Iterator[rm.Mocker]:
    with rm.Mocker() as mocker:
        mocker.get(SERVICES + "/nonce", json={"nonce": str(STORED_NONCE)})
        yield mocker


@pytest.fixture
def client() -> ProviderClient:
    clock = itertools.count(500).__next__  # behind the stored nonce: the client must step over it
    return ProviderClient(PROVIDER, CONSUMER_KEY, clock=clock)


def status(client: ProviderClient, job_id: str = "job1", **extra: Any) -> list[dict[str, Any]]:
    job = OperatorJob.model_validate(engine_job(client.address, job_id, **extra))
    return [status_object(job, PROVIDER)]


def query(request: Any) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(request.url).query).items()}


def last(http: rm.Mocker) -> Any:
    """The last request the fake answered."""
    assert http.last_request is not None
    return http.last_request


def assert_signed(client: ProviderClient, message: str, params: dict[str, Any]) -> None:
    assert params["consumerAddress"] == client.address
    verify_signature(client.address, message + str(params["nonce"]), params["signature"])


def test_nonce_is_the_providers_stored_nonce(http: rm.Mocker, client: ProviderClient) -> None:
    http.get(SERVICES + "/nonce", json={"nonce": "1644315615.24"})
    assert client.nonce() == Decimal("1644315615.24")
    assert query(last(http)) == {"userAddress": client.address}


def test_signed_calls_use_increasing_nonces_above_the_stored_one(
    http: rm.Mocker, client: ProviderClient
) -> None:
    http.get(SERVICES + "/compute", json=status(client))
    client.status("job1")
    client.status("job1")
    nonces = [query(r)["nonce"] for r in http.request_history if r.path.endswith("/compute")]
    assert nonces == [str(STORED_NONCE + 1), str(STORED_NONCE + 2)]
    assert sum(r.path.endswith("/nonce") for r in http.request_history) == 1  # asked once


def test_nonces_follow_the_clock_once_it_is_ahead(http: rm.Mocker) -> None:
    clock = iter([5_000, 5_000, 7_000]).__next__
    client = ProviderClient(PROVIDER, CONSUMER_KEY, clock=clock)
    http.get(SERVICES + "/compute", json=status(client))
    for _ in range(3):
        client.status("job1")
    nonces = [query(r)["nonce"] for r in http.request_history if r.path.endswith("/compute")]
    assert nonces == ["5000", "5001", "7000"]


def test_environments(http: rm.Mocker, client: ProviderClient) -> None:
    http.get(SERVICES + "/computeEnvironments", json=[{"id": "ocean-compute"}])
    assert client.environments(8996) == [{"id": "ocean-compute"}]
    assert query(last(http)) == {"chainId": "8996"}


def test_initialize_sends_the_assets_and_parses_fees(
    http: rm.Mocker, client: ProviderClient
) -> None:
    fee = sign_fee(MessageSigner(PROVIDER_KEY), "0x" + "0" * 40, 0, 1_900_000_000, b'{"x":1}')
    datatoken = "0x" + "d" * 40
    http.post(
        SERVICES + "/initializeCompute",
        json={
            "datasets": [{"datatoken": datatoken, "providerFee": fee.to_json()}],
            "algorithm": {"validOrder": ALGO_TX},
        },
    )
    fees = client.initialize(
        [ServiceRef(DATASET_DID, "compute")],
        ServiceRef(ALGO_DID, "access", ALGO_TX),
        "ocean-compute",
        1_900_000_000,
    )
    assert last(http).json() == {
        "datasets": [{"documentId": DATASET_DID, "serviceId": "compute"}],
        "algorithm": {"documentId": ALGO_DID, "serviceId": "access", "transferTxId": ALGO_TX},
        "compute": {"env": "ocean-compute", "validUntil": 1_900_000_000},
        "consumerAddress": client.address,
    }
    (dataset,) = fees.datasets
    assert (dataset.datatoken, dataset.provider_fee, dataset.valid_order) == (datatoken, fee, None)
    assert fees.algorithm is not None
    assert (fees.algorithm.provider_fee, fees.algorithm.valid_order) == (None, ALGO_TX)


def test_start_signs_consumer_and_dataset(http: rm.Mocker, client: ProviderClient) -> None:
    http.post(SERVICES + "/compute", json=status(client))
    algorithm = RawAlgorithm(CONTAINER, rawcode="print(1)")
    extra = Ordered(ALGO_DID, "compute", ALGO_TX, userdata={"k": 1})
    job = client.start(Ordered(DATASET_DID, "compute", TX), algorithm, "ocean-compute", [extra])
    body = last(http).json()
    assert_signed(client, start_message(client.address, DATASET_DID), body)
    assert body["environment"] == "ocean-compute"
    assert body["dataset"] == {
        "documentId": DATASET_DID,
        "serviceId": "compute",
        "transferTxId": TX,
    }
    assert body["algorithm"] == {"meta": {"container": CONTAINER, "rawcode": "print(1)"}}
    assert body["additionalDatasets"] == [
        {
            "documentId": ALGO_DID,
            "serviceId": "compute",
            "transferTxId": ALGO_TX,
            "userdata": {"k": 1},
        }
    ]
    assert (job.job_id, job.owner, job.status, job.finished) == ("job1", client.address, 1, False)
    assert job.input_dids == (DATASET_DID,)


@pytest.mark.parametrize(
    ("call", "method"), [("status", "GET"), ("stop", "PUT"), ("delete", "DELETE")]
)
def test_job_calls_sign_consumer_and_job_in_the_query(
    http: rm.Mocker, client: ProviderClient, call: str, method: str
) -> None:
    http.register_uri(method, SERVICES + "/compute", json=status(client, status=7))
    job: Job = getattr(client, call)("job1")
    params = query(last(http))
    assert last(http).method == method and last(http).body is None
    assert params["jobId"] == "job1" and "documentId" not in params
    assert_signed(client, job_message(client.address, "job1", None), params)
    assert (job.job_id, job.status) == ("job1", 7)


def test_jobs_on_a_dataset_sign_its_did(http: rm.Mocker, client: ProviderClient) -> None:
    http.get(SERVICES + "/compute", json=status(client, "a") + status(client, "b"))
    assert [job.job_id for job in client.jobs(DATASET_DID)] == ["a", "b"]
    params = query(last(http))
    assert params["documentId"] == DATASET_DID and "jobId" not in params
    assert_signed(client, job_message(client.address, None, DATASET_DID), params)


def test_wait_polls_until_the_job_finished(http: rm.Mocker, client: ProviderClient) -> None:
    done: dict[str, Any] = {
        "status": 70,
        "dateFinished": "1700000001",
        "results": [{"index": 0, "filename": "sum.txt", "filesize": 4, "type": "output"}],
    }
    http.get(
        SERVICES + "/compute",
        [{"json": status(client)}, {"json": status(client, **done)}],
    )
    job = client.wait("job1", interval=0)
    assert job.finished and job.date_finished == 1_700_000_001.0
    assert job.result_index("sum.txt") == 0
    with pytest.raises(LookupError):
        job.result_index("missing.txt")


def test_wait_gives_up_after_its_timeout(http: rm.Mocker, client: ProviderClient) -> None:
    http.get(SERVICES + "/compute", json=status(client))
    with pytest.raises(TimeoutError, match="job1 still at 1"):
        client.wait("job1", timeout=0, interval=0)


def test_result_signs_consumer_job_and_index(
    http: rm.Mocker, client: ProviderClient, tmp_path: Path
) -> None:
    http.get(SERVICES + "/computeResult", content=b"5050")
    assert client.result("job1", 2) == b"5050"
    params = query(last(http))
    assert (params["jobId"], params["index"]) == ("job1", "2")
    assert_signed(client, result_message(client.address, "job1", 2), params)
    assert client.save_result("job1", 2, tmp_path / "sum.txt") == 4
    assert (tmp_path / "sum.txt").read_bytes() == b"5050"


@pytest.mark.parametrize(
    ("reply", "status", "code", "error"),
    [
        (
            {"json": {"error": "nonce too low", "code": "nonce_reused"}, "status_code": 400},
            400,
            "nonce_reused",
            "nonce too low",
        ),
        (
            {"json": {"error": "no such job", "code": "job_not_found"}, "status_code": 404},
            404,
            "job_not_found",
            "no such job",
        ),
        (
            {"text": "<html>bad gateway</html>", "status_code": 502, "reason": "Bad Gateway"},
            502,
            "http_error",
            "Bad Gateway",
        ),
        (
            {"json": ["not", "an", "error"], "status_code": 500, "reason": "Oops"},
            500,
            "http_error",
            "Oops",
        ),
    ],
)
def test_an_error_reply_is_a_provider_refusal(
    http: rm.Mocker,
    client: ProviderClient,
    reply: dict[str, Any],
    status: int,
    code: str,
    error: str,
) -> None:
    http.get(SERVICES + "/compute", **reply)
    with pytest.raises(ProviderRefused) as refused:
        client.status("job1")
    assert (refused.value.status, refused.value.code, refused.value.error) == (status, code, error)


def test_a_refused_result_writes_no_file(
    http: rm.Mocker, client: ProviderClient, tmp_path: Path
) -> None:
    http.get(
        SERVICES + "/computeResult",
        status_code=400,
        json={"error": "no result 9", "code": "result_not_found"},
    )
    with pytest.raises(ProviderRefused, match="result_not_found"):
        client.save_result("job1", 9, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "reply",
    [
        {"text": "not json"},
        {"json": {"jobId": "job1"}},  # an object, not a list
        {"json": []},  # no job
        {"json": [{"jobId": "job1", "owner": "0x1"}]},  # no status
        {"json": [{"jobId": "job1", "owner": "0x1", "status": 1, "results": ["x"]}]},
    ],
)
def test_an_unreadable_reply_is_reply_invalid(
    http: rm.Mocker, client: ProviderClient, reply: dict[str, Any]
) -> None:
    http.get(SERVICES + "/compute", **reply)
    with pytest.raises(ProviderReplyInvalid):
        client.status("job1")


def test_an_unreadable_fee_is_reply_invalid(http: rm.Mocker, client: ProviderClient) -> None:
    http.post(
        SERVICES + "/initializeCompute",
        json={"datasets": [{"datatoken": "0x1", "providerFee": {"v": 27}}]},
    )
    with pytest.raises(ProviderReplyInvalid, match="providerFee"):
        client.initialize(
            [ServiceRef(DATASET_DID, "compute")], RawAlgorithm(CONTAINER, url="u"), "e", 1
        )


class CountedSession(requests.Session):
    closed = 0

    def close(self) -> None:
        CountedSession.closed += 1
        super().close()


def test_closing_closes_only_a_session_it_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(CountedSession, "closed", 0)
    monkeypatch.setattr(requests, "Session", CountedSession)
    with ProviderClient(PROVIDER, CONSUMER_KEY, session=CountedSession()):
        pass
    assert CountedSession.closed == 0
    with ProviderClient(PROVIDER, CONSUMER_KEY):
        pass
    assert CountedSession.closed == 1
