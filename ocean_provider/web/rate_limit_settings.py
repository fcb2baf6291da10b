"""The rate-limit settings: one limit per route class, and how many proxies to trust.

A limit is flask-limiter's string form (``"60/minute;1000/hour"``: every part applies).
Each client IP and each signer address gets the limit of the route's class on its own.
The defaults leave room for ocean.js and ocean.py, a consumer polling a job's status
every half second, and a marketplace's browser tabs; they stop floods.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from limits import parse_many

from ocean_provider.errors import ConfigurationError

ROUTE_CLASSES = ("start", "status", "results", "public")
DEFAULT_LIMITS: Mapping[str, str] = {
    "start": "60/minute;1000/hour",  # initializeCompute and start: order checks, fees, engine
    "status": "600/minute",  # status, stop, delete: polling
    "results": "300/minute",  # computeResult and download: streams
    "public": "1200/minute",  # nonce, environments, encrypt, decrypt, fileinfo, the rest
}


def setting_name(route_class: str) -> str:
    return f"RATE_LIMIT_{route_class.upper()}"


@dataclass(frozen=True)
class RateLimitSettings:
    """``limits``: route class -> limit string; ``trusted_proxies``: how many proxies in
    front of the Provider append to ``X-Forwarded-For`` (0: the socket's address is the
    client)."""

    limits: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    trusted_proxies: int = 0


def check_limit(name: str, text: str) -> str:
    """``text`` when flask-limiter reads it as one or more limits; else a boot error."""
    try:
        parsed = parse_many(text)
    except ValueError:
        parsed = []
    if not parsed or any(item.amount < 1 for item in parsed):
        raise ConfigurationError(
            f'{name} must be limits such as "10/minute;100/hour", got {text!r}'
        )
    return text
