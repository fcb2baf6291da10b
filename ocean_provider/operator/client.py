"""HTTP client for an Operator-Service-compatible engine (ours, or Ocean's on Kubernetes).

One pooled session; connect and read timeouts on every call; bounded retries
for idempotent calls only (each attempt signed with a fresh nonce). Every
request is signed by the Provider over ``owner[+jobId]+nonce``.

Several Provider processes share one key, so the engine may see their nonces
out of order and refuse one as ``nonce_too_low``. It refuses before doing
anything, so every call (POST included) is re-signed and sent again, a few
times at most.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from pydantic import ValidationError
from requests.adapters import HTTPAdapter

from ocean_provider.auth.signing import sign_message
from ocean_provider.errors import (
    JobNotFound,
    OperatorFailed,
    OperatorRejected,
    OperatorUnavailable,
    ResultNotFound,
)
from ocean_provider.operator.models import OperatorJob

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1/operator"
RETRY_STATUSES = frozenset({502, 503, 504})
NONCE_RETRIES = 3
CHUNK_BYTES = 64 * 1024
MAX_ERROR_TEXT = 300
RESULT_HEADERS = ("Content-Type", "Content-Length", "Content-Range", "Accept-Ranges")


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
            yield from self._response.iter_content(CHUNK_BYTES)
        finally:
            self._response.close()

    def close(self) -> None:
        self._response.close()


class OperatorClient:
    def __init__(
        self,
        base_url: str,
        signer_key: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        retries: int = 2,
        backoff: float = 0.3,
        session: requests.Session | None = None,
    ) -> None:
        self._base = base_url.rstrip("/") + API_PREFIX
        self._key = signer_key
        self._timeout = (connect_timeout, read_timeout)
        self._retries = retries
        self._backoff = backoff
        self._nonces = MonotonicNonce()
        self._session = session or _pooled_session()
        from eth_account import Account

        self.provider_address = str(Account.from_key(signer_key).address)

    def close(self) -> None:
        self._session.close()

    def _signed(self, owner: str, job_id: str | None) -> dict[str, Any]:
        nonce = self._nonces.next()
        message = f"{owner}{job_id or ''}{nonce}"
        return {
            "providerAddress": self.provider_address,
            "providerSignature": sign_message(message, self._key),
            "nonce": nonce,
        }

    def start(self, owner: str, payload: Mapping[str, Any]) -> list[OperatorJob]:
        """POST a workflow. Never retried: the engine may have created the job."""
        body = {**payload, "owner": owner}
        response = self._send("POST", "/compute", json=body, sign=(owner, None), retries=0)
        return self._jobs(response)

    def status(
        self, owner: str, job_id: str | None = None, document_id: str | None = None
    ) -> list[OperatorJob]:
        return self._jobs(self._job_call("GET", owner, job_id, document_id))

    def stop(self, owner: str, job_id: str | None, document_id: str | None) -> list[OperatorJob]:
        return self._jobs(self._job_call("PUT", owner, job_id, document_id))

    def delete(self, owner: str, job_id: str | None, document_id: str | None) -> list[OperatorJob]:
        """DELETE; Ocean's Operator-Service answers ``""`` here, which gives ``[]``."""
        return self._jobs(self._job_call("DELETE", owner, job_id, document_id))

    def environments(self, chain_id: int) -> list[dict[str, Any]]:
        response = self._send("GET", "/environments", params={"chainId": chain_id})
        body = _json(response)
        if not isinstance(body, list) or not all(isinstance(env, dict) for env in body):
            raise OperatorFailed("compute engine sent an unreadable environment list")
        return body

    def result(
        self, owner: str, job_id: str, index: int, consumer_signature: str, range_header: str | None
    ) -> ResultStream:
        params = {
            "owner": owner,
            "jobId": job_id,
            "index": index,
            "consumerSignature": consumer_signature,
        }
        headers = {"Range": range_header} if range_header else {}
        try:
            response = self._send(
                "GET",
                "/getResult",
                params=params,
                sign=(owner, job_id),
                headers=headers,
                stream=True,
            )
        except JobNotFound:
            raise ResultNotFound("no such result for this job") from None
        kept = {k: response.headers[k] for k in RESULT_HEADERS if k in response.headers}
        return ResultStream(
            response.status_code, kept, _disposition_name(response.headers), response
        )

    def _job_call(
        self, method: str, owner: str, job_id: str | None, document_id: str | None
    ) -> requests.Response:
        params: dict[str, Any] = {"owner": owner}
        if job_id:
            params["jobId"] = job_id
        if document_id:
            params["documentId"] = document_id
        return self._send(method, "/compute", params=params, sign=(owner, job_id))

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Mapping[str, Any] | None = None,
        sign: tuple[str, str | None] | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        retries: int | None = None,
    ) -> requests.Response:
        attempts = 1 + (self._retries if retries is None else retries)
        attempt = nonce_retries = 0
        while True:
            attempt += 1
            signed = self._signed(*sign) if sign else {}
            query, body = (params or {}), json
            if body is not None:
                body = {**body, **signed}
            else:
                query = {**query, **signed}
            try:
                response = self._request(method, path, query, body, headers, stream)
            except OperatorUnavailable:
                if attempt >= attempts:
                    raise
            else:
                if _nonce_refused(response) and nonce_retries < NONCE_RETRIES:
                    nonce_retries += 1
                    attempt -= 1  # a refused nonce did nothing: not an attempt
                    response.close()
                    log.info("engine refused a stale nonce; re-signing")
                    continue
                if response.status_code not in RETRY_STATUSES or attempt >= attempts:
                    return _checked(response)
                response.close()
            time.sleep(self._backoff * attempt)

    def _request(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        json: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        stream: bool,
    ) -> requests.Response:
        started = time.monotonic()
        try:
            response = self._session.request(
                method,
                self._base + path,
                params=params or None,
                json=json,
                headers=dict(headers or {}),
                timeout=self._timeout,
                stream=stream,
            )
        except requests.ConnectTimeout:
            raise OperatorUnavailable("compute engine unreachable (connect timeout)") from None
        except requests.ReadTimeout:
            raise OperatorUnavailable("compute engine did not answer in time") from None
        except requests.RequestException:
            raise OperatorUnavailable("compute engine unreachable") from None
        elapsed = (time.monotonic() - started) * 1000
        log.info("engine %s %s -> %s in %.0f ms", method, path, response.status_code, elapsed)
        return response

    @staticmethod
    def _jobs(response: requests.Response) -> list[OperatorJob]:
        body = _json(response)
        if body in ("", None):
            return []
        if isinstance(body, dict):
            body = [body]
        if not isinstance(body, list):
            raise OperatorFailed("compute engine sent an unreadable job list")
        try:
            return [OperatorJob.model_validate(item) for item in body]
        except ValidationError:
            raise OperatorFailed("compute engine sent an unreadable job list") from None


def _pooled_session() -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=25)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _json(response: requests.Response) -> Any:
    if not response.content.strip():
        return None
    try:
        return response.json()
    except ValueError:
        raise OperatorFailed("compute engine sent a reply that is not JSON") from None


def _nonce_refused(response: requests.Response) -> bool:
    """Our engine's answer to a nonce not above the last one it accepted."""
    if response.status_code != 400 or len(response.content) > 4096:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("code") == "nonce_too_low"


def _checked(response: requests.Response) -> requests.Response:
    """Map engine errors to ours; 2xx (and 206) pass."""
    code = response.status_code
    if code < 400:
        return response
    text = _error_text(response)
    response.close()
    if code == 404:
        raise JobNotFound("no such job for this consumer")
    if 400 <= code < 500:
        raise OperatorRejected(f"compute engine refused the request: {text}")
    raise OperatorFailed(f"compute engine failed (HTTP {code})")


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
        text = body.get("error", "") if isinstance(body, dict) else str(body)
    except ValueError:
        text = ""
    text = str(text) if not isinstance(text, str) else text
    words = ["<URL>" if "://" in word else word for word in text.split()]
    return " ".join(words)[:MAX_ERROR_TEXT] or f"HTTP {response.status_code}"


def _disposition_name(headers: Mapping[str, str]) -> str | None:
    value = headers.get("Content-Disposition", "")
    for part in value.split(";"):
        key, _, name = part.strip().partition("=")
        if key.lower() == "filename" and name:
            return name.strip('"')
    return None
