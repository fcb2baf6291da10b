"""Prometheus metrics of both apps, served at ``/metrics``.

Each app owns its metrics (a ``CollectorRegistry`` per app, never the global one), so tests
that build many apps count apart. Under gunicorn (``ocean-provider serve`` / ``engine``), the
workers write their values into ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` sums every
worker's files; without it (tests, in-process servers) the app's own registry is served.

Labels are bounded sets only: the URL rule (never the path), the method, the status, an error
code, a call kind. Never an address, job id, DID or signature.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from pathlib import Path

from flask import Flask, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from ocean_provider.errors import MetricsTokenInvalid
from ocean_provider.web.request_log import RequestObserver

METRICS_PATH = "/metrics"
METRICS_ENDPOINT = "metrics"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CODE = re.compile(r"[a-z][a-z0-9_]{0,47}")


class TimedCount:
    """Durations by some labels (a histogram) and a count by the same labels plus the outcome
    (a counter: a status, ok or error). Their labelled children are kept: ``labels()``
    validates and locks on every call, and the label sets are bounded, so this stays small."""

    def __init__(self, counter: Counter, histogram: Histogram) -> None:
        self.counter, self.histogram = counter, histogram
        self._children: dict[tuple[str, ...], tuple[Counter, Histogram]] = {}

    def observe(self, labels: tuple[str, ...], outcome: str, seconds: float) -> None:
        key = (*labels, outcome)
        children = self._children.get(key)
        if children is None:
            children = (self.counter.labels(*key), self.histogram.labels(*labels))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


class AppMetrics:
    """The metrics every app has (requests by route and status, latency) and its registry.

    ``prefix`` names the app (``ocean_provider``, ``ocean_engine``); ``multiprocess_dir`` is
    where gunicorn's workers keep their values; ``token``, when set, is the bearer token
    ``/metrics`` asks for.
    """

    def __init__(
        self, prefix: str, *, multiprocess_dir: Path | None = None, token: str | None = None
    ) -> None:
        self.prefix = prefix
        self.registry = CollectorRegistry()
        self._multiprocess_dir = multiprocess_dir
        self._token = token
        self._scraped: list[Collector] = []
        self.requests = TimedCount(
            self.counter(
                "http_requests", "Requests served, by URL rule, method and status.",
                ("route", "method", "status"),
            ),
            self.histogram(
                "http_request_duration_seconds",
                "Time to the reply's headers, by URL rule and method.",
                ("route", "method"),
            ),
        )  # fmt: skip

    def counter(self, name: str, doc: str, labels: Iterable[str]) -> Counter:
        return Counter(f"{self.prefix}_{name}", doc, tuple(labels), registry=self.registry)

    def histogram(self, name: str, doc: str, labels: Iterable[str]) -> Histogram:
        return Histogram(
            f"{self.prefix}_{name}",
            doc,
            tuple(labels),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def add_scraped(self, collector: Collector) -> None:
        """A collector read at each scrape (the engine's jobs from its store), served as is
        in both modes: it lives in the one process that answers."""
        self._scraped.append(collector)
        self.registry.register(collector)

    def observe_request(
        self, route: str, method: str, status: int, seconds: float, code: str | None
    ) -> None:
        self.requests.observe((route, method), str(status), seconds)

    def exposition(self) -> bytes:
        if self._multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self._multiprocess_dir))  # type: ignore[no-untyped-call]
        for collector in self._scraped:
            registry.register(collector)
        return generate_latest(registry)

    def allowed(self, authorization: str | None) -> bool:
        if self._token is None:
            return True
        expected = f"Bearer {self._token}".encode()
        return hmac.compare_digest(expected, (authorization or "").encode())


def bounded_code(code: str) -> str:
    """An error code as a label: codes are constants, but anything else is ``other``."""
    return code if CODE.fullmatch(code) else "other"


def install_metrics(app: Flask, metrics: AppMetrics) -> RequestObserver:
    """Serve ``/metrics`` (endpoint ``metrics``); the observer the request log calls."""

    def serve_metrics() -> Response:
        if not metrics.allowed(request.headers.get("Authorization")):
            raise MetricsTokenInvalid()  # 401 JSON, with WWW-Authenticate from the handler
        return Response(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)

    app.add_url_rule(METRICS_PATH, METRICS_ENDPOINT, serve_metrics, methods=["GET"])
    return metrics.observe_request
