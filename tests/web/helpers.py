"""Rate-limit tests' apps and requests: tiny limits for one class, 1000/minute for the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from ocean_provider.app import create_app
from ocean_provider.config import ProviderSettings
from ocean_provider.operator.client import OperatorClient
from tests.api.helpers import COMPUTE, job_params
from tests.conftest import ENGINE_URL, PROVIDER_KEY, Consumer, make_settings

NONCE = "/api/services/nonce"
HIGH = "1000/minute"
ADDRESS = "0x" + "1" * 40
# one route of each class, asked without parameters: refused for its shape, still counted
CLASS_ROUTES = {
    "start": ("POST", "/api/services/initializeCompute"),
    "status": ("GET", COMPUTE),
    "results": ("GET", "/api/services/computeResult"),
    "public": ("GET", NONCE),
}


def limited_app(tmp_path: Path, **limits: str) -> Flask:
    """An app whose classes allow 1000/minute unless ``limits`` says otherwise."""
    settings = {f"RATE_LIMIT_{c.upper()}": HIGH for c in CLASS_ROUTES} | limits
    return build_app(make_settings(tmp_path, **settings))


def build_app(settings: ProviderSettings) -> Flask:
    backend = OperatorClient(ENGINE_URL, PROVIDER_KEY, connect_timeout=1, read_timeout=2, backoff=0)
    return create_app(settings, backend=backend)


def ask(
    client: FlaskClient, route: tuple[str, str], ip: str = "10.0.0.1", **kw: Any
) -> TestResponse:
    method, path = route
    return client.open(path, method=method, environ_base={"REMOTE_ADDR": ip}, **kw)


def assert_limited(reply: TestResponse) -> None:
    assert reply.status_code == 429
    assert reply.get_json()["code"] == "rate_limited"
    assert 1 <= int(reply.headers["Retry-After"]) <= 60


def signed_status(client: FlaskClient, consumer: Consumer, ip: str) -> TestResponse:
    return ask(client, ("GET", COMPUTE), ip=ip, query_string=job_params(consumer))


def forwarded(client: FlaskClient, chain: str) -> TestResponse:
    """From the proxy 127.0.0.1, which says the client was the last entry of ``chain``."""
    return ask(client, CLASS_ROUTES["public"], ip="127.0.0.1", headers={"X-Forwarded-For": chain})
