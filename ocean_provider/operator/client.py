"""HTTP client for an Operator-Service-compatible engine (ours, or Ocean's on Kubernetes).

One pooled session. Every call has an overall deadline (``Deadline``), not only
per-read timeouts, and a JSON reply is read within a size cap; bounded retries
for idempotent calls only (each attempt signed with a fresh nonce). Every
request carries Ocean's signature over ``owner[+jobId]+nonce`` and, in a
header, ours over the whole request (``request_signature``); Ocean's
Operator-Service ignores the header.

An engine with a strictly increasing nonce (Ocean's) may see the nonces of
several Provider processes out of order and refuse one. It refuses before doing
anything, so every call (POST included) is re-signed and sent again, a few
times at most; after that the failure is the server's (503), not the caller's.
Signatures are never logged: log lines name the method and path only.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from requests.hooks import default_hooks
from requests.structures import CaseInsensitiveDict

from ocean_provider.auth.signing import MessageSigner
from ocean_provider.errors import JobNotFound, OperatorUnavailable, ProviderError, ResultNotFound
from ocean_provider.operator.deadline import Deadline, DeadlineAdapter, Watchdog
from ocean_provider.operator.replies import (
    MAX_REPLY_BYTES,
    EngineReply,
    engine_error,
    parse_environments,
    parse_jobs,
    read_capped,
)
from ocean_provider.web.disposition import disposition_name
from ocean_provider.web.request_log import REQUEST_ID_HEADER
from ocean_provider.wire.jobs import OperatorJob
from ocean_provider.wire.request_signature import HEADER, sign_request

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1/operator"
RETRY_STATUSES = frozenset({502, 503, 504})
NONCE_RETRIES = 3
# Results pass through in large chunks: per-chunk work is Python's, per-byte work is the
# kernel's; one chunk per download in flight keeps memory flat.
STREAM_CHUNK_BYTES = 1024 * 1024
RESULT_HEADERS = ("Content-Type", "Content-Length", "Content-Range", "Accept-Ranges")
# (method, path) -> the call kind engine metrics count by
CALL_KINDS = {
    ("POST", "/compute"): "start",
    ("GET", "/compute"): "status",
    ("PUT", "/compute"): "stop",
    ("DELETE", "/compute"): "delete",
    ("GET", "/environments"): "environments",
    ("GET", "/getResult"): "result",
}
# Told of each engine call: its kind, outcome (ok, refused, error, unavailable) and seconds
CallObserver = Callable[[str, str, float], None]


class MonotonicNonce:
    """Nanosecond-time nonces that never repeat or go back within one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def next(self) -> int:
        with self._lock:
            self._last = max(time.time_ns(), self._last + 1)
            return self._last


@dataclass
class ResultStream:
    """An open streamed result; iterate ``chunks()`` once, then it closes itself."""

    status: int
    headers: dict[str, str]
    filename: str | None
    _response: requests.Response

    def chunks(self) -> Iterator[bytes]:
        try:
            yield from self._response.iter_content(STREAM_CHUNK_BYTES)
        finally:
            self._response.close()

    def close(self) -> None:
        self._response.close()


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    params: Mapping[str, Any]
    json: Mapping[str, Any] | None = None
    sign: tuple[str, str | None] | None = None
    headers: Mapping[str, str] | None = None


class OperatorClient:
    def __init__(
        self,
        base_url: str,
        signer_key: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        total_timeout: float | None = None,
        max_reply_bytes: int = MAX_REPLY_BYTES,
        retries: int = 2,
        backoff: float = 0.3,
        session: requests.Session | None = None,
        observer: CallObserver | None = None,
        request_id: Callable[[], str | None] | None = None,
    ) -> None:
        """``observer`` hears of each call (metrics); ``request_id`` gives the id of the
        request being served, sent on as ``X-Request-ID``."""
        self._observer = observer
        self._request_id = request_id
        self._base = base_url.rstrip("/") + API_PREFIX
        self._signer = MessageSigner(signer_key)
        self._timeout = (connect_timeout, read_timeout)
        self._total = total_timeout or connect_timeout + read_timeout
        self._max_reply = max_reply_bytes
        self._retries = retries
        self._backoff = backoff
        self._nonces = MonotonicNonce()
        self._session = session or _pooled_session()
        self._default_headers = {k: str(v) for k, v in self._session.headers.items()}
        self.provider_address = self._signer.address
        self._watchdog = Watchdog()

    def close(self) -> None:
        self._watchdog.close()
        self._session.close()

    def _signed(self, owner: str, job_id: str | None) -> dict[str, Any]:
        nonce = self._nonces.next()
        message = f"{owner}{job_id or ''}{nonce}"
        return {
            "providerAddress": self.provider_address,
            "providerSignature": self._signer.sign(message),
            "nonce": nonce,
        }

    def start(self, owner: str, payload: Mapping[str, Any]) -> list[OperatorJob]:
        """POST a workflow. Never retried: the engine may have created the job."""
        call = _Call("POST", "/compute", {}, json={**payload, "owner": owner}, sign=(owner, None))
        return parse_jobs(self._reply(call, retries=0), owner)

    def status(
        self, owner: str, job_id: str | None = None, document_id: str | None = None
    ) -> list[OperatorJob]:
        return self._job_call("GET", owner, job_id, document_id)

    def stop(self, owner: str, job_id: str | None, document_id: str | None) -> list[OperatorJob]:
        return self._job_call("PUT", owner, job_id, document_id)

    def delete(self, owner: str, job_id: str | None, document_id: str | None) -> list[OperatorJob]:
        """DELETE; Ocean's Operator-Service answers ``""`` here, which gives ``[]``."""
        return self._job_call("DELETE", owner, job_id, document_id)

    def environments(self, chain_id: int) -> list[dict[str, Any]]:
        return parse_environments(self._reply(_Call("GET", "/environments", {"chainId": chain_id})))

    def result(self, owner: str, job_id: str, index: int, range_header: str | None) -> ResultStream:
        """Stream one result file. The deadline covers the reply's head; the body then
        streams under per-read timeouts, as long as the file takes."""
        params = {"owner": owner, "jobId": job_id, "index": index}
        headers = {"Range": range_header} if range_header else {}
        call = _Call("GET", "/getResult", params, sign=(owner, job_id), headers=headers)
        try:
            response = self._send(call, stream=True)
        except JobNotFound:
            raise ResultNotFound("no such result for this job") from None
        assert not isinstance(response, EngineReply)  # stream=True and a 2xx
        kept = {k: response.headers[k] for k in RESULT_HEADERS if k in response.headers}
        name = disposition_name(response.headers.get("Content-Disposition"))
        return ResultStream(response.status_code, kept, name, response)

    def _job_call(
        self, method: str, owner: str, job_id: str | None, document_id: str | None
    ) -> list[OperatorJob]:
        params: dict[str, Any] = {"owner": owner}
        if job_id:
            params["jobId"] = job_id
        if document_id:
            params["documentId"] = document_id
        reply = self._reply(_Call(method, "/compute", params, sign=(owner, job_id)))
        return parse_jobs(reply, owner, job_id, document_id)

    def _reply(self, call: _Call, retries: int | None = None) -> EngineReply:
        reply = self._send(call, retries=retries)
        assert isinstance(reply, EngineReply)
        return reply

    def _send(
        self, call: _Call, *, stream: bool = False, retries: int | None = None
    ) -> EngineReply | requests.Response:
        """``_attempts``, timed and told to the observer with its outcome."""
        if self._observer is None:
            return self._attempts(call, stream, retries)
        started, outcome = time.perf_counter(), "ok"
        try:
            return self._attempts(call, stream, retries)
        except ProviderError as exc:
            outcome = call_outcome(exc)
            raise
        finally:
            kind = CALL_KINDS.get((call.method, call.path), "other")
            self._observer(kind, outcome, time.perf_counter() - started)

    def _attempts(
        self, call: _Call, stream: bool, retries: int | None
    ) -> EngineReply | requests.Response:
        """Send until a reply we keep, within one deadline; 4xx/5xx raise our errors."""
        attempts = 1 + (self._retries if retries is None else retries)
        attempt = nonce_retries = 0
        with Deadline(self._total, self._watchdog) as deadline:
            while True:
                attempt += 1
                try:
                    reply = self._exchange(call, deadline, stream)
                except OperatorUnavailable:
                    if attempt >= attempts or deadline.remaining() <= 0:
                        raise
                else:
                    if isinstance(reply, requests.Response):
                        return reply  # a 2xx stream, its body not read yet
                    if reply.nonce_refused:
                        if nonce_retries >= NONCE_RETRIES:
                            raise OperatorUnavailable(
                                "compute engine kept refusing the Provider's nonces"
                            )
                        nonce_retries += 1
                        attempt -= 1  # a refused nonce did nothing: not an attempt
                        log.info("engine refused a nonce; re-signing")
                        continue
                    if reply.status < 300:
                        return reply
                    if reply.status not in RETRY_STATUSES or attempt >= attempts:
                        raise engine_error(reply)
                time.sleep(min(self._backoff * attempt, deadline.remaining()))
                if deadline.remaining() <= 0:
                    raise OperatorUnavailable("compute engine did not answer in time")

    def _exchange(
        self, call: _Call, deadline: Deadline, stream: bool
    ) -> EngineReply | requests.Response:
        """One signed attempt: the open 2xx stream, or the whole reply (size-capped)."""
        try:
            response = self._request(call, deadline)
            if stream and response.status_code < 300:
                return response
            return read_capped(response, self._max_reply)
        except requests.ConnectTimeout:
            raise OperatorUnavailable("compute engine unreachable (connect timeout)") from None
        except requests.RequestException as exc:
            if deadline.expired or isinstance(exc, requests.Timeout):
                raise OperatorUnavailable("compute engine did not answer in time") from None
            raise OperatorUnavailable("compute engine unreachable") from None

    def _request(self, call: _Call, deadline: Deadline) -> requests.Response:
        query, body = dict(call.params), call.json
        nonce = None
        if call.sign:
            signed = self._signed(*call.sign)
            nonce = str(signed["nonce"])
            if body is not None:
                body = {**body, **signed}
            else:
                query.update(signed)
        prepared = self._prepare(call.method, self._base + call.path, query, body, call.headers)
        request_id = self._request_id() if self._request_id is not None else None
        if request_id is not None:
            prepared.headers[REQUEST_ID_HEADER] = request_id
        if nonce is not None:
            prepared.headers[HEADER] = self._request_signature(prepared, nonce)
        read = max(0.001, min(self._timeout[1], deadline.remaining()))
        started = time.monotonic()
        response = self._session.send(
            prepared, timeout=(self._timeout[0], read), stream=True, allow_redirects=False
        )
        elapsed = (time.monotonic() - started) * 1000
        log.info(
            "engine %s %s -> %s in %.0f ms", call.method, call.path, response.status_code, elapsed
        )
        return response

    def _prepare(
        self,
        method: str,
        url: str,
        query: Mapping[str, Any],
        body: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
    ) -> requests.PreparedRequest:
        """The request as ``requests`` prepares it (same query and JSON encoding), without
        the session's per-call merging of cookies, auth and environment, none of which
        apply to the engine."""
        prepared = requests.PreparedRequest()
        prepared.method = method
        prepared.url = f"{url}?{urlencode(query)}" if query else url
        prepared.headers = CaseInsensitiveDict({**self._default_headers, **(headers or {})})
        prepared.hooks = default_hooks()
        if body is not None:
            data = json.dumps(body, allow_nan=False).encode()
            prepared.body = data
            prepared.headers["Content-Type"] = "application/json"
            prepared.headers["Content-Length"] = str(len(data))
        elif method not in ("GET", "HEAD"):
            prepared.headers["Content-Length"] = "0"
        return prepared

    def _request_signature(self, prepared: requests.PreparedRequest, nonce: str) -> str:
        """Sign the exact path, query and body bytes ``requests`` is about to send."""
        url = urlsplit(prepared.url or "")
        body = prepared.body or b""
        raw = body.encode("utf-8") if isinstance(body, str) else body
        method = prepared.method or "GET"
        return sign_request(
            self._signer, method=method, path=url.path, query=url.query, body=raw, nonce=nonce
        )


class _NoQueryStrings(logging.Filter):
    """urllib3 logs each request's URL at DEBUG; Ocean's protocol puts signatures in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                arg.split("?", 1)[0] + "?<redacted>" if isinstance(arg, str) and "?" in arg else arg
                for arg in record.args
            )
        return True


def _keep_signatures_out_of_urllib3_logs() -> None:
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _NoQueryStrings) for f in logger.filters):
        logger.addFilter(_NoQueryStrings())


def call_outcome(error: ProviderError) -> str:
    """``unavailable`` (no answer in time), ``error`` (the engine failed), ``refused`` (it
    answered no: an unknown job, a bad request)."""
    if isinstance(error, OperatorUnavailable):
        return "unavailable"
    return "error" if error.status >= 500 else "refused"


def _pooled_session() -> requests.Session:
    _keep_signatures_out_of_urllib3_logs()
    session = requests.Session()
    session.trust_env = False  # no proxy or .netrc lookups per call: the engine is direct
    adapter = DeadlineAdapter(pool_connections=4, pool_maxsize=25)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
