"""``POST /fileinfo`` and ``GET /download`` through the Flask app, with a real file server
on loopback, the engine's environments mocked and the chain's order check faked (the real
one runs on anvil in ``tests/e2e/test_pod_configuration.py``)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests_mock as rm
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Request, Response

from ocean_provider.app import create_app
from ocean_provider.auth.messages import download_message
from ocean_provider.compute.interfaces import Asset, VerifiedOrder
from ocean_provider.devnet.embedded import ServedApp, serve_app
from ocean_provider.errors import ComputeRefused
from ocean_provider.operator.client import OperatorClient
from tests.api.helpers import ENGINE_ENVS, ENVIRONMENT
from tests.conftest import (
    CHAIN_ID,
    DATASET_DID,
    ENGINE_URL,
    PROVIDER_KEY,
    TX,
    TX2,
    Consumer,
    dataset_ddo,
    make_settings,
)

DOWNLOAD = "/api/services/download"
FILEINFO = "/api/services/fileinfo"
DATA = b"".join(b"%d\n" % i for i in range(1000))
BAD_TX = "0x" + "dd" * 32
SECRET_PATH = "s3cret-path"  # part of every file URL: must never reach a reply or a log


class Files:
    """A file server: the dataset (with ranges), echoes of the query and body, a 404."""

    def __init__(self) -> None:
        self.hits = 0
        self.served: ServedApp = serve_app(self._app, "files")
        self.url = f"{self.served.url}/{SECRET_PATH}"

    @Request.application
    def _app(self, request: Request) -> Response:
        self.hits += 1
        name = request.path.removeprefix(f"/{SECRET_PATH}/")
        if name == "data.csv":
            response = Response(DATA, mimetype="text/csv")
            response.headers["Content-Disposition"] = 'attachment; filename="numbers.csv"'
            return response.make_conditional(request, accept_ranges=True, complete_length=len(DATA))
        if name == "echo":
            return Response(
                json.dumps(request.args.to_dict(flat=False)), mimetype="application/json"
            )
        if name == "post" and request.method == "POST":
            return Response(request.get_data(), mimetype=request.mimetype)
        raise NotFound()


class Ddos:
    """The dataset with a compute and an access service, each with its own files."""

    def __init__(self, files: Files) -> None:
        self.files = files
        self.resolved = 0
        self.undecryptable = False
        self.credentials: dict[str, Any] | None = None

    def resolve(self, did: str) -> Asset:
        self.resolved += 1
        if did != DATASET_DID:
            raise ComputeRefused("dataset", "did_not_found")
        ddo = dataset_ddo()
        if self.credentials is not None:
            ddo["credentials"] = self.credentials
        return Asset(did=did, chain_id=CHAIN_ID, ddo=ddo)

    def service_files(self, asset: Asset, service_id: str) -> list[dict[str, Any]]:
        if self.undecryptable:
            raise ComputeRefused("dataset.serviceId", "compute_services_not_in_same_provider")
        base = self.files.url
        return [
            {"type": "url", "url": f"{base}/data.csv", "method": "GET"},
            {"type": "url", "url": f"{base}/echo", "method": "GET"},
            {"type": "url", "url": f"{base}/post", "method": "POST"},
            {"type": "url", "url": f"{base}/missing", "method": "GET"},
        ]


class Orders:
    """TX names the operator as consumer, TX2 the user; BAD_TX is for another service."""

    def __init__(self, operator: str, user: str) -> None:
        self.consumers = {TX: operator, TX2: user}
        self.calls = 0

    def verify(self, *, asset: Asset, tx_id: str, consumer: str, **_: Any) -> VerifiedOrder:
        self.calls += 1
        if tx_id not in self.consumers:
            raise ComputeRefused("order.transferTxId", "order_wrong_service")
        zero = "0x" + "0" * 40
        return VerifiedOrder(CHAIN_ID, tx_id, tx_id, zero, 0, 0, self.consumers[tx_id])

    def check_fees(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def files() -> Iterator[Files]:
    served = Files()
    yield served
    served.served.close()


@pytest.fixture
def operator(other: Consumer) -> Consumer:
    return other  # the environment's consumerAddress


@pytest.fixture
def ddos(files: Files) -> Ddos:
    return Ddos(files)


@pytest.fixture
def orders(operator: Consumer, consumer: Consumer) -> Orders:
    return Orders(operator.address, consumer.address)


@pytest.fixture
def app(tmp_path: Path, ddos: Ddos, orders: Orders, operator: Consumer) -> Iterator[Flask]:
    settings = make_settings(tmp_path, ALLOW_PRIVATE_DOWNLOADS="true")
    backend = OperatorClient(ENGINE_URL, PROVIDER_KEY, connect_timeout=1, read_timeout=2, backoff=0)
    with rm.Mocker() as engine:
        engine.get(ENGINE_ENVS, json=[{**ENVIRONMENT, "consumerAddress": operator.address}])
        yield create_app(settings, backend=backend, ddos=ddos, orders=orders)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def params(signer: Consumer, **overrides: Any) -> dict[str, Any]:
    """A download as pod-configuration sends it (compute service, the operator's order)."""
    nonce = overrides.pop("nonce", signer.nonce())
    did = overrides.get("documentId") or DATASET_DID
    query = {
        "fileIndex": 0,
        "documentId": DATASET_DID,
        "transferTxId": TX,
        "serviceId": "compute-1",
        "consumerAddress": signer.address,
        "nonce": nonce,
        "signature": signer.sign(download_message(did), nonce or ""),
        **overrides,
    }
    return {k: v for k, v in query.items() if v is not None}


def assert_refused(reply: Any, status: int, code: str) -> None:
    assert (reply.status_code, reply.get_json()["code"]) == (status, code), reply.get_json()
    assert SECRET_PATH not in reply.get_data(as_text=True)


def test_the_operator_downloads_a_compute_input(client: FlaskClient, operator: Consumer) -> None:
    reply = client.get(DOWNLOAD, query_string=params(operator))
    assert reply.status_code == 200
    assert reply.data == DATA
    assert reply.headers["Content-Length"] == str(len(DATA))
    assert reply.headers["Content-Type"] == "application/octet-stream"
    assert reply.headers["Content-Disposition"] == "attachment; filename=numbers.csv"
    assert not any(SECRET_PATH in value for _, value in reply.headers.items())


def test_a_range_passes_through(client: FlaskClient, operator: Consumer) -> None:
    reply = client.get(DOWNLOAD, query_string=params(operator), headers={"Range": "bytes=4-9"})
    assert reply.status_code == 206
    assert reply.data == DATA[4:10]
    assert reply.headers["Content-Range"] == f"bytes 4-9/{len(DATA)}"
    far = client.get(DOWNLOAD, query_string=params(operator), headers={"Range": "bytes=99999-"})
    assert_refused(far, 416, "range_not_satisfiable")


def test_userdata_passes_through(client: FlaskClient, operator: Consumer) -> None:
    userdata = {"a": "1", "b": ["x", "y"]}
    query = params(operator, fileIndex=1, userdata=json.dumps(userdata))
    echoed = json.loads(client.get(DOWNLOAD, query_string=query).data)
    assert echoed == {"a": ["1"], "b": ["x", "y"]}
    query = params(operator, fileIndex=2, userdata=json.dumps(userdata))
    assert json.loads(client.get(DOWNLOAD, query_string=query).data) == userdata


def test_an_access_service_serves_its_orders_consumer(
    client: FlaskClient, consumer: Consumer, operator: Consumer
) -> None:
    query = params(consumer, serviceId="access-1", transferTxId=TX2)
    assert client.get(DOWNLOAD, query_string=query).data == DATA
    query = params(operator, serviceId="access-1", transferTxId=TX2)  # the verifier said yes
    assert client.get(DOWNLOAD, query_string=query).status_code == 200


def test_credentials_bind_consumers_of_an_access_service_not_the_operator(
    client: FlaskClient, consumer: Consumer, operator: Consumer, ddos: Ddos
) -> None:
    ddos.credentials = {"allow": [{"type": "address", "values": ["0x" + "9" * 40]}]}
    query = params(consumer, serviceId="access-1", transferTxId=TX2)
    assert_refused(client.get(DOWNLOAD, query_string=query), 400, "credential_not_in_allow_list")
    query = params(operator, serviceId="access-1", transferTxId=TX2)
    assert client.get(DOWNLOAD, query_string=query).status_code == 200


def test_nothing_upstream_before_the_signer_is_known(
    client: FlaskClient, consumer: Consumer, operator: Consumer, ddos: Ddos, files: Files
) -> None:
    hits, query = files.hits, params(operator)
    query["signature"] = consumer.sign(download_message(DATASET_DID), query["nonce"])
    assert_refused(client.get(DOWNLOAD, query_string=query), 400, "signature_invalid")
    assert (ddos.resolved, files.hits) == (0, hits)


def test_a_shape_error_spends_no_nonce(client: FlaskClient, operator: Consumer) -> None:
    query = params(operator)
    bad = client.get(DOWNLOAD, query_string={**query, "fileIndex": "x"})
    assert_refused(bad, 400, "invalid_request")
    assert client.get(DOWNLOAD, query_string=query).status_code == 200


def test_a_download_works_once(client: FlaskClient, operator: Consumer) -> None:
    query = params(operator)
    assert client.get(DOWNLOAD, query_string=query).status_code == 200
    assert_refused(client.get(DOWNLOAD, query_string=query), 400, "nonce_too_low")


def test_a_signed_message_is_not_taken_twice(client: FlaskClient, operator: Consumer) -> None:
    """``did + nonce`` read another way: the DID's last digit moved into a larger nonce is the
    same signed message; it was accepted once, so it is refused, though its nonce is fresh."""
    query = params(operator)
    assert client.get(DOWNLOAD, query_string=query).status_code == 200
    shifted = {**query, "documentId": DATASET_DID[:-1], "nonce": DATASET_DID[-1] + query["nonce"]}
    assert_refused(client.get(DOWNLOAD, query_string=shifted), 400, "signature_reused")


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"documentId": None}, 400, "invalid_request"),
        ({"serviceId": None}, 400, "invalid_request"),
        ({"consumerAddress": "0x123"}, 400, "invalid_request"),
        ({"transferTxId": "0x12"}, 400, "invalid_request"),
        ({"fileIndex": -1}, 400, "invalid_request"),
        ({"fileIndex": 1024}, 400, "invalid_request"),
        ({"nonce": "1e5"}, 400, "invalid_request"),
        ({"nonce": None}, 400, "invalid_request"),
        ({"userdata": "{not json"}, 400, "invalid_request"),
        ({"signature": None}, 400, "signature_missing"),
        ({"signature": "0x1234"}, 400, "signature_invalid"),
        ({"documentId": "did:op:" + "0" * 64}, 400, "did_not_found"),
        ({"serviceId": "nope"}, 400, "not_found"),
        ({"transferTxId": BAD_TX}, 400, "order_wrong_service"),
        ({"transferTxId": TX2}, 400, "order_wrong_consumer"),  # the user's, not the operator's
        ({"fileIndex": 4}, 400, "file_index_out_of_range"),
        ({"fileIndex": 3}, 502, "file_unavailable"),
    ],
)
def test_bad_downloads(
    client: FlaskClient, operator: Consumer, change: dict[str, Any], status: int, code: str
) -> None:
    assert_refused(client.get(DOWNLOAD, query_string=params(operator, **change)), status, code)


def test_a_consumer_never_downloads_a_compute_input(
    client: FlaskClient, consumer: Consumer, orders: Orders
) -> None:
    query = params(consumer, transferTxId=TX2)  # an order the consumer really holds
    assert_refused(client.get(DOWNLOAD, query_string=query), 400, "not_access_service")
    assert orders.calls == 0


def test_files_this_provider_cannot_decrypt(
    client: FlaskClient, operator: Consumer, ddos: Ddos
) -> None:
    ddos.undecryptable = True
    reply = client.get(DOWNLOAD, query_string=params(operator))
    assert_refused(reply, 400, "compute_services_not_in_same_provider")
    assert reply.get_json()["error"] == {"serviceId": "compute_services_not_in_same_provider"}
    (entry,) = client.post(FILEINFO, json={"did": DATASET_DID, "serviceId": "compute-1"}).get_json()
    code = "compute_services_not_in_same_provider"
    assert entry == {"index": 0, "valid": False, "type": "url", "code": code}


def test_head_is_refused_before_anything(client: FlaskClient, operator: Consumer) -> None:
    query = params(operator)
    assert client.head(DOWNLOAD, query_string=query).status_code == 405
    assert client.get(DOWNLOAD, query_string=query).status_code == 200  # its nonce unspent


def test_no_url_in_any_log_line(
    client: FlaskClient, operator: Consumer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="urllib3")  # as wsgi.py sets it: no request lines
    client.get(DOWNLOAD, query_string=params(operator))
    client.get(DOWNLOAD, query_string=params(operator, fileIndex=3))
    client.post(FILEINFO, json={"did": DATASET_DID, "serviceId": "access-1"})
    assert caplog.records and not any(SECRET_PATH in r.getMessage() for r in caplog.records)


def test_fileinfo_of_a_compute_service_contacts_no_file_server(
    client: FlaskClient, files: Files
) -> None:
    hits = files.hits
    reply = client.post(FILEINFO, json={"did": DATASET_DID, "serviceId": "compute-1"})
    assert reply.status_code == 200
    blank = {"valid": True, "type": "url", "contentLength": "", "contentType": ""}
    assert reply.get_json() == [{"index": i, **blank} for i in range(4)]
    assert files.hits == hits


def test_fileinfo_of_an_access_service(client: FlaskClient) -> None:
    body = {"did": DATASET_DID, "serviceId": "access-1", "checksum": True}
    first, _, _, missing = client.post(FILEINFO, json=body).get_json()
    assert first == {
        "index": 0,
        "valid": True,
        "type": "url",
        "contentLength": str(len(DATA)),
        "contentType": "text/csv",
        "checksum": hashlib.sha256(DATA).hexdigest(),
        "checksumType": "sha256",
    }
    assert missing == {"index": 3, "valid": False, "type": "url"}


def test_fileinfo_of_a_url(client: FlaskClient, files: Files) -> None:
    reply = client.post(FILEINFO, json={"type": "url", "url": f"{files.url}/data.csv"})
    (entry,) = reply.get_json()
    assert entry["valid"] and entry["contentLength"] == str(len(DATA))


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "invalid_request"),
        ({"did": DATASET_DID}, 400, "invalid_request"),
        ({"type": "ipfs", "url": "x"}, 400, "invalid_request"),
        ({"did": DATASET_DID, "serviceId": "compute-1", "userdata": "[1"}, 400, "invalid_request"),
        ({"did": "did:op:" + "0" * 64, "serviceId": "compute-1"}, 400, "did_not_found"),
        ({"did": DATASET_DID, "serviceId": "nope"}, 400, "not_found"),
    ],
)
def test_bad_fileinfo(client: FlaskClient, body: dict[str, Any], status: int, code: str) -> None:
    assert_refused(client.post(FILEINFO, json=body), status, code)


def test_both_are_listed_under_service_endpoints(client: FlaskClient) -> None:
    endpoints = client.get("/").get_json()["serviceEndpoints"]
    assert endpoints["fileinfo"] == ["POST", "/api/services/fileinfo"]
    assert endpoints["download"] == ["GET", "/api/services/download"]


def test_private_file_addresses_stay_closed_by_default(
    tmp_path: Path, ddos: Ddos, orders: Orders, operator: Consumer, files: Files
) -> None:
    """Without ALLOW_PRIVATE_DOWNLOADS the fetcher refuses loopback before connecting."""
    backend = OperatorClient(ENGINE_URL, PROVIDER_KEY, connect_timeout=1, read_timeout=2, backoff=0)
    with rm.Mocker() as engine:
        engine.get(ENGINE_ENVS, json=[{**ENVIRONMENT, "consumerAddress": operator.address}])
        app = create_app(make_settings(tmp_path), backend=backend, ddos=ddos, orders=orders)
        client, hits = app.test_client(), files.hits
        reply = client.get(DOWNLOAD, query_string=params(operator))
        assert_refused(reply, 502, "file_unavailable")
        assert (
            reply.get_json()["error"]
            == "the file could not be fetched: destination address not allowed"
        )
        body = {"type": "url", "url": f"{files.url}/data.csv"}
        assert client.post(FILEINFO, json=body).get_json() == [
            {"index": 0, "valid": False, "type": "url"}
        ]
    assert files.hits == hits
