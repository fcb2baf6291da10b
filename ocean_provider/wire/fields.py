"""Field types both sides validate requests with, and the parse that maps their errors.

The Provider's request models (``compute.requests``) and the engine's
(``engine.requests``) build on these, so an address, a nonce or an id is the
same shape on both sides of the wire. A bad shape is ``ValidationFailed`` with
a field -> messages map.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)

from ocean_provider.auth.nonces import MAX_NONCE_TEXT, parse_nonce
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


# Patterns for the OpenAPI documents (the validators above give the messages)
Address = Annotated[
    str, AfterValidator(_address), Field(json_schema_extra={"pattern": ADDRESS.pattern})
]
Nonce = Annotated[
    str,
    BeforeValidator(_nonce_text),
    Field(json_schema_extra={"pattern": r"^[0-9]+(\.[0-9]+)?$", "maxLength": MAX_NONCE_TEXT}),
]
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID)]
OptionalId = Annotated[str | None, Field(default=None, max_length=MAX_ID)]


class Schema(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, str_strip_whitespace=True)


class Container(Schema):
    """The image an algorithm runs in, as a DDO and a workflow name it."""

    entrypoint: Annotated[str, Field(min_length=1, max_length=1024)]
    image: Annotated[str, Field(min_length=1, max_length=256)]
    tag: Annotated[str, Field(default="latest", max_length=128)]
    checksum: Annotated[str, Field(default="", max_length=128)]


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
