"""A nonce store that is down answers 503 with its own code, on every route that needs it."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from ocean_provider.app import create_app
from ocean_provider.devnet.ports import free_port
from tests.api.helpers import COMPUTE, job_params
from tests.conftest import Consumer, make_settings


@pytest.fixture
def down_client(tmp_path: Path) -> FlaskClient:
    settings = make_settings(tmp_path, REDIS_CONNECTION=f"redis://127.0.0.1:{free_port()}/0")
    return create_app(settings).test_client()


def test_redis_stopped_is_503(down_client: FlaskClient, consumer: Consumer) -> None:
    for reply in (
        down_client.get("/api/services/nonce", query_string={"userAddress": consumer.address}),
        down_client.get(COMPUTE, query_string=job_params(consumer)),
    ):
        assert reply.status_code == 503
        assert reply.get_json() == {
            "error": "the nonce store is unavailable; try again shortly",
            "code": "nonce_store_unavailable",
        }
