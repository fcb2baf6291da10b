"""``GET /computeResult``: ranges, file names and the headers of every result reply.

The fake engine serves its file with Flask's ``send_file``, exactly as our engine does, so
what it does with a Range (416 for several parts or another unit) is what ours does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
import requests_mock as rm
from flask import Flask, send_file
from flask.testing import FlaskClient
from werkzeug.http import parse_options_header

from tests.api.helpers import ENGINE_COMPUTE, ENGINE_RESULT, RESULT, engine_job, result_params
from tests.conftest import Consumer

DATA = b"0123456789"
NONCE = "/api/services/nonce"

EngineFile = Callable[[str], None]


@pytest.fixture
def engine_file(tmp_path: Path, engine: rm.Mocker, consumer: Consumer) -> EngineFile:
    """Make the fake engine serve ``DATA`` as a result named ``name``."""

    def serve(name: str) -> None:
        path = tmp_path / "result.bin"
        path.write_bytes(DATA)
        files = Flask("fake_engine")

        @files.get("/")
        def result() -> Any:
            return send_file(
                path, as_attachment=True, download_name=name, conditional=True, max_age=0
            )

        def reply(req: Any, context: Any) -> bytes:
            headers = {"Range": req.headers["Range"]} if "Range" in req.headers else {}
            with files.test_client().get("/", headers=headers) as served:
                context.status_code = served.status_code
                context.headers.update(served.headers)
                return served.data

        engine.get(ENGINE_COMPUTE, json=[engine_job(consumer.address)])
        engine.get(ENGINE_RESULT, content=reply)

    return serve


def _forwarded(engine: rm.Mocker) -> list[str | None]:
    return [r.headers.get("Range") for r in engine.request_history if "getResult" in r.url]


def _stored_nonce(client: FlaskClient, consumer: Consumer) -> str:
    reply = client.get(NONCE, query_string={"userAddress": consumer.address})
    nonce: str = reply.get_json()["nonce"]
    return nonce


@pytest.mark.parametrize(
    ("sent", "forwarded", "status", "body", "content_range"),
    [
        (None, None, 200, DATA, None),
        ("bytes=2-4", "bytes=2-4", 206, b"234", "bytes 2-4/10"),
        ("bytes= 2-4", "bytes=2-4", 206, b"234", "bytes 2-4/10"),  # forwarded canonical
        ("BYTES=7-", "bytes=7-", 206, b"789", "bytes 7-9/10"),
        ("bytes=-3", "bytes=-3", 206, b"789", "bytes 7-9/10"),
        ("bytes=0-99", "bytes=0-99", 206, DATA, "bytes 0-9/10"),
        # ignored, as HTTP allows: the whole file, and the engine never sees them
        ("bytes=0-1,4-5", None, 200, DATA, None),
        ("items=0-1", None, 200, DATA, None),
        ("bytes=abc", None, 200, DATA, None),
        ("bytes=5-2", None, 200, DATA, None),
        ("bytes=", None, 200, DATA, None),
        ("0-1", None, 200, DATA, None),
    ],
)
def test_range_table(
    client: FlaskClient,
    consumer: Consumer,
    engine: rm.Mocker,
    engine_file: EngineFile,
    sent: str | None,
    forwarded: str | None,
    status: int,
    body: bytes,
    content_range: str | None,
) -> None:
    engine_file("out.txt")
    params = result_params(consumer)
    reply = client.get(RESULT, query_string=params, headers={"Range": sent} if sent else {})
    assert (reply.status_code, reply.data) == (status, body)
    assert reply.headers.get("Content-Range") == content_range
    assert _forwarded(engine) == [forwarded]
    # the nonce was spent once, by the request that got its bytes
    assert _stored_nonce(client, consumer) == params["nonce"]


@pytest.mark.parametrize("sent", ["bytes=10-", "bytes=100-200", "bytes=10-10"])
def test_unsatisfiable_range_is_416_with_the_size(
    client: FlaskClient, consumer: Consumer, engine: rm.Mocker, engine_file: EngineFile, sent: str
) -> None:
    engine_file("out.txt")
    reply = client.get(RESULT, query_string=result_params(consumer), headers={"Range": sent})
    assert (reply.status_code, reply.get_json()["code"]) == (416, "range_not_satisfiable")
    assert reply.headers["Content-Range"] == "bytes */10"
    assert _forwarded(engine) == [sent]


def test_416_without_a_size_has_no_content_range(
    client: FlaskClient, consumer: Consumer, engine: rm.Mocker
) -> None:
    engine.get(ENGINE_COMPUTE, json=[engine_job(consumer.address)])
    engine.get(ENGINE_RESULT, status_code=416, text="")
    reply = client.get(RESULT, query_string=result_params(consumer), headers={"Range": "bytes=9-"})
    assert (reply.status_code, reply.get_json()["code"]) == (416, "range_not_satisfiable")
    assert "Content-Range" not in reply.headers


@pytest.mark.parametrize(
    ("name", "disposition"),
    [
        ("out.txt", "attachment; filename=out.txt"),
        ("semi;colon.txt", 'attachment; filename="semi;colon.txt"'),
        ('x";filename=evil.html', 'attachment; filename="x\\";filename=evil.html"'),
        ("a b.txt", 'attachment; filename="a b.txt"'),
        ("café.txt", "attachment; filename=cafe.txt; filename*=UTF-8''caf%C3%A9.txt"),
        ("结果.csv", "attachment; filename=.csv; filename*=UTF-8''%E7%BB%93%E6%9E%9C.csv"),
    ],
)
@pytest.mark.parametrize("sent", [None, "bytes=0-3"])
def test_file_names_survive(
    client: FlaskClient,
    consumer: Consumer,
    engine_file: EngineFile,
    name: str,
    disposition: str,
    sent: str | None,
) -> None:
    engine_file(name)
    reply = client.get(
        RESULT, query_string=result_params(consumer), headers={"Range": sent} if sent else {}
    )
    assert reply.status_code == (206 if sent else 200)
    assert reply.headers["Content-Disposition"] == disposition
    assert parse_options_header(reply.headers["Content-Disposition"]) == (
        "attachment",
        {"filename": name},
    )


def test_result_without_a_name_gets_one(
    client: FlaskClient, consumer: Consumer, engine: rm.Mocker
) -> None:
    engine.get(ENGINE_COMPUTE, json=[engine_job(consumer.address)])
    engine.get(ENGINE_RESULT, content=DATA)
    reply = client.get(RESULT, query_string=result_params(consumer, index=2))
    assert reply.headers["Content-Disposition"] == "attachment; filename=result-2"


@pytest.mark.parametrize(
    ("name", "sent", "status"),
    [
        ("page.html", None, 200),
        ("page.html", "bytes=0-3", 206),
        ("image.svg", None, 200),
        ("data.json", "bytes=-2", 206),
        ("noext", None, 200),
    ],
)
def test_every_result_is_an_opaque_attachment(
    client: FlaskClient,
    consumer: Consumer,
    engine_file: EngineFile,
    name: str,
    sent: str | None,
    status: int,
) -> None:
    engine_file(name)
    reply = client.get(
        RESULT, query_string=result_params(consumer), headers={"Range": sent} if sent else {}
    )
    assert reply.status_code == status
    assert reply.headers["Content-Type"] == "application/octet-stream"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["Content-Disposition"].startswith("attachment; ")
    assert "Content-Disposition" in reply.headers["Access-Control-Expose-Headers"]


def test_fake_engine_is_strict_like_ours(engine_file: EngineFile) -> None:
    """The Ranges the Provider ignores are ones our engine would answer 416."""
    engine_file("out.txt")
    for header in ("bytes=0-1,4-5", "items=0-1"):
        reply = requests.get(ENGINE_RESULT, headers={"Range": header}, timeout=5)
        assert reply.status_code == 416, header
