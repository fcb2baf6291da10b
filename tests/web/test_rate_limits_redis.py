"""Rate limits in a real Redis: shared by Provider instances; a Redis outage fails open."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import redis
import requests_mock as rm

from tests.conftest import Consumer, make_settings
from tests.live_servers import redis_server
from tests.web.helpers import (
    CLASS_ROUTES,
    HIGH,
    ask,
    assert_limited,
    build_app,
    limited_app,
    signed_status,
)

pytestmark = pytest.mark.integration

PUBLIC = CLASS_ROUTES["public"]


def test_two_providers_share_their_counts(
    tmp_path: Path, consumer: Consumer, owner_jobs: rm.Mocker
) -> None:
    with redis_server(tmp_path) as url:
        limits = {"RATE_LIMIT_PUBLIC": "2/minute", "RATE_LIMIT_STATUS": "1/minute"}
        one = limited_app(tmp_path / "one", REDIS_CONNECTION=url, **limits).test_client()
        two = limited_app(tmp_path / "two", REDIS_CONNECTION=url, **limits).test_client()
        assert ask(one, PUBLIC).status_code != 429
        assert ask(two, PUBLIC).status_code != 429
        assert_limited(ask(one, PUBLIC))
        assert_limited(ask(two, PUBLIC))
        assert signed_status(one, consumer, "10.0.0.2").status_code == 200
        assert_limited(signed_status(two, consumer, "10.0.0.3"))  # the signer, on the other
        keys = [k.decode() for k in redis.Redis.from_url(url).keys("*")]
        rate_keys = [k for k in keys if "LIMITER" in k]
        assert rate_keys and all(k.startswith("ocean_provider:rate:") for k in rate_keys)


def test_a_redis_outage_fails_open_to_memory_counts(
    tmp_path: Path,
    consumer: Consumer,
    owner_jobs: rm.Mocker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with redis_server(tmp_path) as url:
        settings = make_settings(
            tmp_path,
            REDIS_CONNECTION=url,
            RATE_LIMIT_PUBLIC="2/minute",
            RATE_LIMIT_STATUS=HIGH,
            RATE_LIMIT_START=HIGH,
            RATE_LIMIT_RESULTS=HIGH,
        )
        client = build_app(settings).test_client()
        assert (
            ask(client, PUBLIC, query_string={"userAddress": consumer.address}).status_code == 200
        )
    # Redis is gone: the nonce store answers 503, the limits still count, in memory
    with caplog.at_level(logging.WARNING):
        assert ask(client, ("GET", "/api/services/computeEnvironments")).status_code != 429
        assert ask(client, ("GET", "/api/services/computeEnvironments")).status_code != 429
        assert_limited(ask(client, ("GET", "/api/services/computeEnvironments")))
        assert signed_status(client, consumer, "10.0.0.1").status_code == 503  # nonces: closed
    assert "falling back to in-memory storage" in caplog.text
