"""The engine's request models: what a Provider may send to /api/v1/operator/*.

A bad shape is a 400 with a field -> messages map, before anything is stored;
the workflow a job keeps is the validated one, so provisioning works on typed
data. File objects stay mappings here: the fetcher validates them when it uses
them (``fetch.request.build_request``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field, model_validator

from ocean_provider.auth.addresses import checksum_address
from ocean_provider.wire.fields import Address, Container, Id, Nonce, OptionalId
from ocean_provider.wire.fields import Schema as _Schema

MAX_INPUTS = 32
MAX_FILES = 64
MAX_RAWCODE = 4 * 1024 * 1024
# A DID names a folder under /data/inputs: no slashes, nothing like "..".
DID_PATTERN = r"^did:[a-z0-9]+:[A-Za-z0-9._:-]+$"

FileObject = dict[str, Any]


class Schema(_Schema):
    model_config = ConfigDict(str_strip_whitespace=False)  # code and DIDs arrive as sent


class ProviderSigned(Schema):
    """Fields of every call: the job owner, and the calling Provider's signature."""

    owner: Address
    provider_address: Annotated[str, Field(default="", alias="providerAddress", max_length=64)]
    provider_signature: Annotated[
        str | None, Field(default=None, alias="providerSignature", max_length=256)
    ]
    nonce: Nonce | None = None

    @property
    def owner_address(self) -> str:
        """The owner, checksummed (the signature covers ``owner`` as sent)."""
        return checksum_address(self.owner)


class JobQuery(ProviderSigned):
    """GET and PUT: all the owner's jobs, or one by jobId or agreementId."""

    job_id: OptionalId = Field(alias="jobId")
    agreement_id: OptionalId = Field(alias="agreementId")
    document_id: OptionalId = Field(alias="documentId")


class JobTarget(ProviderSigned):
    """DELETE: one job by id."""

    job_id: Id = Field(alias="jobId")


class ResultQuery(ProviderSigned):
    job_id: Id = Field(alias="jobId")
    index: Annotated[int, Field(ge=0, le=100_000)]


class WorkflowInput(Schema):
    """One dataset: its DID, DDO and decrypted file objects (our extension)."""

    id: Annotated[str, Field(pattern=DID_PATTERN, max_length=256)]
    files: Annotated[list[FileObject], Field(min_length=1, max_length=MAX_FILES)]
    ddo: dict[str, Any] = Field(default_factory=dict)
    allow_network: bool = Field(default=False, alias="allowNetworkAccess")


class WorkflowAlgorithm(Schema):
    """Raw code, a URL, or a published algorithm's file objects; and its container."""

    id: Annotated[str, Field(default="", max_length=256)]
    rawcode: Annotated[str, Field(default="", max_length=MAX_RAWCODE)]
    url: Annotated[str, Field(default="", max_length=8192)]
    files: Annotated[list[FileObject], Field(default_factory=list, max_length=MAX_FILES)]
    container: Container
    algocustomdata: dict[str, Any] | None = None
    ddo: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _has_code(self) -> WorkflowAlgorithm:
        if not (self.rawcode or self.url or self.files):
            raise ValueError("the algorithm needs rawcode, url or files")
        return self


class WorkflowStage(Schema):
    input: Annotated[list[WorkflowInput], Field(min_length=1, max_length=MAX_INPUTS)]
    algorithm: WorkflowAlgorithm
    output: dict[str, Any]

    @model_validator(mode="after")
    def _distinct_inputs(self) -> WorkflowStage:
        ids = [item.id for item in self.input]
        if len(set(ids)) != len(ids):
            raise ValueError("each input must be a different asset (/data/inputs/<did>)")
        return self


class Workflow(Schema):
    stages: Annotated[list[WorkflowStage], Field(min_length=1, max_length=1)]

    @property
    def stage(self) -> WorkflowStage:
        return self.stages[0]


class StartJob(ProviderSigned):
    environment: Id
    agreement_id: Id = Field(alias="agreementId")
    workflow: Workflow
