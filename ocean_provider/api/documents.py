"""``POST /encrypt`` and ``POST /decrypt``: ECIES to and from this Provider's key.

Replies are ``text/plain`` with status 201, as the reference's: the ciphertext as ``0x``
hex, or the plain document. A decrypted document is whatever its publisher stored, so
browsers are told not to sniff it into anything else.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from ocean_provider.api.context import context
from ocean_provider.auth.messages import decrypt_message
from ocean_provider.compute.document_requests import DecryptRequest, EncryptRequest
from ocean_provider.web.params import body_bytes, request_params
from ocean_provider.wire.fields import parse

bp = Blueprint("documents", __name__)


def _text(body: bytes | str) -> Response:
    response = Response(body, status=201, content_type="text/plain")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.post("/encrypt")
def encrypt() -> Response:
    fields = {**request.args.to_dict(), "Content-Type": request.mimetype}  # the header's
    req = parse(EncryptRequest, fields)
    return _text(context().documents.encrypt(req.chain_id, body_bytes()))


@bp.post("/decrypt")
def decrypt() -> Response:
    req = parse(DecryptRequest, request_params())
    message = decrypt_message(
        req.decrypter_address, req.chain_id, req.transaction_id, req.data_nft_address
    )
    signer = context().auth.authenticate(req.decrypter_address, message, req.signature, req.nonce)
    return _text(context().documents.decrypt(signer, req))
