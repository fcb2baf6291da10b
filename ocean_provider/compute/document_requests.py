"""Request models of ``POST /encrypt`` and ``POST /decrypt``: their shape, checked before a
nonce is spent; what the document means (factory, state, hash) is checked by ``Documents``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from ocean_provider.compute.requests import OptionalTxHash
from ocean_provider.wire.fields import Address, Nonce, Schema

OCTET_STREAM = "application/octet-stream"
HEX = re.compile(r"(?:0[xX])?((?:[0-9a-fA-F]{2})*)")
HASH_BYTES = 32


def _hex_bytes(value: Any) -> Any:
    """``0x``-prefixed (or bare) hex text as bytes; anything else is left for the type check."""
    if not isinstance(value, str):
        return value
    match = HEX.fullmatch(value)
    if match is None:
        raise ValueError("must be hex text: 0x and an even number of hex digits")
    return bytes.fromhex(match.group(1))


def _document_hash(value: bytes | None) -> bytes | None:
    if value is not None and len(value) != HASH_BYTES:
        raise ValueError("must be the sha256 of the document: 0x and 64 hex digits")
    return value


def _octet_stream(value: str) -> str:
    if value != OCTET_STREAM:
        raise ValueError(f"Invalid request content type: should be {OCTET_STREAM}")
    return value


def _required_chain(value: Any) -> Any:
    if value is None or value == "":
        raise ValueError("Missing chainId query parameter.")
    return value


HexBytes = Annotated[bytes, BeforeValidator(_hex_bytes)]
ChainId = Annotated[int, Field(ge=1, le=2**63)]


class EncryptRequest(Schema):
    """The body itself is the document; these are the request's other parts."""

    content_type: Annotated[str, AfterValidator(_octet_stream)] = Field(alias="Content-Type")
    chain_id: Annotated[ChainId, BeforeValidator(_required_chain)] = Field(alias="chainId")

    @model_validator(mode="before")
    @classmethod
    def _chain_named(cls, data: Any) -> Any:
        """A missing chainId reaches its validator, for the reference's message."""
        if isinstance(data, dict) and "chainId" not in data:
            return {**data, "chainId": None}
        return data


class DecryptRequest(Schema):
    """Either ``transactionId`` (the metadata is read from that transaction's event), or
    ``encryptedDocument`` + ``flags`` + ``documentHash``; ``transactionId`` wins when both
    are given, as in the reference."""

    decrypter_address: Address = Field(alias="decrypterAddress")
    chain_id: ChainId = Field(alias="chainId")
    data_nft_address: Address = Field(alias="dataNftAddress")
    transaction_id: OptionalTxHash = Field(default=None, alias="transactionId")
    encrypted_document: HexBytes | None = Field(default=None, alias="encryptedDocument")
    flags: Annotated[int | None, Field(ge=0, le=255)] = None
    document_hash: Annotated[HexBytes | None, AfterValidator(_document_hash)] = Field(
        default=None, alias="documentHash"
    )
    nonce: Nonce
    signature: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _one_source(self) -> DecryptRequest:
        if self.transaction_id is None and (
            self.encrypted_document is None or self.flags is None or self.document_hash is None
        ):
            raise ValueError(
                "give transactionId, or encryptedDocument, flags and documentHash together"
            )
        return self
