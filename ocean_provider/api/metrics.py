"""The Provider's metrics: besides requests and latency (``web.metrics``), refusals of
signatures and nonces and of orders by their stable code, and each call to an engine by kind
and outcome, with its latency."""

from __future__ import annotations

from pathlib import Path

from ocean_provider.web.metrics import AppMetrics, TimedCount, bounded_code

AUTH_CODES = frozenset(
    {
        "signature_missing",
        "signature_invalid",
        "signature_reused",
        "nonce_too_low",
        "nonce_store_unavailable",
    }
)
ORDER_PREFIXES = ("order_", "provider_fee_")
ORDER_CODES = frozenset({"fees_not_paid", "datatoken_not_of_asset"})


class ProviderMetrics(AppMetrics):
    def __init__(self, *, multiprocess_dir: Path | None = None, token: str | None = None) -> None:
        super().__init__("ocean_provider", multiprocess_dir=multiprocess_dir, token=token)
        self.auth_refusals = self.counter(
            "auth_refusals", "Signed requests refused by signature or nonce, by code.", ("code",)
        )
        self.order_refusals = self.counter(
            "order_refusals", "Orders refused (on chain, or already used), by code.", ("code",)
        )
        self.engine_calls = TimedCount(
            self.counter(
                "engine_calls",
                "Calls to compute engines by kind and outcome (ok, refused, error, unavailable).",
                ("call", "outcome"),
            ),
            self.histogram(
                "engine_call_duration_seconds", "Time of a call to an engine, retries included.",
                ("call",),
            ),
        )  # fmt: skip

    def observe_request(
        self, route: str, method: str, status: int, seconds: float, code: str | None
    ) -> None:
        super().observe_request(route, method, status, seconds, code)
        if code is None:
            return
        if code in AUTH_CODES:
            self.auth_refusals.labels(code).inc()
        elif code in ORDER_CODES or code.startswith(ORDER_PREFIXES):
            self.order_refusals.labels(bounded_code(code)).inc()

    def observe_engine_call(self, kind: str, outcome: str, seconds: float) -> None:
        self.engine_calls.observe((kind,), outcome, seconds)
