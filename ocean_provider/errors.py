"""One error hierarchy: each class carries its HTTP status and a stable code.

Messages are written for the caller. They never carry secrets, signatures,
RPC URLs or request bodies; the single handler in ``web.error_handlers`` turns any
``ProviderError`` into the JSON body ``{"error": ..., "code": ...}``.
"""

from __future__ import annotations

from typing import Any


class ProviderError(Exception):
    """Base class: an error the caller may see, with status and stable code."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, error: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self._error = error

    def body(self) -> dict[str, Any]:
        """The JSON body of the reply."""
        error = self._error if self._error is not None else self.message
        return {"error": error, "code": self.code}


class ValidationFailed(ProviderError):
    """The request's shape is wrong; ``errors`` maps each field to its messages."""

    status = 400
    code = "invalid_request"

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("Validation error")
        self.errors = errors

    def body(self) -> dict[str, Any]:
        first = next(iter(self.errors.values()), ["invalid request"])
        return {
            "error": first[0],
            "code": self.code,
            "message": "Validation error",
            "errors": self.errors,
            "success": False,
        }


class SignatureMissing(ValidationFailed):
    code = "signature_missing"

    def __init__(
        self, detail: str = "Invalid signature provided. Please check the nonce or documentId."
    ) -> None:
        super().__init__({"signature": [detail]})


class SignatureInvalid(ValidationFailed):
    code = "signature_invalid"

    def __init__(self, detail: str) -> None:
        super().__init__({"signature": [f"Invalid signature: {detail}"]})


class NonceReused(ValidationFailed):
    code = "nonce_too_low"

    def __init__(self, stored: str, given: str) -> None:
        super().__init__(
            {"nonce": [f"Invalid signature expected nonce ({stored}) > current nonce ({given})."]}
        )


class SignatureReused(ValidationFailed):
    """This exact signed message was accepted before (perhaps read as another route's)."""

    code = "signature_reused"

    def __init__(self) -> None:
        super().__init__(
            {"signature": ["This signed message was already used; sign again with a new nonce."]}
        )


class PayloadTooLarge(ProviderError):
    status = 413
    code = "payload_too_large"


class RangeNotSatisfiable(ProviderError):
    """The result exists but the requested byte range lies outside it."""

    status = 416
    code = "range_not_satisfiable"

    def __init__(self, message: str, *, size: int | None = None) -> None:
        super().__init__(message)
        self.size = size


class StoreUnavailable(ProviderError):
    """The nonce store (SQLite or Redis) cannot be read or written right now."""

    status = 503
    code = "nonce_store_unavailable"


class RateLimited(ProviderError):
    """Too many requests of one kind (start, status, results, public) from this client IP or
    signer; ``retry_after``: seconds until the next one may pass (the ``Retry-After`` header)."""

    status = 429
    code = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many requests; retry in {retry_after} s.")
        self.retry_after = retry_after


class MetricsTokenInvalid(ProviderError):
    """``/metrics`` with ``METRICS_TOKEN`` set, asked without that bearer token."""

    status = 401
    code = "metrics_token_invalid"

    def __init__(self) -> None:
        super().__init__("/metrics needs the bearer token METRICS_TOKEN names")


class RouteNotFound(ProviderError):
    status = 404
    code = "not_found"


class MethodNotAllowed(ProviderError):
    status = 405
    code = "method_not_allowed"


class JobNotFound(ProviderError):
    """No job of the signer matches; said the same way whether or not it exists."""

    status = 404
    code = "job_not_found"


class ResultNotFound(ProviderError):
    status = 404
    code = "result_not_found"


class ComputeDisabled(ProviderError):
    """No compute engine is configured (the reference answers 404 here too)."""

    status = 404
    code = "compute_disabled"


class ComputeRefused(ProviderError):
    """Policy or order checks refused the job: ``{"error": {resource: reason}}``."""

    status = 400

    def __init__(self, resource: str, reason: str, message: str | None = None) -> None:
        super().__init__(message or f"{resource}: {reason}", error={resource: reason})
        self.code = reason
        self.resource = resource


class DdoSourceMissing(ProviderError):
    """No DDO source is configured (ADDRESS_FILE with the chain's factory, or Aquarius)."""

    status = 501
    code = "ddo_source_missing"


class OperatorUnavailable(ProviderError):
    status = 503
    code = "operator_unavailable"


class OperatorFailed(ProviderError):
    """The engine answered with an error we cannot map to the caller's fault."""

    status = 502
    code = "operator_error"


class OperatorRejected(ProviderError):
    """The engine refused the request as invalid (its 4xx), e.g. unknown environment."""

    status = 400
    code = "operator_rejected"


class EnvironmentNotFound(ProviderError):
    status = 400
    code = "environment_not_found"


class ChainNotSupported(ProviderError):
    status = 400
    code = "chain_not_supported"


class ChainUnavailable(ProviderError):
    """The chain's RPC failed or timed out; the text never names its URL."""

    status = 503
    code = "chain_unavailable"


class AquariusUnavailable(ProviderError):
    """Aquarius did not answer in time, or not with the DDO asked for."""

    status = 503
    code = "aquarius_unavailable"


class ConfigurationError(Exception):
    """A setting is missing or malformed; raised at boot, names the setting."""


class NonceNotFresh(ValidationFailed):
    """The engine accepted this provider nonce before, or it lies outside the time window."""

    code = "nonce_not_fresh"

    def __init__(self, detail: str) -> None:
        super().__init__({"nonce": [detail]})


class DocumentRefused(ProviderError):
    """``/encrypt`` or ``/decrypt`` refused the document: status 400 (the request's document,
    transaction or hash) or 403 (the decrypter or the asset's state), with a stable code."""

    def __init__(self, message: str, *, code: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class FileUnavailable(ProviderError):
    """A service file could not be fetched (its server is down, refused, or its address is
    not allowed); the message gives the fetcher's reason, which never names the URL."""

    status = 502
    code = "file_unavailable"
