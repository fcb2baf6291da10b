"""Rate limits per client IP and per signer address, by route class (flask-limiter).

Every route but ``GET /`` (health), ``/metrics`` and CORS preflights belongs to one class:
``start``, ``status``, ``results`` or ``public`` (anything not named below, such as a
route another blueprint adds). Each class has its own limit (``RATE_LIMIT_<CLASS>``),
counted on its own for each client IP, before the view runs, and for each signer, inside
authentication: after the signature names the signer, before its nonce is consumed, and
counting only requests whose nonce was accepted (``auth.authenticator.SignerLimit``).

Counters live in Redis when ``REDIS_CONNECTION`` is set (``ocean_provider:rate:...`` keys,
shared by every worker and host), else in each process's memory. When Redis fails, limits
fail open to per-process memory counters (one warning, Redis asked again with backoff):
a limit is a guard against floods, not a security check, and turning a Redis outage into
a full outage of status and results would hurt every consumer more than a looser limit.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask, Response, request
from flask_limiter import Limiter, RateLimitExceeded
from limits import parse_many

from ocean_provider.errors import RateLimited
from ocean_provider.web.error_handlers import rate_limited_reply
from ocean_provider.web.metrics import METRICS_PATH
from ocean_provider.web.rate_limit_settings import RateLimitSettings

log = logging.getLogger(__name__)

ENDPOINT_CLASSES = {  # endpoint -> class; any other endpoint is "public"
    "services.initializeCompute": "start",
    "services.computeStart": "start",
    "services.computeStatus": "status",
    "services.computeStop": "status",
    "services.computeDelete": "status",
    "services.computeResult": "results",
    "consume.download": "results",
}
EXEMPT_PATHS = frozenset({"/", METRICS_PATH})  # health; Prometheus scrapes
KEY_PREFIX = "ocean_provider:rate"  # as the nonce and order stores' ocean_provider: keys
REDIS_TIMEOUT = 1.0  # seconds; then the counters fall back to memory


def route_class() -> str:
    return ENDPOINT_CLASSES.get(request.endpoint or "", "public")


def client_ip(trusted_proxies: int) -> str:
    """The socket's address, or with ``trusted_proxies`` N the address the Nth proxy from
    us saw (``X-Forwarded-For``'s Nth entry from the right, as werkzeug's ProxyFix reads
    it); a header with fewer entries than proxies is not trusted."""
    if trusted_proxies:
        forwarded = str(request.environ.get("HTTP_X_FORWARDED_FOR", ""))
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= trusted_proxies:
            return hops[-trusted_proxies]
    return request.remote_addr or "unknown"


class RateLimits:
    """The Provider's limits: flask-limiter for client IPs, and the ``SignerLimit`` the
    authenticator asks about signers."""

    def __init__(self, settings: RateLimitSettings, redis_url: str | None) -> None:
        self.settings = settings
        self._items = {c: parse_many(text) for c, text in settings.limits.items()}
        storage: dict[str, Any] = {}
        if redis_url:
            storage = {
                "key_prefix": KEY_PREFIX,
                "socket_connect_timeout": REDIS_TIMEOUT,
                "socket_timeout": REDIS_TIMEOUT,
            }
        self.limiter = Limiter(
            key_func=self._ip_key,
            default_limits=[self._class_limit],
            in_memory_fallback=[self._class_limit],  # type: ignore[list-item]
            request_identifier=route_class,  # default limits are counted per class
            strategy="sliding-window-counter",
            storage_uri=redis_url or "memory://",
            storage_options=storage,
            swallow_errors=True,
            headers_enabled=False,  # Retry-After on a 429 only: no storage read per reply
        )

    def init_app(self, app: Flask) -> None:
        self.limiter.init_app(app)
        self.limiter.request_filter(_exempt)
        app.register_error_handler(RateLimitExceeded, self._ip_refused)

    def _ip_key(self) -> str:
        return "ip:" + client_ip(self.settings.trusted_proxies)

    def _class_limit(self) -> str:
        return self.settings.limits[route_class()]

    def _ip_refused(self, _: RateLimitExceeded) -> Response:
        limit = self.limiter.current_limit
        reset_at = limit.window.reset_time if limit is not None else time.time() + 1
        return rate_limited_reply(RateLimited(_seconds_until(reset_at)))

    # SignerLimit
    def check(self, signer: str) -> None:
        self._signer(signer, count=False)

    def record(self, signer: str) -> None:
        self._signer(signer, count=True)

    def _signer(self, signer: str, *, count: bool) -> None:
        keys = ("signer:" + signer, route_class())
        strategy = self.limiter.limiter  # memory while Redis is down
        try:
            for item in self._items[keys[1]]:
                allowed = strategy.hit(item, *keys) if count else strategy.test(item, *keys)
                if not allowed:
                    reset_at, _ = strategy.get_window_stats(item, *keys)
                    raise RateLimited(_seconds_until(reset_at))
        except RateLimited:
            raise
        except Exception as exc:  # fail open: see the module's note
            log.warning("rate limit storage failed (%s): signer not limited", type(exc).__name__)


def _exempt() -> bool:
    return request.method == "OPTIONS" or request.path in EXEMPT_PATHS


def _seconds_until(moment: float) -> int:
    return max(1, int(moment - time.time() + 0.999))
