"""Metrics and logs of ``ocean-provider serve`` as operators run it: two gunicorn workers
share their metrics through a per-run folder, and ``LOG_FORMAT=json`` makes every line of
the output, gunicorn's own included, one JSON object, one line per request."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.live_servers import serve_provider

ROUNDS = 20


def _requests_total(url: str, route: str) -> float:
    text = requests.get(f"{url}/metrics", timeout=10).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "ocean_provider_http_requests_total" and s.labels["route"] == route
    )


def test_json_logs_and_metrics_summed_over_workers(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    (metrics_dir / "provider").mkdir(parents=True)
    (metrics_dir / "engine").mkdir()
    (metrics_dir / "engine" / "counter_1.db").write_bytes(b"the engine's, running")
    (metrics_dir / "provider" / "counter_999999.db").write_bytes(b"a dead run's values")
    settings = {
        "LOG_FORMAT": "json",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "STORAGE_PATH": str(tmp_path / "nonces.db"),
    }
    with serve_provider(tmp_path, settings, workers=2) as served:
        assert not (metrics_dir / "provider" / "counter_999999.db").exists()  # emptied at start
        assert (metrics_dir / "engine" / "counter_1.db").exists()  # another server's folder
        before = _requests_total(served.url, "/")  # the start-up probe's
        ids = [f"round-{i}" for i in range(ROUNDS)]
        for rid in ids:
            reply = requests.get(served.url, headers={"X-Request-ID": rid}, timeout=10)
            assert reply.headers["X-Request-ID"] == rid
        for _ in range(4):  # whichever worker answers sums both workers' files
            assert _requests_total(served.url, "/") == before + ROUNDS
        time.sleep(0.3)
        lines = [line for line in served.log.read_text().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # every line, gunicorn's too
    assert any(line["logger"] == "gunicorn.error" for line in parsed)
    access = [line for line in parsed if line["logger"] == "ocean_provider.access"]
    for rid in ids:
        (line,) = [a for a in access if a["request_id"] == rid]
        assert (line["route"], line["method"], line["status"]) == ("/", "GET", 200)
    assert not any('"GET / HTTP/1.1"' in line for line in lines)  # no gunicorn access line


def test_text_logs_name_the_request_id_and_the_run_folder_goes_at_exit(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    settings = {"TMPDIR": str(temp), "STORAGE_PATH": str(tmp_path / "nonces.db")}
    with serve_provider(tmp_path, settings, workers=1) as served:
        assert [p.name.startswith("ocean-provider-metrics-") for p in temp.iterdir()] == [True]
        requests.get(served.url, headers={"X-Request-ID": "text-id-1"}, timeout=10)
        assert _requests_total(served.url, "/") >= 1
        time.sleep(0.3)
        text = served.log.read_text()
    assert re.search(r'"GET / HTTP/1.1" 200 .* id=text-id-1', text), text
    assert list(temp.iterdir()) == []  # the master removed its run's folder
