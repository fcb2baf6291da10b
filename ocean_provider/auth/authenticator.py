"""Authenticate a signed request: signature first, then the nonce, atomically consumed.

The signature is checked before the nonce so that nobody can burn another
address's nonces; both happen before any side effect. The store records the
digest of each accepted message together with the nonce, so a signature is
good for one request only, whichever route, job or nonce it is read as.
"""

from __future__ import annotations

import logging

from ocean_provider.auth.addresses import checksum_address
from ocean_provider.auth.nonces import NonceStore, parse_nonce
from ocean_provider.auth.signing import message_hash, verify_digest
from ocean_provider.errors import SignatureMissing, ValidationFailed

log = logging.getLogger(__name__)


class RequestAuthenticator:
    def __init__(self, nonces: NonceStore) -> None:
        self.nonces = nonces

    def authenticate(
        self, consumer: str, message: str, signature: str | None, nonce: str | None
    ) -> str:
        """Verify and consume; return the signer's checksummed address."""
        if not signature:
            raise SignatureMissing()
        if nonce is None:
            raise ValidationFailed({"nonce": ["The nonce field is required."]})
        value = parse_nonce(nonce)
        digest = message_hash(message + nonce)
        verify_digest(consumer, digest, signature)
        signer = checksum_address(consumer)
        self.nonces.consume(signer, value, digest)
        log.debug("authenticated %s", signer)
        return signer
