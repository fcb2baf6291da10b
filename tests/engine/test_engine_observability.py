"""The engine's ``/metrics`` (jobs by environment and status, sandbox kills by limit) and its
request lines, with the Provider's request id, on a real engine."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from ocean_provider.app import create_app
from ocean_provider.devnet.embedded import EmbeddedEngine, start_embedded_engine
from ocean_provider.engine.metrics import KILL_LIMITS
from ocean_provider.web.log_format import JsonFormatter
from tests.api.helpers import COMPUTE, job_params
from tests.conftest import PROVIDER_KEY, Consumer, FakeDdoResolver, FakeOrderVerifier, make_settings
from tests.engine.conftest import environment
from tests.engine.jobs import submit, wait

pytestmark = pytest.mark.integration
SLEEP = "import time; time.sleep(30)"


def _samples(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    reply = requests.get(f"{url}/metrics", timeout=10)
    assert reply.status_code == 200, reply.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
    }


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[EmbeddedEngine]:
    envs = [environment("local"), environment("short", maxJobDuration=1)]
    engine = start_embedded_engine(tmp_path / "engine", envs, PROVIDER_KEY, LOG_FORMAT="json")
    yield engine
    engine.close()


def test_jobs_by_environment_and_status_and_kills_by_limit(
    engine: EmbeddedEngine, data_url: str
) -> None:
    before = _samples(engine.url)
    kills = {limit: before[("ocean_engine_sandbox_kills_total", frozenset({("limit", limit)}))]
             for limit in KILL_LIMITS.values()}  # fmt: skip
    assert set(kills.values()) == {0.0}  # every limit shows before any kill
    done = wait(engine.client, submit(engine.client, "print('hi')", "DATA_URL"))
    timed_out = wait(engine.client, submit(engine.client, SLEEP, "DATA_URL", env="short"))
    assert (done.status, timed_out.status) == (70, 42), timed_out.status_text
    found = _samples(engine.url)
    assert (
        found[("ocean_engine_jobs", frozenset({("environment", "local"), ("status", "70")}))] == 1
    )
    assert (
        found[("ocean_engine_jobs", frozenset({("environment", "short"), ("status", "42")}))] == 1
    )
    assert found[("ocean_engine_sandbox_kills_total", frozenset({("limit", "wall_time")}))] == 1
    route = {("route", "/api/v1/operator/compute"), ("method", "POST"), ("status", "200")}
    assert found[("ocean_engine_http_requests_total", frozenset(route))] == 2
    text = requests.get(f"{engine.url}/metrics", timeout=10).text
    assert done.job_id not in text and done.owner not in text


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


def test_the_engine_logs_the_providers_request_id(
    engine: EmbeddedEngine, tmp_path: Path, consumer: Consumer
) -> None:
    settings = make_settings(tmp_path, OPERATOR_SERVICE_URL=engine.url, LOG_FORMAT="json")
    provider = create_app(settings, ddos=FakeDdoResolver({}), orders=FakeOrderVerifier())
    handler, root = Lines(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        reply = provider.test_client().get(
            COMPUTE, query_string=job_params(consumer), headers={"X-Request-ID": "from-consumer-7"}
        )
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert reply.status_code == 404 and reply.headers["X-Request-ID"] == "from-consumer-7"
    access = [line for line in handler.lines if line["logger"] == "ocean_provider.access"]
    by_route = {line["route"]: line for line in access}
    engine_line = by_route["/api/v1/operator/compute"]
    assert engine_line["request_id"] == "from-consumer-7"
    assert engine_line["signer"] == engine.client.provider_address  # the calling Provider
    assert by_route[COMPUTE]["request_id"] == "from-consumer-7"
