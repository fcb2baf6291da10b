"""The engine's metrics: besides requests and latency (``web.metrics``), jobs by environment
and status, read from the job store at each scrape (exact across restarts; a finished job
counts until its storage expires), and sandbox kills by the limit that ended the run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from ocean_provider.engine.sandbox.types import OutcomeReason
from ocean_provider.engine.store import JobStore
from ocean_provider.web.metrics import AppMetrics

# The sandbox's outcome reason -> the limit label of a kill
KILL_LIMITS: dict[OutcomeReason, str] = {
    "timeout": "wall_time",
    "memory": "memory",
    "processes": "processes",
    "output_limit": "output_size",
}


class JobsCollector(Collector):
    """``ocean_engine_jobs{environment, status}``: how many jobs the store holds in each."""

    def __init__(self, store: JobStore) -> None:
        self._store = store

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "ocean_engine_jobs",
            "Jobs the engine holds, by environment and status code (finished ones until "
            "their storage expires).",
            labels=("environment", "status"),
        )
        for environment, status, count in self._store.counts():
            jobs.add_metric((environment, str(status)), count)
        yield jobs


class EngineMetrics(AppMetrics):
    def __init__(
        self, store: JobStore, *, multiprocess_dir: Path | None = None, token: str | None = None
    ) -> None:
        super().__init__("ocean_engine", multiprocess_dir=multiprocess_dir, token=token)
        self.sandbox_kills = self.counter(
            "sandbox_kills", "Algorithm runs killed over a limit, by limit.", ("limit",)
        )
        for limit in KILL_LIMITS.values():
            self.sandbox_kills.labels(limit)  # every limit shows, at 0 until one happens
        self.add_scraped(JobsCollector(store))

    def observe_outcome(self, reason: OutcomeReason) -> None:
        limit = KILL_LIMITS.get(reason)
        if limit is not None:
            self.sandbox_kills.labels(limit).inc()
