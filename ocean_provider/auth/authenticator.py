"""Authenticate a signed request: signature first, then the nonce, atomically consumed.

The signature is checked before the nonce so that nobody can burn another
address's nonces; both happen before any side effect.
"""

from __future__ import annotations

import logging

from eth_utils.address import to_checksum_address

from ocean_provider.auth.nonces import NonceStore, parse_nonce
from ocean_provider.auth.signing import verify_signature
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
        verify_signature(consumer, message + nonce, signature)
        signer = str(to_checksum_address(consumer))
        self.nonces.consume(signer, value)
        log.debug("authenticated %s", signer)
        return signer
