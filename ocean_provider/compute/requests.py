"""Request models: the shape of every compute request, and field errors for bad shapes.

The views parse them with ``wire.fields.parse``; the compute service takes them as typed
input. The field types they share with the engine live in ``wire.fields``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, AliasChoices, BeforeValidator, Field, model_validator

from ocean_provider import bounded_json
from ocean_provider.wire.fields import Address, Container, Id, Nonce, OptionalId, Schema


def _json_object(value: Any) -> Any:
    """Accept a JSON object or its string form (clients send both)."""
    if isinstance(value, str) and value.strip():
        try:
            return bounded_json.loads(value)
        except bounded_json.JsonTooDeep:
            raise ValueError(
                f"must be JSON nested at most {bounded_json.MAX_DEPTH} levels deep"
            ) from None
        except ValueError:
            raise ValueError("must be a JSON object or JSON text") from None
    return value if value != "" else None


UserData = Annotated[dict[str, Any] | None, BeforeValidator(_json_object)]
TX_HASH = re.compile(r"0x[0-9a-fA-F]{64}")


def _tx_hash(value: str | None) -> str | None:
    if value is not None and not TX_HASH.fullmatch(value):
        raise ValueError("must be a transaction hash: 0x and 64 hex digits")
    return value


TX_SCHEMA = Field(json_schema_extra={"pattern": f"^{TX_HASH.pattern}$"})
TxHash = Annotated[str, AfterValidator(_tx_hash), TX_SCHEMA]
OptionalTxHash = Annotated[str | None, AfterValidator(_tx_hash), TX_SCHEMA]


class AlgorithmMeta(Schema):
    rawcode: str = ""
    url: str = ""
    container: Container
    language: str = ""
    version: str = ""

    @model_validator(mode="after")
    def _code_source(self) -> AlgorithmMeta:
        if bool(self.rawcode) == bool(self.url):
            raise ValueError("give exactly one of rawcode or url")
        return self


class DatasetInput(Schema):
    document_id: Id = Field(alias="documentId")
    service_id: Id = Field(alias="serviceId")
    transfer_tx_id: TxHash = Field(alias="transferTxId")
    userdata: UserData = None


class AlgorithmInput(Schema):
    document_id: OptionalId = Field(default=None, alias="documentId")
    service_id: OptionalId = Field(default=None, alias="serviceId")
    transfer_tx_id: OptionalTxHash = Field(default=None, alias="transferTxId")
    meta: AlgorithmMeta | None = None
    userdata: UserData = Field(
        default=None, validation_alias=AliasChoices("userdata", "algouserdata")
    )
    algocustomdata: UserData = None

    @model_validator(mode="after")
    def _one_source(self) -> AlgorithmInput:
        if self.meta is None and not self.document_id:
            raise ValueError(
                "The algorithm.documentId field is required when algorithm.meta is not present."
            )
        if self.meta is None and not (self.service_id and self.transfer_tx_id):
            raise ValueError("a published algorithm needs serviceId and transferTxId")
        return self


class Signed(Schema):
    consumer_address: Address = Field(alias="consumerAddress")
    signature: str | None = Field(default=None, max_length=200)
    nonce: Nonce | None = None


class StartRequest(Signed):
    nonce: Nonce
    environment: Id
    dataset: DatasetInput
    algorithm: AlgorithmInput
    additional_datasets: list[DatasetInput] = Field(
        default_factory=list,
        max_length=16,
        validation_alias=AliasChoices("additionalDatasets", "additionalInputs"),
    )
    output: UserData = None
    algocustomdata: UserData = None

    @model_validator(mode="before")
    @classmethod
    def _empty_additional(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("additionalDatasets", "additionalInputs"):
                if data.get(key) in ("", None):
                    data = {k: v for k, v in data.items() if k != key}
        return data


class InitializeDataset(Schema):
    document_id: Id = Field(alias="documentId")
    service_id: Id = Field(alias="serviceId")
    transfer_tx_id: OptionalTxHash = Field(default=None, alias="transferTxId")
    userdata: UserData = None


class InitializeAlgorithm(Schema):
    document_id: OptionalId = Field(default=None, alias="documentId")
    service_id: OptionalId = Field(default=None, alias="serviceId")
    transfer_tx_id: OptionalTxHash = Field(default=None, alias="transferTxId")
    meta: AlgorithmMeta | None = None

    @model_validator(mode="after")
    def _one_source(self) -> InitializeAlgorithm:
        if self.meta is None and not self.document_id:
            raise ValueError(
                "The algorithm.documentId field is required when algorithm.meta is not present."
            )
        if self.document_id and not self.service_id:
            raise ValueError("a published algorithm needs its serviceId")
        return self


class InitializeCompute(Schema):
    env: Id
    valid_until: Annotated[int, Field(ge=0, le=2**63, alias="validUntil")]


class InitializeRequest(Schema):
    """POST initializeCompute: unsigned, as the reference (it only prices and signs fees)."""

    consumer_address: Address = Field(alias="consumerAddress")
    datasets: Annotated[list[InitializeDataset], Field(min_length=1, max_length=17)]
    algorithm: InitializeAlgorithm
    compute: InitializeCompute


class JobRequest(Signed):
    job_id: OptionalId = Field(default=None, alias="jobId")
    document_id: OptionalId = Field(default=None, alias="documentId")


class DeleteRequest(JobRequest):
    """DELETE names one job: engines delete by id only."""

    job_id: Id = Field(alias="jobId")


class ResultRequest(Signed):
    nonce: Nonce
    job_id: Id = Field(alias="jobId")
    index: Annotated[int, Field(ge=0, le=100_000)]


class NonceRequest(Schema):
    user_address: Address = Field(alias="userAddress")


class EnvironmentsRequest(Schema):
    chain_id: Annotated[int | None, Field(default=None, ge=1, alias="chainId")]
