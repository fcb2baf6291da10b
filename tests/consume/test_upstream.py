"""What a download asks of the file's server and passes on: pure functions."""

from __future__ import annotations

from typing import Any

import pytest

from ocean_provider.consume import upstream

GET_FILE = {"type": "url", "url": "https://files.example/data.csv?token=s3cret", "method": "GET"}
POST_FILE = {"type": "url", "url": "https://files.example/query", "method": "POST"}


@pytest.mark.parametrize(
    ("userdata", "url"),
    [
        (None, "https://files.example/data.csv?token=s3cret"),
        ({}, "https://files.example/data.csv?token=s3cret"),
        ({"a": "1"}, "https://files.example/data.csv?token=s3cret&a=1"),
        ({"a": 2, "b": True}, "https://files.example/data.csv?token=s3cret&a=2&b=True"),
        ({"a": ["x", "y"], "n": None}, "https://files.example/data.csv?token=s3cret&a=x&a=y"),
        ({"q": {"k": 1}}, "https://files.example/data.csv?token=s3cret&q=%7B%22k%22%3A+1%7D"),
        ({"s": "a b&c"}, "https://files.example/data.csv?token=s3cret&s=a+b%26c"),
    ],
)
def test_userdata_goes_as_query_parameters_of_a_get_file(
    userdata: dict[str, Any] | None, url: str
) -> None:
    assert upstream.with_userdata(GET_FILE, userdata)["url"] == url


def test_userdata_goes_as_the_json_body_of_a_post_file() -> None:
    file = upstream.with_userdata(POST_FILE, {"a": 1})
    assert file["body"] == '{"a": 1}'
    assert file["headers"] == {"Content-Type": "application/json"}
    assert file["url"] == POST_FILE["url"]
    own = upstream.with_userdata({**POST_FILE, "headers": {"content-type": "text/x"}}, {"a": 1})
    assert own["headers"] == {"content-type": "text/x"}


def test_a_range_is_asked_for_unless_the_ddo_names_one() -> None:
    assert upstream.with_range(GET_FILE, "bytes=0-9")["headers"] == {"Range": "bytes=0-9"}
    assert "headers" not in upstream.with_range(GET_FILE, None)
    pinned = {**GET_FILE, "headers": {"range": "bytes=5-"}}
    assert upstream.with_range(pinned, "bytes=0-9")["headers"] == {"range": "bytes=5-"}


@pytest.mark.parametrize(
    ("headers", "passed"),
    [
        ({"content-length": "10", "x-amz-id": "1"}, {"Content-Length": "10"}),
        ({"content-length": "10", "content-encoding": "gzip"}, {}),
        (
            {"content-range": "bytes 0-1/10", "content-length": "2", "accept-ranges": "bytes"},
            {"Content-Range": "bytes 0-1/10", "Accept-Ranges": "bytes", "Content-Length": "2"},
        ),
        ({"location": "https://files.example/x", "set-cookie": "a=b"}, {}),
    ],
)
def test_only_length_and_range_headers_pass_on(
    headers: dict[str, str], passed: dict[str, str]
) -> None:
    assert upstream.reply_headers(headers) == passed


@pytest.mark.parametrize(
    ("headers", "details"),
    [
        (
            {"content-length": "10", "content-type": "text/csv; charset=utf-8"},
            {"contentLength": "10", "contentType": "text/csv"},
        ),
        ({"content-range": "bytes 0-0/42"}, {"contentLength": "42", "contentType": ""}),
        ({}, {"contentLength": "", "contentType": ""}),
    ],
)
def test_fileinfo_details_from_the_reply_head(
    headers: dict[str, str], details: dict[str, str]
) -> None:
    assert upstream.details(headers) == details


def test_the_file_name_comes_from_the_server_never_the_url() -> None:
    assert (
        upstream.file_name({"content-disposition": 'attachment; filename="a/b.csv"'}) == "a_b.csv"
    )
    assert upstream.file_name({}) is None
