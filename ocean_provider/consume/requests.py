"""Request models of ``POST /fileinfo`` and ``GET /download``, as the reference and
pod-configuration send them."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from ocean_provider.compute.requests import TxHash, UserData
from ocean_provider.wire.fields import Address, Id, Nonce, OptionalId, Schema

MAX_FILE_INDEX = 1023


class FileInfoRequest(Schema):
    """An asset's service (``did`` + ``serviceId``), or one ``url`` file object to check."""

    did: OptionalId = None
    service_id: OptionalId = Field(default=None, alias="serviceId")
    type: Annotated[str | None, Field(default=None, max_length=32)]
    url: Annotated[str | None, Field(default=None, max_length=8192)]
    method: Annotated[str | None, Field(default=None, max_length=16)]
    headers: dict[str, str] | None = None
    checksum: bool = False
    userdata: UserData = None

    @model_validator(mode="after")
    def _one_subject(self) -> FileInfoRequest:
        if self.did is None and self.url is None:
            raise ValueError("give did and serviceId, or a file object (type and url)")
        if self.did is not None and not self.service_id:
            raise ValueError("The serviceId field is required with did.")
        if self.did is None and self.type != "url":
            raise ValueError("a file object to check must be of type url")
        return self

    def file_object(self) -> dict[str, Any]:
        """The ``url`` file object the request names (its ``did`` form has none)."""
        file: dict[str, Any] = {"type": "url", "url": self.url, "method": self.method or "GET"}
        if self.headers:
            file["headers"] = self.headers
        return file


class DownloadRequest(Schema):
    """Signed by ``consumerAddress`` over ``documentId + nonce``."""

    document_id: Id = Field(alias="documentId")
    service_id: Id = Field(alias="serviceId")
    consumer_address: Address = Field(alias="consumerAddress")
    transfer_tx_id: TxHash = Field(alias="transferTxId")
    file_index: Annotated[int, Field(ge=0, le=MAX_FILE_INDEX, alias="fileIndex")]
    nonce: Nonce
    signature: str | None = Field(default=None, max_length=200)
    userdata: UserData = None
