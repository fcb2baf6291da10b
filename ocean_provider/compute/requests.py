"""Request models: the shape of every compute request, and field errors for bad shapes.

The views parse with these; the compute service takes them as typed input.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from ocean_provider import bounded_json
from ocean_provider.auth.nonces import parse_nonce
from ocean_provider.errors import ValidationFailed

ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
MAX_ID = 256


def _address(value: str) -> str:
    if not ADDRESS.match(value):
        raise ValueError("must be a 0x-prefixed Ethereum address")
    return value


def _nonce_text(value: Any) -> str:
    """Keep the text the client signed; check that it is a number."""
    try:
        parse_nonce(value)
    except ValidationFailed as exc:
        raise ValueError(exc.errors["nonce"][0]) from None
    return str(value)


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


Address = Annotated[str, AfterValidator(_address)]
Nonce = Annotated[str, BeforeValidator(_nonce_text)]
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID)]
OptionalId = Annotated[str | None, Field(default=None, max_length=MAX_ID)]
UserData = Annotated[dict[str, Any] | None, BeforeValidator(_json_object)]


class Schema(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, str_strip_whitespace=True)


class Container(Schema):
    entrypoint: Annotated[str, Field(min_length=1, max_length=1024)]
    image: Annotated[str, Field(min_length=1, max_length=256)]
    tag: Annotated[str, Field(default="latest", max_length=128)]
    checksum: Annotated[str, Field(default="", max_length=128)]


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
    transfer_tx_id: Id = Field(alias="transferTxId")
    userdata: UserData = None


class AlgorithmInput(Schema):
    document_id: OptionalId = Field(default=None, alias="documentId")
    service_id: OptionalId = Field(default=None, alias="serviceId")
    transfer_tx_id: OptionalId = Field(default=None, alias="transferTxId")
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


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: dict[str, Any]) -> M:
    """Validate ``data``; bad shapes raise ValidationFailed with a field -> messages map."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc)) from None


def field_errors(exc: ValidationError) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for item in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(part) for part in item["loc"] if not str(part).startswith("function-"))
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "missing":
            message = f"The {loc} field is required."
        errors.setdefault(loc or "body", []).append(message)
    return errors
