"""The engine's Operator-Service API (``/api/v1/operator/*``): thin views over the scheduler."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Response, current_app, jsonify, request, send_file
from werkzeug.exceptions import RequestedRangeNotSatisfiable

from ocean_provider.auth.addresses import checksum_address
from ocean_provider.auth.signing import verify_signature
from ocean_provider.engine.environments import Environment
from ocean_provider.engine.replay import ReplayCache
from ocean_provider.engine.requests import (
    JobQuery,
    JobTarget,
    ProviderSigned,
    ResultQuery,
    StartJob,
)
from ocean_provider.engine.store import AgreementInUse, JobRecord, JobStore
from ocean_provider.engine.worker import Scheduler
from ocean_provider.errors import (
    ComputeRefused,
    EnvironmentNotFound,
    JobNotFound,
    RangeNotSatisfiable,
    ResultNotFound,
    SignatureInvalid,
    SignatureMissing,
    ValidationFailed,
)
from ocean_provider.web.params import request_params
from ocean_provider.web.request_log import note_signer
from ocean_provider.wire.fields import parse
from ocean_provider.wire.jobs import JobStatus, OperatorJob
from ocean_provider.wire.request_signature import HEADER, verify_request

bp = Blueprint("operator", __name__)
EXTENSION = "ocean_engine"
OPAQUE = "application/octet-stream"


@dataclass
class EngineContext:
    store: JobStore
    scheduler: Scheduler
    environments: dict[str, Environment]
    replay: ReplayCache
    allowed_providers: tuple[str, ...]

    def authenticate(self, req: ProviderSigned, job_id: str | None) -> str:
        """The calling Provider: an allowed address, Ocean's signature over
        ``owner[+jobId]+nonce``, our header signature over the whole request, and a
        nonce not seen within the replay window, checked in that order."""
        try:
            provider = checksum_address(req.provider_address)
        except ValueError:
            raise SignatureInvalid("providerAddress is not an address") from None
        if provider not in self.allowed_providers:
            raise SignatureInvalid("this provider is not allowed to use the engine")
        if not req.provider_signature:
            raise SignatureMissing()
        if req.nonce is None:
            raise ValidationFailed({"nonce": ["The nonce field is required."]})
        try:
            message = f"{req.owner}{job_id or ''}{req.nonce}"
            verify_signature(provider, message, req.provider_signature)
        except SignatureInvalid:
            raise SignatureInvalid(
                "providerSignature was not made by providerAddress over owner, jobId and nonce"
            ) from None
        verify_request(
            provider,
            request.headers.get(HEADER),
            method=request.method,
            path=request.script_root + request.path,
            query=request.query_string.decode("latin-1"),
            body=request.get_data(cache=True),
            nonce=req.nonce,
        )
        self.replay.accept(provider, req.nonce)
        note_signer(provider)
        return provider


def _ctx() -> EngineContext:
    ctx: EngineContext = current_app.extensions[EXTENSION]
    return ctx


def _owned(owner: str, job_id: str | None, agreement_id: str | None = None) -> list[JobRecord]:
    records = _ctx().store.find(owner, job_id, agreement_id)
    if job_id and not records:
        raise JobNotFound("no such job for this owner")
    return records


def _queried(req: JobQuery) -> list[JobRecord]:
    """The owner's jobs the query names: by jobId, agreementId and documentId (an input)."""
    records = _owned(req.owner_address, req.job_id, req.agreement_id)
    document = req.document_id
    return [r for r in records if not document or document in r.job.input_dids]


def _reply(jobs: list[OperatorJob]) -> Response:
    return jsonify([job.wire() for job in jobs])


@bp.post("/compute")
def start() -> Response:
    ctx = _ctx()
    req = parse(StartJob, request_params())
    provider = ctx.authenticate(req, None)
    env = ctx.environments.get(req.environment)
    if env is None:
        raise EnvironmentNotFound("Environment invalid or does not exist")
    try:
        job = ctx.store.create(
            owner=req.owner_address,
            provider=provider,
            agreement_id=req.agreement_id,
            environment=env.id,
            workflow=req.workflow.model_dump(mode="json", by_alias=True),
            algo_did=req.workflow.stage.algorithm.id or "raw",
            input_dids=[item.id for item in req.workflow.stage.input],
            queue_seconds=env.max_queue_seconds,
        )
    except AgreementInUse:
        raise ComputeRefused(
            "agreementId", "agreement_in_use", "agreementId already in use for other job."
        ) from None
    ctx.scheduler.wake()
    return _reply([job])


@bp.get("/compute")
def status() -> Response:
    req = parse(JobQuery, request_params())
    _ctx().authenticate(req, req.job_id)
    return _reply([r.job for r in _queried(req)])


@bp.put("/compute")
def stop() -> Response:
    ctx = _ctx()
    req = parse(JobQuery, request_params())
    ctx.authenticate(req, req.job_id)
    records = _queried(req)
    for record in records:
        ctx.scheduler.stop(record.job.job_id)
    return _reply([_fresh(r) for r in records])


@bp.delete("/compute")
def delete() -> Response:
    ctx = _ctx()
    req = parse(JobTarget, request_params())
    ctx.authenticate(req, req.job_id)
    gone = []
    for record in _owned(req.owner_address, req.job_id):
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
    req = parse(ResultQuery, request_params())
    _ctx().authenticate(req, req.job_id)
    (record,) = _owned(req.owner_address, req.job_id)
    if req.index >= len(record.results):
        raise ResultNotFound(f"No such index {req.index} in this compute job")
    path = _ctx().scheduler.result_file(req.job_id, record.results[req.index])
    if path is None:  # expired a moment ago
        raise ResultNotFound(f"No such index {req.index} in this compute job")
    try:
        # werkzeug quotes the name as RFC 6266 says (``filename*`` for non-ASCII); a result
        # is whatever the algorithm wrote, opaque whatever its name (never text/html)
        response = send_file(
            path,
            mimetype=OPAQUE,
            as_attachment=True,
            download_name=_download_name(record.results[req.index].result.filename),
            conditional=True,
            max_age=0,
        )
    except RequestedRangeNotSatisfiable as exc:
        return _unsatisfiable(exc.length)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/environments")
def environments() -> Response:
    ctx = _ctx()
    return jsonify(
        [env.announce(ctx.store.running_count(env.id)) for env in ctx.environments.values()]
    )


def _fresh(record: JobRecord) -> OperatorJob:
    latest = _ctx().store.get(record.job.job_id)
    return latest.job if latest else record.job


def _unsatisfiable(size: int | None) -> Response:
    error = RangeNotSatisfiable("the requested range lies outside the result", size=size)
    response = jsonify(error.body())
    response.status_code = error.status
    if size is not None:
        response.headers["Content-Range"] = f"bytes */{size}"
    return response


def _download_name(filename: str) -> str:
    """A header-safe name: path separators and unprintable characters (control
    characters, lone surrogates from undecodable bytes) become ``_``."""
    name = "".join("_" if ch in "/\\" or not ch.isprintable() else ch for ch in filename)
    return name or "result"
