"""The engine's Operator-Service API for its OpenAPI document (``web.openapi`` builds it):
the request models each view parses, the replies, and the error codes per route."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, RootModel

from ocean_provider.engine.requests import JobQuery, JobTarget, ResultQuery, StartJob
from ocean_provider.web.openapi import METRICS_OPERATION, Operation
from ocean_provider.wire.jobs import OperatorJob

TITLE = "Ocean Provider local engine (Operator-Service API)"
DESCRIPTION = (
    "The Operator-Service API a Provider calls. Every call but environments and health is "
    "signed by an allowed Provider: providerSignature over owner [+ jobId] + nonce, and the "
    "X-Provider-Request-Signature header over method, path, query, body hash and nonce "
    '(README "Provider to engine"). Errors are JSON `{error, code}` with a stable code.'
)

SIGNED = ("invalid_request", "signature_missing", "signature_invalid", "nonce_not_fresh")


class OperatorJobs(RootModel[list[OperatorJob]]):
    """The jobs a call acted on, in Ocean's Operator-Service form (plus result ``index``)."""


class AnnouncedEnvironment(BaseModel):
    """An environment as the engine announces it (the Provider adds its fee token and
    consumer address where these are unset)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: str
    consumer_address: str = Field(alias="consumerAddress")
    fee_token: str = Field(alias="feeToken")
    max_jobs: int = Field(alias="maxJobs")
    current_jobs: int = Field(alias="currentJobs")
    accepts_files: bool = Field(alias="acceptsDecryptedFiles")  # wire.jobs.ACCEPTS_FILES


class AnnouncedEnvironments(RootModel[list[AnnouncedEnvironment]]):
    """Every environment of this engine."""


class EngineInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    software: str
    version: str


class Health(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: str
    environments: int


ENGINE_OPERATIONS: dict[str, Operation] = {
    "metrics": METRICS_OPERATION,
    "info": Operation("The engine's name and version", reply=EngineInfo, tags=("info",)),
    "health": Operation("Up, with how many environments", reply=Health, tags=("info",)),
    "operator.environments": Operation(
        "The engine's compute environments", reply=AnnouncedEnvironments, tags=("operator",)
    ),
    "operator.start": Operation(
        "Queue a job from a Provider's workflow",
        reply=OperatorJobs,
        body=StartJob,
        errors={
            400: (*SIGNED, "environment_not_found", "agreement_in_use"),
            413: ("payload_too_large",),
        },
        tags=("operator",),
    ),
    "operator.status": Operation(
        "An owner's jobs, or one by jobId, agreementId or documentId",
        reply=OperatorJobs,
        query=JobQuery,
        errors={400: SIGNED, 404: ("job_not_found",)},
        tags=("operator",),
    ),
    "operator.stop": Operation(
        "Stop an owner's jobs (one with jobId)",
        reply=OperatorJobs,
        query=JobQuery,
        errors={400: SIGNED, 404: ("job_not_found",)},
        tags=("operator",),
    ),
    "operator.delete": Operation(
        "Delete one job and its results",
        reply=OperatorJobs,
        query=JobTarget,
        errors={400: SIGNED, 404: ("job_not_found",)},
        tags=("operator",),
    ),
    "operator.get_result": Operation(
        "Download one result file (Range supported)",
        query=ResultQuery,
        reply_media="application/octet-stream",
        errors={
            400: SIGNED,
            404: ("job_not_found", "result_not_found"),
            416: ("range_not_satisfiable",),
        },
        tags=("operator",),
    ),
}
