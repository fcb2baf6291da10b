"""Compute endpoints: parse, authenticate, call the compute service, serialise."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from ocean_provider.api.context import context
from ocean_provider.api.downloads import download_response, requested_range
from ocean_provider.auth.addresses import checksum_address
from ocean_provider.auth.messages import job_message, result_message, start_message
from ocean_provider.auth.status_access import check_unsigned_status
from ocean_provider.compute.requests import (
    DeleteRequest,
    EnvironmentsRequest,
    InitializeRequest,
    JobRequest,
    ResultRequest,
    StartRequest,
)
from ocean_provider.compute.status import status_object
from ocean_provider.web.params import refuse_head, request_params
from ocean_provider.wire.fields import parse
from ocean_provider.wire.jobs import OperatorJob

bp = Blueprint("services", __name__)


def _statuses(jobs: list[OperatorJob]) -> Response:
    base = context().base_url()
    return jsonify([status_object(job, base) for job in jobs])


def _job_request(
    model: type[JobRequest] = JobRequest, **ocean_js_forms: bool
) -> tuple[str, JobRequest]:
    req = parse(model, request_params())
    return _job_signer(req, **ocean_js_forms), req


def _job_signer(req: JobRequest, **ocean_js_forms: bool) -> str:
    message = job_message(req.consumer_address, req.job_id, req.document_id)
    return context().auth.authenticate(
        req.consumer_address, message, req.signature, req.nonce, **ocean_js_forms
    )


@bp.post("/initializeCompute")
def initializeCompute() -> Response:  # noqa: N802
    """Unsigned, as the reference: it prices the job and signs fees, it starts nothing."""
    req = parse(InitializeRequest, request_params())
    return jsonify(context().compute.initialize(req))


@bp.post("/compute")
def computeStart() -> Response:  # noqa: N802 - clients look endpoints up by this name
    req = parse(StartRequest, request_params())
    message = start_message(req.consumer_address, req.dataset.document_id)
    signer = context().auth.authenticate(req.consumer_address, message, req.signature, req.nonce)
    return _statuses(context().compute.start(signer, req))


@bp.get("/compute")
def computeStatus() -> Response:  # noqa: N802
    refuse_head()
    ctx = context()
    params = request_params()
    req = parse(JobRequest, params)
    if params.get("signature"):  # a signature is always checked
        owner = _job_signer(req)
    else:
        check_unsigned_status(ctx.settings.status_access, req.job_id, req.document_id)
        owner = checksum_address(req.consumer_address)
    return _statuses(ctx.compute.status(owner, req.job_id, req.document_id))


@bp.put("/compute")
def computeStop() -> Response:  # noqa: N802
    signer, req = _job_request(unsigned_nonce=True)  # ocean.js 3.x signs no nonce here
    return _statuses(context().compute.stop(signer, req.job_id, req.document_id))


@bp.delete("/compute")
def computeDelete() -> Response:  # noqa: N802
    signer, req = _job_request(DeleteRequest, implied_nonce=True)  # ocean.js 3.x sends none
    return _statuses(context().compute.delete(signer, req.job_id, req.document_id))


@bp.get("/computeResult")
def computeResult() -> Response:  # noqa: N802
    refuse_head()
    byte_range = requested_range(request.headers.get("Range"))  # before a nonce is spent
    req = parse(ResultRequest, request_params())
    message = result_message(req.consumer_address, req.job_id, req.index)
    signer = context().auth.authenticate(req.consumer_address, message, req.signature, req.nonce)
    stream = context().compute.result(signer, req.job_id, req.index, byte_range)
    return download_response(stream, f"result-{req.index}")


@bp.get("/computeEnvironments")
def computeEnvironments() -> Response:  # noqa: N802
    req = parse(EnvironmentsRequest, request_params())
    compute = context().compute
    if req.chain_id is not None:
        return jsonify(compute.environments(req.chain_id))
    return jsonify(compute.environments_by_chain())
