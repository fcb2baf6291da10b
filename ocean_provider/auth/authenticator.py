"""Authenticate a signed request: signature first, then the nonce, atomically consumed.

The signature is checked before the nonce so that nobody can burn another
address's nonces; both happen before any side effect. The store records the
digest of each accepted message together with the nonce, so a signature is
good for one request only, whichever route, job or nonce it is read as.

Two forms of ocean.js 3.x are accepted where a route asks for them: a stop
signed without the nonce (the nonce is sent, fresh, and consumed), and a delete
signed with the address's next nonce but sent without it.

A ``SignerLimit`` (the per-signer rate limit) is asked once the signature names the
signer and before the nonce is consumed, so a refused request keeps its nonce; only a
request whose nonce was accepted counts against the signer, so a replayed or forged
request cannot spend another address's budget.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Protocol

from ocean_provider.auth.addresses import checksum_address
from ocean_provider.auth.nonces import INITIAL_NONCE, NonceStore, nonce_text, parse_nonce
from ocean_provider.auth.signing import message_hash, verify_digest
from ocean_provider.errors import SignatureInvalid, SignatureMissing, ValidationFailed

log = logging.getLogger(__name__)


class SignerLimit(Protocol):
    def check(self, signer: str) -> None:
        """Raise ``RateLimited`` when ``signer`` is over its limit; count nothing."""

    def record(self, signer: str) -> None:
        """Count one authenticated request of ``signer``; ``RateLimited`` if over."""


class RequestAuthenticator:
    def __init__(
        self,
        nonces: NonceStore,
        limit: SignerLimit | None = None,
        *,
        on_signer: Callable[[str], None] | None = None,
    ) -> None:
        """``limit``: the per-signer rate limit; ``on_signer`` hears of each authenticated
        signer (the request log names it)."""
        self.nonces = nonces
        self.limit = limit
        self._on_signer = on_signer

    def _consume(
        self, signer: str, nonce: Decimal, digest: bytes, *, reusable: bool = False
    ) -> None:
        if self.limit is not None:
            self.limit.check(signer)
        self.nonces.consume(signer, nonce, digest, reusable=reusable)
        if self.limit is not None:
            self.limit.record(signer)

    def authenticate(
        self,
        consumer: str,
        message: str,
        signature: str | None,
        nonce: str | None,
        *,
        unsigned_nonce: bool = False,
        implied_nonce: bool = False,
    ) -> str:
        """Verify ``message + nonce`` and consume the nonce; return the checksummed signer.

        ``unsigned_nonce``: also accept a signature over ``message`` alone (ocean.js's
        stop); the nonce must still be fresh. ``implied_nonce``: without a nonce, check
        against the address's next one and consume that (ocean.js's delete).
        """
        if not signature:
            raise SignatureMissing()
        if nonce is None:
            if implied_nonce:
                return self._with_next_nonce(consumer, message, signature)
            raise ValidationFailed({"nonce": ["The nonce field is required."]})
        value = parse_nonce(nonce)
        digest = message_hash(message + nonce)
        reusable = False
        try:
            verify_digest(consumer, digest, signature)
        except SignatureInvalid:
            if not unsigned_nonce:
                raise
            digest, reusable = message_hash(message), True
            verify_digest(consumer, digest, signature)
        signer = checksum_address(consumer)
        self._consume(signer, value, digest, reusable=reusable)
        log.debug("authenticated %s", signer)
        return self._authenticated(signer)

    def _with_next_nonce(self, consumer: str, message: str, signature: str) -> str:
        signer = checksum_address(consumer)
        current = self.nonces.current(signer)
        implied = (INITIAL_NONCE if current is None else current) + 1  # what /nonce + 1 gives
        digest = message_hash(message + nonce_text(implied))
        verify_digest(consumer, digest, signature)
        self._consume(signer, implied, digest)  # refused if another request took it
        log.debug("authenticated %s with its next nonce", signer)
        return self._authenticated(signer)

    def _authenticated(self, signer: str) -> str:
        if self._on_signer is not None:
            self._on_signer(signer)
        return signer
