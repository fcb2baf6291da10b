"""The request signature between our Provider and our engine (a header beside Ocean's).

Ocean's Operator-Service signature covers ``owner[+jobId]+nonce`` only, so a
status signature for a job also reads as a DELETE of it. Our Provider therefore
signs a second message, sent in ``HEADER``, that pins the whole request:

    ocean-engine-request/1 \\n METHOD \\n path \\n raw query \\n sha256(body) \\n nonce

The query and body are the exact bytes on the wire: the client signs what
``requests`` prepared, the engine checks what the WSGI server received, so
neither side re-encodes anything. Ocean's Operator-Service ignores the header.
"""

from __future__ import annotations

import hashlib

from ocean_provider.auth.signing import MessageSigner, verify_signature
from ocean_provider.errors import SignatureInvalid

HEADER = "X-Provider-Request-Signature"
SCHEME = "ocean-engine-request/1"
MAX_SIGNATURE_TEXT = 256


def request_message(method: str, path: str, query: str, body: bytes, nonce: str) -> str:
    """The canonical text both sides sign and verify."""
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join((SCHEME, method.upper(), path, query, digest, nonce))


def sign_request(
    signer: MessageSigner, *, method: str, path: str, query: str, body: bytes, nonce: str
) -> str:
    return signer.sign(request_message(method, path, query, body, nonce))


def verify_request(
    provider: str,
    signature: str | None,
    *,
    method: str,
    path: str,
    query: str,
    body: bytes,
    nonce: str,
) -> None:
    """Raise ``SignatureInvalid`` unless ``provider`` signed exactly this request."""
    if not signature:
        raise SignatureInvalid(f"the {HEADER} header is required")
    if len(signature) > MAX_SIGNATURE_TEXT:
        raise SignatureInvalid(f"the {HEADER} header is too long")
    try:
        verify_signature(provider, request_message(method, path, query, body, nonce), signature)
    except SignatureInvalid:
        raise SignatureInvalid(
            f"the {HEADER} header was not made by providerAddress over this request"
        ) from None
