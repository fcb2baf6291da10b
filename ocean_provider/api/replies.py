"""The shapes of the Provider's JSON replies, for its OpenAPI document (``api.openapi``).

They say what every reply carries and leave room for more (``extra="allow"``): an engine's
environment or a fee may bring fields of its own. The schema fuzzer
(``tests/api/test_schema_fuzz.py``) checks live replies against them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, RootModel


class Reply(BaseModel):
    model_config = ConfigDict(extra="allow")


class ApiDocs(Reply):
    openapi: str
    docs: str


class ProviderInfo(Reply):
    """``GET /``: what ocean.js and ocean.py read to find the endpoints."""

    software: str
    version: str
    chainIds: list[int]  # noqa: N815 - the wire's names
    providerAddresses: dict[str, str]  # noqa: N815
    computeAddress: str  # noqa: N815
    serviceEndpoints: dict[str, list[str]]  # noqa: N815
    apiDocs: ApiDocs  # noqa: N815


class NonceReply(Reply):
    nonce: str


class ResultEntry(Reply):
    index: int
    filename: str
    filesize: int
    type: str


class JobStatusReply(Reply):
    """A job's status object (``DESIGN.md`` "Status object"); dates are Unix seconds as text."""

    owner: str
    documentId: str  # noqa: N815
    jobId: str  # noqa: N815
    dateCreated: str | None  # noqa: N815
    dateFinished: str | None  # noqa: N815
    expireTimestamp: int  # noqa: N815
    status: int
    statusText: str  # noqa: N815
    agreementId: str  # noqa: N815
    algorithmLogUrl: str  # noqa: N815
    resultsUrls: list[str]  # noqa: N815
    resultsDid: str  # noqa: N815
    results: list[ResultEntry]
    stopreq: int
    algoDID: str  # noqa: N815
    inputDID: list[str]  # noqa: N815


class JobStatusList(RootModel[list[JobStatusReply]]):
    """The jobs a start, status, stop or delete acted on."""


class EnvironmentReply(Reply):
    """A compute environment as its engine announces it, with this Provider's fee token and
    consumer address."""

    id: str
    consumerAddress: str  # noqa: N815
    feeToken: str  # noqa: N815


class EnvironmentsReply(RootModel[list[EnvironmentReply] | dict[str, list[EnvironmentReply]]]):
    """With ``chainId``: that chain's environments; without: an object keyed by chain id."""


class InitializeReply(Reply):
    """Per dataset (and a published algorithm): ``providerFee`` to order with, or the
    ``validOrder`` that still covers the job."""

    datasets: list[dict[str, Any]]
    algorithm: dict[str, Any] | None = None


class FileInfoEntry(Reply):
    index: int
    valid: bool
    type: str


class FileInfoReply(RootModel[list[FileInfoEntry]]):
    """One entry per file of the service (or the one file object asked about)."""
