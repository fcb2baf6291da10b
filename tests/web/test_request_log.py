"""One JSON line per request, the request id (taken, replaced, echoed, passed to the engine),
and no secret in any log line, through the Provider's production wiring (requests-mock is
the engine)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests_mock as rm
from flask import Flask
from flask.testing import FlaskClient

from ocean_provider.app import create_app
from ocean_provider.web.log_format import JsonFormatter
from tests.api.helpers import (
    COMPUTE,
    ENGINE_COMPUTE,
    ENGINE_RESULT,
    RESULT,
    engine_job,
    job_params,
    result_params,
)
from tests.conftest import (
    PROVIDER_KEY,
    Consumer,
    FakeDdoResolver,
    FakeOrderVerifier,
    make_settings,
)

RPC_URL = "http://rpc-user:rpc-password@rpc.example.test:8545/v3/rpc-api-key"


class Lines(logging.Handler):
    """Every record of every logger, formatted as the JSON lines production writes."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith("requests_mock"):  # the test's stand-in network
            self.lines.append(self.format(record))

    def access(self) -> list[dict[str, Any]]:
        parsed = [json.loads(line) for line in self.lines]
        return [line for line in parsed if line["logger"] == "ocean_provider.access"]


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler, root = Lines(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _app(tmp_path: Path, ddos: FakeDdoResolver, **settings: str) -> Flask:
    """The production wiring: settings name the engine, create_app builds its client."""
    environ = {"LOG_FORMAT": "json", "NETWORK_URL": RPC_URL, **settings}
    return create_app(make_settings(tmp_path, **environ), ddos=ddos, orders=FakeOrderVerifier())


@pytest.fixture
def client(tmp_path: Path, ddos: FakeDdoResolver) -> FlaskClient:
    return _app(tmp_path, ddos).test_client()


def test_a_signed_request_yields_one_json_line_with_its_fields(
    client: FlaskClient, engine: rm.Mocker, consumer: Consumer, lines: Lines
) -> None:
    engine.get(ENGINE_COMPUTE, json=[engine_job(consumer.address)])
    reply = client.get(COMPUTE, query_string=job_params(consumer))
    assert reply.status_code == 200
    (line,) = lines.access()
    assert {k: line[k] for k in ("route", "method", "status", "signer")} == {
        "route": COMPUTE,
        "method": "GET",
        "status": 200,
        "signer": consumer.address,
    }
    assert line["request_id"] == reply.headers["X-Request-ID"]
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["level"] == "info" and line["time"].endswith("Z")


def test_an_error_line_has_its_code_and_no_signer(
    client: FlaskClient, consumer: Consumer, lines: Lines
) -> None:
    params = job_params(consumer)
    params["signature"] = "0x" + "11" * 65
    reply = client.get(COMPUTE, query_string=params)
    assert reply.status_code == 400
    (line,) = lines.access()
    assert (line["status"], line["code"]) == (400, reply.json["code"])  # type: ignore[index]
    assert "signer" not in line
    assert line["request_id"] == reply.headers["X-Request-ID"]


def test_an_unmatched_path_logs_no_path(client: FlaskClient, lines: Lines) -> None:
    reply = client.get("/no/such/0xdeadbeef?signature=0xabc")
    assert reply.status_code == 404
    (line,) = lines.access()
    assert line["route"] == "unmatched"
    assert "deadbeef" not in lines.lines[0] and "0xabc" not in "".join(lines.lines)


def test_text_format_writes_no_request_line(
    tmp_path: Path, ddos: FakeDdoResolver, lines: Lines
) -> None:
    app = _app(tmp_path, ddos, LOG_FORMAT="text")
    reply = app.test_client().get("/")
    assert reply.status_code == 200 and reply.headers["X-Request-ID"]
    assert lines.access() == []  # gunicorn's access line (with the id) is the humans' one


@pytest.mark.parametrize(
    "given",
    [
        "",
        "x" * 65,
        "has space",
        "semi;colon",
        'quote"d',
        "-leading-dash",
        "ünïcode",
        '{"json": 1}',
    ],
)
def test_a_malformed_request_id_is_replaced(client: FlaskClient, lines: Lines, given: str) -> None:
    reply = client.get("/", headers={"X-Request-ID": given})
    rid = reply.headers["X-Request-ID"]
    assert rid != given and len(rid) == 32 and rid.isalnum()
    assert lines.access()[0]["request_id"] == rid


@pytest.mark.parametrize("given", ["a", "req-1", "0f8fad5b-d9cb-469f-a165-70867728950e", "x" * 64])
def test_a_well_formed_request_id_is_kept_and_echoed_on_errors_too(
    client: FlaskClient, lines: Lines, given: str
) -> None:
    for path in ("/", "/no/such/path", COMPUTE):  # 200, 404 and a 400
        reply = client.get(path, headers={"X-Request-ID": given})
        assert reply.headers["X-Request-ID"] == given, path
    assert [line["request_id"] for line in lines.access()] == [given] * 3


def test_the_request_id_reaches_the_engine_and_every_line_of_the_request(
    client: FlaskClient, engine: rm.Mocker, consumer: Consumer, lines: Lines
) -> None:
    engine.get(ENGINE_COMPUTE, json=[engine_job(consumer.address)])
    client.get(COMPUTE, query_string=job_params(consumer), headers={"X-Request-ID": "trace-42"})
    assert engine.last_request.headers["X-Request-ID"] == "trace-42"
    parsed = [json.loads(line) for line in lines.lines]
    engine_lines = [line for line in parsed if line["logger"] == "ocean_provider.operator.client"]
    assert engine_lines and {line["request_id"] for line in parsed} == {"trace-42"}
    reply = client.get(COMPUTE, query_string=job_params(consumer))
    assert engine.last_request.headers["X-Request-ID"] == reply.headers["X-Request-ID"]


def _status(consumer: Consumer) -> tuple[str, str, dict[str, Any]]:
    return "GET", COMPUTE, job_params(consumer)


def _stop(consumer: Consumer) -> tuple[str, str, dict[str, Any]]:
    return "PUT", COMPUTE, job_params(consumer)


def _delete(consumer: Consumer) -> tuple[str, str, dict[str, Any]]:
    return "DELETE", COMPUTE, job_params(consumer)


def _result(consumer: Consumer) -> tuple[str, str, dict[str, Any]]:
    return "GET", RESULT, result_params(consumer)


def _bad_signature(consumer: Consumer) -> tuple[str, str, dict[str, Any]]:
    return "GET", COMPUTE, {**job_params(consumer), "signature": "0x" + "5e" * 65}


def _download(consumer: Consumer) -> tuple[str, str, dict[str, Any]]:
    params = {
        "documentId": "did:op:" + "ab" * 32,
        "serviceId": "access",
        "consumerAddress": consumer.address,
        "transferTxId": "0x" + "cd" * 32,
        "fileIndex": 0,
        "userdata": '{"secret": "file-url-in-userdata"}',
        **{k: v for k, v in job_params(consumer).items() if k in ("nonce", "signature")},
    }
    return "GET", "/api/services/download", params


@pytest.mark.parametrize("build", [_status, _stop, _delete, _result, _bad_signature, _download])
def test_no_signature_key_rpc_url_or_query_in_any_line(
    client: FlaskClient, engine: rm.Mocker, consumer: Consumer, lines: Lines, build: Any
) -> None:
    engine.register_uri(rm.ANY, ENGINE_COMPUTE, json=[engine_job(consumer.address)])
    engine.get(ENGINE_RESULT, content=b"secret result bytes")
    method, path, params = build(consumer)
    reply = client.open(path, method=method, query_string=params)
    assert reply.status_code < 500, reply.data
    assert len(lines.access()) == 1
    text = "\n".join(lines.lines)
    forbidden = [params["signature"], params["signature"][2:], "signature=", "nonce=", "?"]
    forbidden += [PROVIDER_KEY, PROVIDER_KEY[2:], RPC_URL, "rpc-password", "rpc-api-key"]
    forbidden += ["file-url-in-userdata"]
    for secret in forbidden:
        assert secret not in text, secret
