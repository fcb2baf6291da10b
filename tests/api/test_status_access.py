"""STATUS_ACCESS: who may read a job's status without a signature (signed, job-id, open)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests_mock as rm
from flask.testing import FlaskClient

from ocean_provider.app import create_app
from ocean_provider.config import load_provider_settings
from tests.api.helpers import COMPUTE, ENGINE_COMPUTE, engine_job, job_params
from tests.conftest import (
    DATASET_DID,
    Consumer,
    FakeDdoResolver,
    FakeOrderVerifier,
    make_settings,
)

FULL_FIELDS = {
    "results",
    "resultsUrls",
    "algorithmLogUrl",
    "agreementId",
    "inputDID",
    "expireTimestamp",
}


def _jobs_of(owner: str) -> Any:
    """An engine holding two jobs of ``owner``, answering only for the queried owner."""

    def reply(request: Any, context: Any) -> list[dict[str, Any]]:
        if request.qs["owner"][0].lower() != owner.lower():
            return []
        jobs = [
            engine_job(owner, "job1", results=[{"filename": "out.txt", "type": "output"}]),
            engine_job(owner, "job2"),
        ]
        wanted = request.qs.get("jobid", [None])[0]
        return [j for j in jobs if wanted is None or j["jobId"] == wanted]

    return reply


@pytest.fixture
def status_client(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    ddos: FakeDdoResolver,
    orders: FakeOrderVerifier,
    engine: rm.Mocker,
    consumer: Consumer,
) -> FlaskClient:
    engine.get(ENGINE_COMPUTE, json=_jobs_of(consumer.address))
    settings = make_settings(tmp_path, STATUS_ACCESS=request.param)
    return create_app(settings, ddos=ddos, orders=orders).test_client()


def _unsigned(consumer: Consumer, **fields: str) -> dict[str, str]:
    return {"consumerAddress": consumer.address.lower(), **fields}


@pytest.mark.parametrize(
    ("status_client", "fields", "status", "code"),
    [
        ("signed", {"jobId": "job1"}, 400, "signature_missing"),
        ("signed", {}, 400, "signature_missing"),
        ("job-id", {"jobId": "job1"}, 200, None),
        ("job-id", {}, 400, "signature_missing"),  # listing needs a signature
        ("job-id", {"jobId": "job1", "documentId": DATASET_DID}, 400, "signature_missing"),
        ("job-id", {"jobId": "nope"}, 404, "job_not_found"),
        ("open", {"jobId": "job1"}, 200, None),
        ("open", {}, 200, None),  # the reference's unsigned listing
        ("open", {"documentId": DATASET_DID}, 200, None),
    ],
    indirect=["status_client"],
)
def test_unsigned_status_by_level(
    status_client: FlaskClient,
    consumer: Consumer,
    fields: dict[str, str],
    status: int,
    code: str | None,
) -> None:
    reply = status_client.get(COMPUTE, query_string=_unsigned(consumer, **fields))
    assert reply.status_code == status, reply.get_json()
    if code is not None:
        assert reply.get_json()["code"] == code
        return
    jobs = reply.get_json()
    assert [j["jobId"] for j in jobs] == (["job1"] if "jobId" in fields else ["job1", "job2"])
    assert FULL_FIELDS <= set(jobs[0])  # what ocean.js's ComputeJob carries
    assert jobs[0]["resultsUrls"] and "signature" not in jobs[0]["resultsUrls"][0]


@pytest.mark.parametrize("status_client", ["signed", "job-id", "open"], indirect=True)
def test_a_signature_is_always_checked(status_client: FlaskClient, consumer: Consumer) -> None:
    params = job_params(consumer)
    good = status_client.get(COMPUTE, query_string=params)
    assert good.status_code == 200 and good.get_json()[0]["jobId"] == "job1"
    forged = {**job_params(consumer), "signature": "0x" + "11" * 65}
    bad = status_client.get(COMPUTE, query_string=forged)
    assert (bad.status_code, bad.get_json()["code"]) == (400, "signature_invalid")


@pytest.mark.parametrize(
    ("environ", "level"),
    [
        ({}, "job-id"),
        ({"STATUS_ACCESS": "SIGNED"}, "signed"),
        ({"ALLOW_UNSIGNED_STATUS": "true"}, "open"),  # the older flag
        ({"ALLOW_UNSIGNED_STATUS": "true", "STATUS_ACCESS": "job-id"}, "job-id"),
    ],
)
def test_status_access_setting(tmp_path: Path, environ: dict[str, str], level: str) -> None:
    base = make_settings(tmp_path)
    settings = load_provider_settings(
        {
            "NETWORK_URL": "http://127.0.0.1:8545",
            "PROVIDER_PRIVATE_KEY": base.universal_key,
            **environ,
        },
        config_path=None,
    )
    assert settings.status_access == level
