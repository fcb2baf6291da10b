"""What the consumer client raises: the Provider's refusals, replies it cannot read, and
orders the chain reverted. Transport failures stay ``requests``' own exceptions."""

from __future__ import annotations


class ClientError(Exception):
    """Base class of the client's own errors."""


class ProviderRefused(ClientError):
    """The Provider answered with an error status; ``code`` is its stable error code
    (``"nonce_reused"``, ``"order_already_used"``, ...), ``error`` its message."""

    def __init__(self, status: int, code: str, error: str) -> None:
        super().__init__(f"{status} {code}: {error}")
        self.status = status
        self.code = code
        self.error = error


class ProviderReplyInvalid(ClientError):
    """A success reply whose body is not what the endpoint returns."""


class OrderReverted(ClientError):
    """An order's transaction (or its fee approval) was mined with status 0."""
