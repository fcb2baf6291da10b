"""Schema fuzzing (schemathesis) of the Provider and the engine, as production wires them:
anvil with Ocean's contracts and published assets, the Provider (``create_app``, real SQLite)
and the real engine on loopback. Driven by their OpenAPI documents: no reply may be a 5xx,
and every reply must match its documented status, media type and schema.

Random values alone stop at the first check (a DID nobody published, a bad signature), so
half of the examples are made plausible before they are sent: the published DIDs, their
service ids and the chain id where the request names them, and a valid signature with a
fresh nonce (the consumer's for the Provider, the Provider's key and request signature for
the engine). Those go through authentication into the services, the chain and the engine.

Deterministic (``derandomize``: the same examples every run) and bounded: ``EXAMPLES`` per
operation and generation mode, well within the time budget asserted below.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import schemathesis
from flask import Flask, Response, jsonify
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ocean_provider.api.replies import NonceReply
from ocean_provider.auth.messages import (
    decrypt_message,
    download_message,
    job_message,
    result_message,
    start_message,
)
from ocean_provider.auth.signing import MessageSigner
from ocean_provider.compute.requests import NonceRequest
from ocean_provider.devnet.assets import SAMPLE_CONTAINER, start_order
from ocean_provider.devnet.embedded import serve_app
from ocean_provider.web.error_handlers import register_error_handlers
from ocean_provider.web.openapi import Operation, register_openapi
from ocean_provider.wire.request_signature import HEADER, sign_request
from tests.devchain import DevChain
from tests.published_node import ENV, SUM_ALGORITHM, Node, published_node

pytestmark = pytest.mark.integration

EXAMPLES = 50  # per operation and generation mode
CODES = re.compile(r"code: (.*)$")


def documented_code(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """An error's ``code`` is one its route's document lists for that status."""
    if response.status_code < 400:
        return None
    code = response.json().get("code")
    documented = case.operation.definition.raw["responses"].get(str(response.status_code), {})
    listed = CODES.search(documented.get("description", ""))
    codes = listed.group(1).split(", ") if listed else []
    if code not in codes:
        raise AssertionError(f"{response.status_code} {code!r} is not among {codes}")
    return True


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    documented_code,
]
Plausible = Callable[[schemathesis.Case], None]


@pytest.fixture(scope="module")
def node(devchain: DevChain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    root = tmp_path_factory.mktemp("fuzzed")
    with published_node(devchain, root, ORDER_WAIT="0") as published:  # random txs: no wait
        yield published


@pytest.fixture(scope="module")
def job(node: Node) -> dict[str, Any]:
    """A finished job of the consumer's, with results: status and results replies that
    carry a real job, checked against their schemas too."""
    consumer = MessageSigner(node.chain.consumer_key)
    raw = {"meta": {"rawcode": SUM_ALGORITHM.decode(), "container": dict(SAMPLE_CONTAINER)}}
    fees = requests.post(
        node.provider + "/api/services/initializeCompute",
        json={
            "datasets": [{"documentId": node.dataset.did, "serviceId": "compute"}],
            "algorithm": raw,
            "compute": {"env": ENV, "validUntil": int(time.time()) + 3600},
            "consumerAddress": consumer.address,
        },
        timeout=30,
    ).json()["datasets"][0]
    tx = start_order(
        node.chain.w3,
        fees["datatoken"],
        node.chain.consumer_key,
        consumer=consumer.address,
        service_index=0,
        provider_fee=fees["providerFee"],
    )
    nonce = str(time.time_ns())
    started = requests.post(
        node.provider + "/api/services/compute",
        json={
            "consumerAddress": consumer.address,
            "nonce": nonce,
            "signature": consumer.sign(start_message(consumer.address, node.dataset.did) + nonce),
            "environment": ENV,
            "dataset": {"documentId": node.dataset.did, "serviceId": "compute", "transferTxId": tx},
            "algorithm": raw,
        },
        timeout=60,
    )
    assert started.status_code == 200, started.text
    job_id = started.json()[0]["jobId"]
    deadline = time.monotonic() + 60
    while (record := node.engine.context.store.get(job_id)) is None or not record.job.date_finished:
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.2)
    return {"jobId": job_id, "results": len(record.results)}


def fuzz(
    base_url: str,
    document_path: str,
    plausible: Plausible,
    session: requests.Session | None = None,
) -> list[str]:
    """Every operation of the document, positive and negative examples; the failures."""
    schema = schemathesis.openapi.from_url(base_url + document_path)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            cases = st.tuples(operation.as_strategy(generation_mode=mode), st.booleans())

            @settings(
                max_examples=EXAMPLES,
                derandomize=True,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate, Phase.shrink],
                suppress_health_check=list(HealthCheck),
            )
            @given(drawn=cases)
            def check(drawn: tuple[schemathesis.Case, bool]) -> None:
                case, made_plausible = drawn
                if made_plausible:
                    plausible(case)
                case.call_and_validate(
                    base_url=base_url, session=session, checks=CHECKS, timeout=30
                )

            try:
                check()
            except Unsatisfiable:  # no parameters: nothing to make invalid
                pass
            except (Exception, BaseExceptionGroup) as exc:  # all reported at the end
                failures.append(f"{operation.label} ({mode.value}): {_described(exc)}")
    return failures


def _described(exc: BaseException) -> str:
    """What failed (schemathesis groups its checks' failures), with the reproduction."""
    if isinstance(exc, BaseExceptionGroup):
        parts = [f"{type(failure).__name__}: {failure}" for failure in exc.exceptions]
        return f"{exc}\n" + "\n".join(parts)
    return f"{type(exc).__name__}: {exc}"


def _params(case: schemathesis.Case) -> dict[str, Any] | None:
    params = case.body if isinstance(case.body, dict) else case.query
    return params if isinstance(params, dict) else None


def _published(node: Node, params: dict[str, Any], *, algorithm: bool = False) -> None:
    """The published DIDs and service ids wherever the request names an asset."""
    asset = node.algorithm if algorithm else node.dataset
    for key in ("documentId", "did"):
        if key in params:
            params[key] = asset.did
    if "serviceId" in params:
        params["serviceId"] = asset.ddo["services"][0]["id"]
    for key, value in params.items():
        if isinstance(value, dict):
            _published(node, value, algorithm=algorithm or key == "algorithm")
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    _published(node, item, algorithm=algorithm)


def _job(job: dict[str, Any], label: str, params: dict[str, Any]) -> None:
    """The finished job where the request names one; not for DELETE, which would end it."""
    if "jobId" in params and not label.startswith("DELETE"):
        params["jobId"] = job["jobId"]
        if "index" in params:
            params["index"] = (
                params["index"] % (job["results"] + 1)
                if isinstance(params["index"], int)
                else params["index"]
            )


def provider_plausible(node: Node, job: dict[str, Any]) -> Plausible:
    consumer = MessageSigner(node.chain.consumer_key)
    nonces = itertools.count(time.time_ns())

    def plausible(case: schemathesis.Case) -> None:
        params = _params(case)
        if params is None:
            return
        _published(node, params)
        _job(job, case.operation.label, params)
        for key in ("consumerAddress", "userAddress", "decrypterAddress"):
            if key in params:
                params[key] = consumer.address
        if "chainId" in params:
            params["chainId"] = node.chain.deployment.chain_id
        if "environment" in params:
            params["environment"] = ENV
        if isinstance(params.get("compute"), dict):
            params["compute"].update(env=ENV, validUntil=int(time.time()) + 3600)
        if "dataNftAddress" in params:
            params["dataNftAddress"] = node.dataset.nft
        message = _provider_message(case.operation.label, params)
        if message is not None:
            params["nonce"] = str(next(nonces))
            params["signature"] = consumer.sign(message + params["nonce"])

    return plausible


def _provider_message(label: str, p: dict[str, Any]) -> str | None:
    """The message the route signs, over the values as sent (None: an unsigned route)."""
    method, _, path = label.partition(" ")
    consumer = str(p.get("consumerAddress", ""))
    if path == "/api/services/compute" and method == "POST":
        dataset = p.get("dataset")
        document = dataset.get("documentId") if isinstance(dataset, dict) else None
        return start_message(consumer, str(document)) if document is not None else None
    if path == "/api/services/compute":
        job, document = p.get("jobId"), p.get("documentId")
        return job_message(consumer, _text(job), _text(document))
    if path == "/api/services/computeResult":
        return result_message(consumer, str(p.get("jobId", "")), p.get("index", ""))
    if path == "/api/services/download":
        return download_message(str(p.get("documentId", "")))
    if path == "/api/services/decrypt":
        return decrypt_message(
            str(p.get("decrypterAddress", "")),
            p.get("chainId", ""),
            _text(p.get("transactionId")),
            str(p.get("dataNftAddress", "")),
        )
    return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def engine_plausible(node: Node, job: dict[str, Any], provider: MessageSigner) -> Plausible:
    """Ocean's provider signature over owner + jobId + nonce (the header is signed as the
    request goes out: ``EngineRequestSigner``)."""
    nonces = itertools.count(time.time_ns())

    def plausible(case: schemathesis.Case) -> None:
        params = _params(case)
        if params is None or "owner" not in params:
            return
        params["owner"] = node.chain.consumer
        if "environment" in params:
            params["environment"] = ENV
        _job(job, case.operation.label, params)
        nonce = str(next(nonces))
        job_id = params.get("jobId")
        params["nonce"] = nonce
        params["providerAddress"] = provider.address
        params["providerSignature"] = provider.sign(f"{params['owner']}{job_id or ''}{nonce}")

    return plausible


class EngineRequestSigner(requests.auth.AuthBase):
    """Signs the exact bytes of each request that carries a nonce, as the Provider does."""

    def __init__(self, provider: MessageSigner) -> None:
        self.provider = provider

    def __call__(self, prepared: requests.PreparedRequest) -> requests.PreparedRequest:
        url = urlsplit(prepared.url or "")
        body = prepared.body or b""
        raw = body.encode() if isinstance(body, str) else body
        nonce = parse_qs(url.query).get("nonce", [None])[0]
        if nonce is None and raw:
            try:
                sent = json.loads(raw)
            except ValueError:
                sent = None
            nonce = sent.get("nonce") if isinstance(sent, dict) else None
        if isinstance(nonce, str):
            prepared.headers[HEADER] = sign_request(
                self.provider,
                method=prepared.method or "GET",
                path=url.path,
                query=url.query,
                body=raw,
                nonce=nonce,
            )
        return prepared


def test_provider_replies_match_its_document(node: Node, job: dict[str, Any]) -> None:
    started = time.monotonic()
    failures = fuzz(node.provider, "/api/openapi.json", provider_plausible(node, job))
    assert not failures, "\n\n".join(failures)
    assert time.monotonic() - started < 100


def test_engine_replies_match_its_document(node: Node, job: dict[str, Any]) -> None:
    started = time.monotonic()
    provider = MessageSigner(node.chain.provider_key)
    with requests.Session() as session:
        session.auth = EngineRequestSigner(provider)
        plausible = engine_plausible(node, job, provider)
        failures = fuzz(node.engine.url, "/api/v1/openapi.json", plausible, session)
    assert not failures, "\n\n".join(failures)
    assert time.monotonic() - started < 60


def test_the_fuzzer_reports_server_errors_and_undocumented_replies() -> None:
    """The harness itself: a route that fails, one that answers off its document."""
    app = Flask("broken")

    @app.get("/boom")
    def boom() -> Response:
        raise RuntimeError("a bug")

    @app.get("/off")
    def off() -> Response:
        return jsonify({"unexpected": True})

    register_error_handlers(app)
    operations = {
        "boom": Operation("fails", reply=NonceReply, query=NonceRequest),
        "off": Operation("answers off its document", reply=NonceReply),
    }
    register_openapi(app, operations, prefix="/api", title="broken", description="")
    served = serve_app(app, "broken")
    try:
        failures = fuzz(served.url, "/api/openapi.json", lambda case: None)
    finally:
        served.close()
    labels = [failure.split(":", 1)[0] for failure in failures]
    assert labels == ["GET /boom (positive)", "GET /boom (negative)", "GET /off (positive)"]
    assert all("Server error" in failure for failure in failures[:2])
    assert "Response violates schema" in failures[2]
