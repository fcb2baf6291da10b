"""Where parameters come from, through Flask's test client (the live-server cases are in
``test_live_bodies``)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api.helpers import COMPUTE
from tests.conftest import Consumer

NONCE = "/api/services/nonce"
TOO_DEEP = "[" * 65 + "]" * 65  # over the bound, yet harmless to an unbounded parser


def test_app_json_provider_refuses_deep_nesting(app: Flask) -> None:
    assert app.json.loads("[" * 64 + "]" * 64) is not None
    with pytest.raises(ValueError, match="deeper than 64"):
        app.json.loads(TOO_DEEP)


@pytest.mark.parametrize(
    ("method", "body", "field", "message"),
    [
        ("post", TOO_DEEP, "body", "The request body nests JSON deeper than 64 levels."),
        ("put", TOO_DEEP, "body", "The request body nests JSON deeper than 64 levels."),
        ("delete", TOO_DEEP, "body", "The request body nests JSON deeper than 64 levels."),
        ("post", "[1]", "body", "The request body must be a JSON object."),
        ("post", "{", "body", "The request body must be a JSON object."),
        ("post", '{"output": "' + TOO_DEEP + '"}', "output", "nested at most 64 levels"),
    ],
)
def test_bad_bodies_are_field_errors(
    client: FlaskClient, method: str, body: str, field: str, message: str
) -> None:
    reply = getattr(client, method)(COMPUTE, data=body, content_type="application/json")
    answer = reply.get_json()
    assert (reply.status_code, answer["code"]) == (400, "invalid_request")
    assert message in answer["errors"][field][0]


@pytest.mark.parametrize("body", ["hello", "[1]", "{}", TOO_DEEP, '{"userAddress": "0x1"}'])
def test_get_reads_the_query_string_only(
    client: FlaskClient, consumer: Consumer, body: str
) -> None:
    reply = client.get(NONCE, query_string={"userAddress": consumer.address}, data=body)
    assert (reply.status_code, reply.get_json()) == (200, {"nonce": "1"})
