"""Rate limits: per route class, per client IP and per signer, 429 with Retry-After."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests_mock as rm

from ocean_provider.auth.nonces import SqliteNonceStore
from tests.api.helpers import COMPUTE, job_params
from tests.conftest import Consumer, make_settings
from tests.web.helpers import (
    ADDRESS,
    CLASS_ROUTES,
    NONCE,
    ask,
    assert_limited,
    build_app,
    forwarded,
    limited_app,
    signed_status,
)


@pytest.mark.parametrize("route_class", list(CLASS_ROUTES))
def test_each_route_class_has_its_own_limit(tmp_path: Path, route_class: str) -> None:
    app = limited_app(tmp_path, **{f"RATE_LIMIT_{route_class.upper()}": "2/minute"})
    client = app.test_client()
    route = CLASS_ROUTES[route_class]
    first = [ask(client, route).status_code for _ in range(2)]
    assert 429 not in first
    assert_limited(ask(client, route))
    for other, other_route in CLASS_ROUTES.items():
        if other != route_class:
            assert ask(client, other_route).status_code != 429, other


def test_routes_of_one_class_share_its_count(tmp_path: Path) -> None:
    client = limited_app(tmp_path, RATE_LIMIT_STATUS="2/minute").test_client()
    assert ask(client, ("PUT", COMPUTE)).status_code == 400  # stop: no signature
    assert ask(client, ("DELETE", COMPUTE)).status_code == 400
    assert_limited(ask(client, ("GET", COMPUTE)))


def test_refusal_body_and_header(tmp_path: Path) -> None:
    client = limited_app(tmp_path, RATE_LIMIT_PUBLIC="1/minute").test_client()
    ask(client, CLASS_ROUTES["public"], query_string={"userAddress": ADDRESS})
    reply = ask(client, CLASS_ROUTES["public"], query_string={"userAddress": ADDRESS})
    assert_limited(reply)
    assert reply.get_json() == {
        "error": f"Too many requests; retry in {reply.headers['Retry-After']} s.",
        "code": "rate_limited",
    }


@pytest.mark.parametrize("route", [("GET", "/"), ("GET", "/metrics"), ("OPTIONS", NONCE)], ids=str)
def test_health_metrics_and_preflight_are_never_limited(
    tmp_path: Path, route: tuple[str, str]
) -> None:
    client = limited_app(tmp_path, RATE_LIMIT_PUBLIC="1/minute").test_client()
    for _ in range(4):
        assert ask(client, route).status_code in (200, 404)  # /metrics is another app part's
    assert ask(client, CLASS_ROUTES["public"]).status_code != 429


def test_each_client_ip_counts_alone(tmp_path: Path) -> None:
    client = limited_app(tmp_path, RATE_LIMIT_PUBLIC="1/minute").test_client()
    public = CLASS_ROUTES["public"]
    assert ask(client, public, ip="10.0.0.1").status_code != 429
    assert ask(client, public, ip="10.0.0.2").status_code != 429
    assert_limited(ask(client, public, ip="10.0.0.1"))


def test_forwarded_for_is_read_only_for_trusted_proxies(tmp_path: Path) -> None:
    untrusted = limited_app(tmp_path, RATE_LIMIT_PUBLIC="1/minute").test_client()
    assert forwarded(untrusted, "10.0.0.1").status_code != 429
    assert_limited(forwarded(untrusted, "10.0.0.2"))  # both are the proxy's address
    trusted = limited_app(tmp_path, RATE_LIMIT_PUBLIC="1/minute", TRUSTED_PROXIES="1").test_client()
    assert forwarded(trusted, "10.0.0.1").status_code != 429
    assert forwarded(trusted, "10.0.0.2").status_code != 429
    # a client's own X-Forwarded-For entries come first: the proxy's last one counts
    assert_limited(forwarded(trusted, "10.0.0.9, 10.0.0.1"))


def test_a_signer_counts_across_ips(
    tmp_path: Path, consumer: Consumer, other: Consumer, owner_jobs: rm.Mocker
) -> None:
    client = limited_app(tmp_path, RATE_LIMIT_STATUS="2/minute").test_client()
    assert signed_status(client, consumer, "10.0.0.1").status_code == 200
    assert signed_status(client, consumer, "10.0.0.2").status_code == 200
    calls = len(owner_jobs.request_history)
    assert_limited(signed_status(client, consumer, "10.0.0.3"))  # a fresh IP, a spent signer
    assert len(owner_jobs.request_history) == calls  # refused before the engine is asked
    assert signed_status(client, other, "10.0.0.3").status_code == 200  # same IP, other signer


def test_a_refusal_keeps_the_nonce(
    tmp_path: Path, consumer: Consumer, owner_jobs: rm.Mocker
) -> None:
    settings = make_settings(tmp_path, RATE_LIMIT_STATUS="1/minute")
    client = build_app(settings).test_client()
    assert signed_status(client, consumer, "10.0.0.1").status_code == 200
    spent = SqliteNonceStore(settings.storage_path).current(consumer.address)
    params = job_params(consumer)
    refused = ask(client, ("GET", COMPUTE), ip="10.0.0.2", query_string=params)
    assert_limited(refused)
    assert SqliteNonceStore(settings.storage_path).current(consumer.address) == spent
    unlimited = build_app(make_settings(tmp_path, RATE_LIMITS="off")).test_client()
    assert unlimited.get(COMPUTE, query_string=params).status_code == 200  # still good


def test_only_authenticated_requests_count_against_a_signer(
    tmp_path: Path, consumer: Consumer, owner_jobs: rm.Mocker
) -> None:
    """A replayed (or forged) request never spends its address's budget."""
    client = limited_app(tmp_path, RATE_LIMIT_STATUS="2/minute").test_client()
    params = job_params(consumer)
    assert ask(client, ("GET", COMPUTE), ip="10.0.0.1", query_string=params).status_code == 200
    for i in range(3):  # an eavesdropper replays it from IPs of its own
        replay = ask(client, ("GET", COMPUTE), ip=f"10.0.1.{i}", query_string=params)
        assert replay.status_code == 400
    assert signed_status(client, consumer, "10.0.0.1").status_code == 200


def test_off_switch(tmp_path: Path, consumer: Consumer, owner_jobs: rm.Mocker) -> None:
    app = limited_app(
        tmp_path, RATE_LIMITS="off", RATE_LIMIT_STATUS="1/minute", RATE_LIMIT_PUBLIC="1/minute"
    )
    assert "limiter" not in app.extensions
    client = app.test_client()
    for _ in range(3):
        assert ask(client, CLASS_ROUTES["public"]).status_code != 429
        assert signed_status(client, consumer, "10.0.0.1").status_code == 200
