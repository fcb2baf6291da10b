"""The engine's Operator-Service API (``/api/v1/operator/*``): thin views over the scheduler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_utils.address import to_checksum_address
from flask import Blueprint, Response, current_app, jsonify, send_file

from ocean_provider.api.params import request_params
from ocean_provider.auth.authenticator import RequestAuthenticator
from ocean_provider.engine.environments import Environment
from ocean_provider.engine.store import AgreementInUse, JobRecord, JobStore
from ocean_provider.engine.worker import Scheduler
from ocean_provider.errors import (
    EnvironmentNotFound,
    JobNotFound,
    ResultNotFound,
    SignatureInvalid,
    ValidationFailed,
)
from ocean_provider.operator.models import JobStatus, OperatorJob

bp = Blueprint("operator", __name__)
EXTENSION = "ocean_engine"


@dataclass
class EngineContext:
    store: JobStore
    scheduler: Scheduler
    environments: dict[str, Environment]
    auth: RequestAuthenticator
    allowed_providers: tuple[str, ...]

    def provider(self, params: dict[str, Any], owner: str, job_id: str | None) -> str:
        """Authenticate the calling Provider: allowed address, signature, fresh nonce."""
        address = str(params.get("providerAddress") or "")
        try:
            provider = str(to_checksum_address(address))
        except ValueError:
            raise SignatureInvalid("providerAddress is not an address") from None
        if provider not in self.allowed_providers:
            raise SignatureInvalid("this provider is not allowed to use the engine")
        nonce = params.get("nonce")
        return self.auth.authenticate(
            provider,
            f"{owner}{job_id or ''}",
            params.get("providerSignature"),
            None if nonce is None else str(nonce),
        )


def _ctx() -> EngineContext:
    ctx: EngineContext = current_app.extensions[EXTENSION]
    return ctx


def _required(params: dict[str, Any], *names: str) -> list[str]:
    missing = {n: [f"The {n} field is required."] for n in names if not params.get(n)}
    if missing:
        raise ValidationFailed(missing)
    return [str(params[n]) for n in names]


def _owned(owner: str, job_id: str | None, agreement_id: str | None = None) -> list[JobRecord]:
    records = _ctx().store.find(owner, job_id, agreement_id)
    if job_id and not records:
        raise JobNotFound("no such job for this owner")
    return records


def _reply(jobs: list[OperatorJob]) -> Response:
    return jsonify([job.wire() for job in jobs])


@bp.post("/compute")
def start() -> Response:
    ctx = _ctx()
    params = request_params()
    owner, environment, agreement = _required(params, "owner", "environment", "agreementId")
    workflow = params.get("workflow")
    if not isinstance(workflow, dict):
        raise ValidationFailed({"workflow": ["workflow must be an object with stages"]})
    stages = workflow.get("stages")
    if not isinstance(stages, list) or len(stages) != 1 or not isinstance(stages[0], dict):
        raise ValidationFailed({"workflow": ["workflow must have exactly one stage"]})
    for part in ("algorithm", "input", "output"):
        if part not in stages[0]:
            raise ValidationFailed({"workflow": [f"Missing {part} in stage 0"]})
    provider = ctx.provider(params, owner, None)
    env = ctx.environments.get(environment)
    if env is None:
        raise EnvironmentNotFound("Environment invalid or does not exist")
    algorithm = stages[0]["algorithm"] if isinstance(stages[0]["algorithm"], dict) else {}
    inputs = [str(i.get("id", "")) for i in stages[0]["input"] or [] if isinstance(i, dict)]
    try:
        job = ctx.store.create(
            owner=str(to_checksum_address(owner)),
            provider=provider,
            agreement_id=agreement,
            environment=env.id,
            workflow=workflow,
            algo_did=str(algorithm.get("id") or "raw"),
            input_dids=inputs,
            queue_seconds=env.max_queue_seconds,
        )
    except AgreementInUse:
        raise ValidationFailed(
            {"agreementId": ["agreementId already in use for other job."]}
        ) from None
    ctx.scheduler.wake()
    return _reply([job])


@bp.get("/compute")
def status() -> Response:
    params = request_params()
    (owner,) = _required(params, "owner")
    job_id = params.get("jobId")
    _ctx().provider(params, owner, job_id)
    records = _owned(str(to_checksum_address(owner)), job_id, params.get("agreementId"))
    document = params.get("documentId")
    return _reply([r.job for r in records if not document or document in r.job.input_dids])


@bp.put("/compute")
def stop() -> Response:
    ctx = _ctx()
    params = request_params()
    (owner,) = _required(params, "owner")
    job_id = params.get("jobId")
    ctx.provider(params, owner, job_id)
    records = _owned(str(to_checksum_address(owner)), job_id, params.get("agreementId"))
    for record in records:
        ctx.scheduler.stop(record.job.job_id)
    return _reply([_fresh(r) for r in records])


@bp.delete("/compute")
def delete() -> Response:
    ctx = _ctx()
    params = request_params()
    owner, job_id = _required(params, "owner", "jobId")
    ctx.provider(params, owner, job_id)
    records = _owned(str(to_checksum_address(owner)), job_id)
    gone = []
    for record in records:
        ctx.scheduler.forget(record.job.job_id)
        gone.append(
            record.job.model_copy(
                update={
                    "status": JobStatus.DELETED,
                    "status_text": JobStatus.DELETED.text,
                    "results": [],
                }
            )
        )
    return _reply(gone)


@bp.get("/getResult")
def get_result() -> Response:
    params = request_params()
    owner, job_id, index_text = _required(params, "owner", "jobId", "index")
    _ctx().provider(params, owner, job_id)
    (record,) = _owned(str(to_checksum_address(owner)), job_id)
    if not index_text.isdigit() or int(index_text) >= len(record.results):
        raise ResultNotFound(f"No such index {index_text[:20]} in this compute job")
    stored = record.results[int(index_text)]
    return send_file(
        stored.path,
        as_attachment=True,
        download_name=stored.result.filename.replace("/", "_"),
        conditional=True,
        max_age=0,
    )


@bp.get("/environments")
def environments() -> Response:
    ctx = _ctx()
    return jsonify(
        [env.announce(ctx.store.running_count(env.id)) for env in ctx.environments.values()]
    )


def _fresh(record: JobRecord) -> OperatorJob:
    latest = _ctx().store.get(record.job.job_id)
    return latest.job if latest else record.job
