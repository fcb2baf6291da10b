"""Request builders for API tests: signed params the way clients send them."""

from __future__ import annotations

from typing import Any

from ocean_provider.auth.messages import job_message, result_message, start_message
from tests.conftest import ALGO_DID, ALGO_TX, DATASET_DID, ENGINE_URL, TX, Consumer

COMPUTE = "/api/services/compute"
RESULT = "/api/services/computeResult"
ENGINE_COMPUTE = f"{ENGINE_URL}/api/v1/operator/compute"
ENGINE_RESULT = f"{ENGINE_URL}/api/v1/operator/getResult"
ENGINE_ENVS = f"{ENGINE_URL}/api/v1/operator/environments"

ENVIRONMENT = {
    "id": "ocean-compute",
    "cpuType": "x86_64",
    "nCPU": 1,
    "cpuNumber": 1,
    "nGPU": 0,
    "gpuType": "",
    "ramGB": 1,
    "diskGB": 2,
    "priceMin": 0,
    "desc": "local",
    "maxJobs": 2,
    "currentJobs": 0,
    "consumerAddress": "0x" + "c" * 40,
    "maxJobDuration": 60,
    "storageExpiry": 3600,
    "free": True,
    "acceptsDecryptedFiles": True,  # as our engine announces
}


def engine_job(owner: str, job_id: str = "job1", status: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "agreementId": TX,
        "jobId": job_id,
        "owner": owner,
        "status": status,
        "statusText": "Warming up",
        "dateCreated": "1700000000.5",
        "dateFinished": None,
        "results": "",
        "stopreq": 0,
        "removed": 0,
        "algoDID": "raw",
        "inputDID": [DATASET_DID],
        **extra,
    }


def raw_algorithm() -> dict[str, Any]:
    return {
        "meta": {
            "rawcode": "print('hi')",
            "container": {"entrypoint": "python $ALGO", "image": "python", "tag": "3.11"},
        }
    }


def start_body(consumer: Consumer, **overrides: Any) -> dict[str, Any]:
    nonce = consumer.nonce()
    body: dict[str, Any] = {
        "consumerAddress": consumer.address,
        "nonce": nonce,
        "signature": consumer.sign(start_message(consumer.address, DATASET_DID), nonce),
        "environment": "ocean-compute",
        "dataset": {"documentId": DATASET_DID, "serviceId": "compute-1", "transferTxId": TX},
        "algorithm": raw_algorithm(),
    }
    body.update(overrides)
    return body


def published_algorithm() -> dict[str, Any]:
    return {"documentId": ALGO_DID, "serviceId": "access-a", "transferTxId": ALGO_TX}


def job_params(
    consumer: Consumer, job_id: str | None = "job1", document_id: str | None = None
) -> dict[str, Any]:
    nonce = consumer.nonce()
    params: dict[str, Any] = {
        "consumerAddress": consumer.address,
        "nonce": nonce,
        "signature": consumer.sign(job_message(consumer.address, job_id, document_id), nonce),
    }
    if job_id:
        params["jobId"] = job_id
    if document_id:
        params["documentId"] = document_id
    return params


def result_params(consumer: Consumer, job_id: str = "job1", index: int = 0) -> dict[str, Any]:
    nonce = consumer.nonce()
    return {
        "consumerAddress": consumer.address,
        "jobId": job_id,
        "index": index,
        "nonce": nonce,
        "signature": consumer.sign(result_message(consumer.address, job_id, index), nonce),
    }
