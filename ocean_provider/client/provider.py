"""``ProviderClient``: a consumer's calls to a Provider's compute endpoints, signed with the
same messages (``auth.messages``) and signer (``auth.signing``) the Provider verifies.

Each signed request signs ``message + nonce`` with a fresh nonce: nanoseconds since the epoch,
and always above both the last one this client used and the nonce the Provider held when the
client first asked (``GET /api/services/nonce``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import requests

from ocean_provider.auth.messages import job_message, result_message, start_message
from ocean_provider.auth.signing import MessageSigner
from ocean_provider.client.errors import ProviderRefused, ProviderReplyInvalid
from ocean_provider.client.models import (
    Initialized,
    Job,
    Ordered,
    RawAlgorithm,
    ServiceRef,
    jobs_from_json,
)

SERVICES = "/api/services"
CHUNK_BYTES = 1 << 16


class ProviderClient:
    """One consumer (``consumer_key``) talking to the Provider at ``provider_url``.

    Every reply with an error status raises ``ProviderRefused``; transport failures raise
    ``requests``' exceptions. Close it (or use it as a context manager) to release the
    session it made; a ``session`` passed in stays the caller's.
    """

    def __init__(
        self,
        provider_url: str,
        consumer_key: str,
        *,
        timeout: float = 30,
        session: requests.Session | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._base = provider_url.rstrip("/") + SERVICES
        self._signer = MessageSigner(consumer_key)
        self.address = self._signer.address
        self._timeout = timeout
        self._own_session = session is None
        self._session = session or requests.Session()
        self._clock = clock
        self._last_nonce: int | None = None

    def close(self) -> None:
        if self._own_session:
            self._session.close()

    def __enter__(self) -> ProviderClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def environments(self, chain_id: int) -> list[dict[str, Any]]:
        body = self._json("GET", "/computeEnvironments", params={"chainId": chain_id})
        if not isinstance(body, list) or not all(isinstance(env, dict) for env in body):
            raise ProviderReplyInvalid("computeEnvironments did not return a list of objects")
        return body

    def nonce(self) -> Decimal:
        """The last nonce the Provider accepted from this consumer (1 for a new one)."""
        body = self._json("GET", "/nonce", params={"userAddress": self.address})
        try:
            return Decimal(str(body["nonce"]))
        except (TypeError, KeyError, InvalidOperation):
            raise ProviderReplyInvalid("nonce did not return {nonce: N}") from None

    def initialize(
        self,
        datasets: Sequence[ServiceRef],
        algorithm: ServiceRef | RawAlgorithm,
        env: str,
        valid_until: int,
    ) -> Initialized:
        """Provider fees for running ``algorithm`` on ``datasets`` in ``env`` until
        ``valid_until`` (epoch seconds); unsigned, it starts nothing."""
        body = {
            "datasets": [dataset.to_json() for dataset in datasets],
            "algorithm": algorithm.to_json(),
            "compute": {"env": env, "validUntil": valid_until},
            "consumerAddress": self.address,
        }
        return Initialized.from_json(self._json("POST", "/initializeCompute", json=body))

    def start(
        self,
        dataset: Ordered,
        algorithm: Ordered | RawAlgorithm,
        env: str,
        additional: Sequence[Ordered] = (),
    ) -> Job:
        nonce = self._next_nonce()
        body: dict[str, Any] = {
            "consumerAddress": self.address,
            "nonce": nonce,
            "signature": self._sign(start_message(self.address, dataset.did), nonce),
            "environment": env,
            "dataset": dataset.to_json(),
            "algorithm": algorithm.to_json(),
        }
        if additional:
            body["additionalDatasets"] = [item.to_json() for item in additional]
        return _one(jobs_from_json(self._json("POST", "/compute", json=body)))

    def status(self, job_id: str) -> Job:
        return _one(self._job_call("GET", job_id, None))

    def jobs(self, did: str | None = None) -> list[Job]:
        """All this consumer's jobs, or those on dataset ``did``."""
        return self._job_call("GET", None, did)

    def stop(self, job_id: str) -> Job:
        return _one(self._job_call("PUT", job_id, None))

    def delete(self, job_id: str) -> Job:
        return _one(self._job_call("DELETE", job_id, None))

    def wait(self, job_id: str, *, timeout: float = 300, interval: float = 1.0) -> Job:
        """Poll the job's status until it finishes; TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not (job := self.status(job_id)).finished:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} still at {job.status} {job.status_text!r}")
            time.sleep(interval)
        return job

    def result(self, job_id: str, index: int) -> bytes:
        with self._result_reply(job_id, index) as reply:
            return reply.content

    def save_result(self, job_id: str, index: int, path: Path) -> int:
        """Stream result ``index`` into ``path`` (created once the Provider agreed to send
        it); the number of bytes written."""
        written = 0
        with self._result_reply(job_id, index) as reply, path.open("wb") as out:
            for chunk in reply.iter_content(CHUNK_BYTES):
                written += out.write(chunk)
        return written

    def _result_reply(self, job_id: str, index: int) -> requests.Response:
        nonce = self._next_nonce()
        params = {
            "consumerAddress": self.address,
            "jobId": job_id,
            "index": index,
            "nonce": nonce,
            "signature": self._sign(result_message(self.address, job_id, index), nonce),
        }
        return self._request("GET", "/computeResult", params=params, stream=True)

    def _job_call(self, method: str, job_id: str | None, did: str | None) -> list[Job]:
        nonce = self._next_nonce()
        params = {
            "consumerAddress": self.address,
            "nonce": nonce,
            "signature": self._sign(job_message(self.address, job_id, did), nonce),
        }
        if job_id:
            params["jobId"] = job_id
        if did:
            params["documentId"] = did
        return jobs_from_json(self._json(method, "/compute", params=params))

    def _next_nonce(self) -> str:
        if self._last_nonce is None:
            self._last_nonce = int(self.nonce())
        self._last_nonce = max(self._clock(), self._last_nonce + 1)
        return str(self._last_nonce)

    def _sign(self, message: str, nonce: str) -> str:
        return self._signer.sign(message + nonce)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        with self._request(method, path, **kwargs) as reply:
            try:
                return reply.json()
            except ValueError:
                raise ProviderReplyInvalid(f"{path} did not return JSON") from None

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        reply = self._session.request(method, self._base + path, timeout=self._timeout, **kwargs)
        if reply.status_code >= 400:
            with reply:
                raise _refusal(reply)
        return reply


def _refusal(reply: requests.Response) -> ProviderRefused:
    try:
        body = reply.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        code, error = body.get("code"), body.get("error")
        if isinstance(code, str):
            return ProviderRefused(reply.status_code, code, "" if error is None else str(error))
    return ProviderRefused(reply.status_code, "http_error", reply.reason or "no error body")


def _one(jobs: list[Job]) -> Job:
    if not jobs:
        raise ProviderReplyInvalid("the compute endpoint returned no job")
    return jobs[0]
