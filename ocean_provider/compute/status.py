"""Status objects as the spec and ``DESIGN.md`` define them, built from engine jobs."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from ocean_provider.wire.jobs import JobStatus, OperatorJob


def _date(value: float | None) -> str | None:
    """Unix seconds as text, as Ocean's Operator-Service sends them and clients parse them."""
    if value is None:
        return None
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _status_text(job: OperatorJob) -> str:
    if job.status_text:
        return job.status_text
    try:
        return JobStatus(job.status).text
    except ValueError:
        return "Unknown status"


def result_url(base_url: str, job: OperatorJob, index: int) -> str:
    query = urlencode({"consumerAddress": job.owner, "jobId": job.job_id, "index": index})
    return f"{base_url.rstrip('/')}/api/services/computeResult?{query}"


def status_object(job: OperatorJob, base_url: str) -> dict[str, Any]:
    """The full status object, as the spec and reference clients (ocean.js's ComputeJob,
    ocean.py) read it."""
    logs = [r for r in job.results if r.type == "algorithmLog"]
    outputs = [r for r in job.results if r.type == "output"]
    return {
        "owner": job.owner,
        "documentId": job.document_id,
        "jobId": job.job_id,
        "dateCreated": _date(job.date_created),
        "dateFinished": _date(job.date_finished),
        # when the results are deleted (0 until the job ends); ocean.js reads a number
        "expireTimestamp": int(job.expire_timestamp or 0),
        "status": job.status,
        "statusText": _status_text(job),
        "agreementId": job.agreement_id,
        "algorithmLogUrl": result_url(base_url, job, logs[0].index) if logs else "",
        "resultsUrls": [result_url(base_url, job, r.index) for r in outputs],
        "resultsDid": "",
        "results": [r.model_dump() for r in job.results],
        "stopreq": job.stopreq,
        "algoDID": job.algo_did,
        "inputDID": job.input_dids,
    }
