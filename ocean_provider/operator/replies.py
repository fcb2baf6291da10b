"""Engine replies are data: read within a size cap, parsed with bounds, mapped to our errors.

Nothing an engine writes reaches the caller as text: errors become our own
fixed messages (by HTTP status and, from our engine, its stable ``code``), job
lists are validated field by field and cut down to what was asked for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from pydantic import ValidationError

from ocean_provider import bounded_json
from ocean_provider.auth.addresses import checksum_address
from ocean_provider.errors import (
    JobNotFound,
    OperatorFailed,
    OperatorRejected,
    ProviderError,
    RangeNotSatisfiable,
)
from ocean_provider.wire.jobs import OperatorJob

CHUNK_BYTES = 64 * 1024
MAX_REPLY_BYTES = 8 * 1024 * 1024
# Our engine's codes for a nonce it will not take (a re-sign fixes them), and Ocean's text.
NONCE_CODES = frozenset({"nonce_too_low", "nonce_not_fresh"})
OCEAN_NONCE_TEXT = "expected nonce"
# Refusals that are the caller's to fix: our engine's code -> our message.
REFUSALS = {
    "invalid_request": "the compute engine refused the request as invalid",
    "environment_not_found": "the compute environment does not exist",
    "agreement_in_use": "this order is already used by another compute job",
}
# Refusals of the Provider's own credentials: a server-side fault, never the caller's.
CREDENTIAL_CODES = frozenset({"signature_invalid", "signature_missing", *NONCE_CODES})
UNSATISFIABLE = re.compile(r"bytes \*/([0-9]{1,18})")


@dataclass(frozen=True)
class EngineReply:
    """A whole (small) engine reply, read within the size cap."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        if not self.body.strip():
            return None
        try:
            return bounded_json.loads(self.body)
        except ValueError:
            raise OperatorFailed("compute engine sent a reply that is not JSON") from None

    def error_code(self) -> str:
        """Our engine's stable code, or Ocean's nonce refusal (text only), else ``""``."""
        if self.status != 400:
            return ""
        try:
            body = self.json()
        except OperatorFailed:
            return ""
        if not isinstance(body, dict):
            return ""
        code, text = body.get("code"), body.get("error")
        if isinstance(code, str):
            return code
        if isinstance(text, str) and OCEAN_NONCE_TEXT in text:
            return "nonce_too_low"
        return ""

    @property
    def nonce_refused(self) -> bool:
        return self.error_code() in NONCE_CODES


def read_capped(response: requests.Response, cap: int = MAX_REPLY_BYTES) -> EngineReply:
    """Read the whole body, refusing (502) past ``cap`` bytes; closes the response."""
    try:
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > cap:
            raise OperatorFailed(f"compute engine sent a reply over {cap} bytes")
        body = bytearray()
        for chunk in response.iter_content(CHUNK_BYTES):
            body += chunk
            if len(body) > cap:
                raise OperatorFailed(f"compute engine sent a reply over {cap} bytes")
        return EngineReply(response.status_code, dict(response.headers), bytes(body))
    finally:
        response.close()


def engine_error(reply: EngineReply) -> ProviderError:
    """Our error for an engine's 4xx or 5xx; the engine's own words are dropped."""
    status, code = reply.status, reply.error_code()
    if status == 404:
        return JobNotFound("no such job for this consumer")
    if status == 416:
        match = UNSATISFIABLE.fullmatch(reply.headers.get("Content-Range", "").strip())
        size = int(match.group(1)) if match else None
        return RangeNotSatisfiable("the requested range lies outside the result", size=size)
    if status in (401, 403) or code in CREDENTIAL_CODES:
        return OperatorFailed("the compute engine refused the Provider's credentials")
    if status == 413:
        return OperatorRejected("the request is too large for the compute engine")
    if 400 <= status < 500:
        return OperatorRejected(REFUSALS.get(code, "the compute engine refused the request"))
    return OperatorFailed(f"compute engine failed (HTTP {status})")


def parse_jobs(
    reply: EngineReply,
    owner: str,
    job_id: str | None = None,
    document_id: str | None = None,
) -> list[OperatorJob]:
    """The owner's jobs in the reply that match ``job_id`` and ``document_id``, once each."""
    body = reply.json()
    if body in ("", None):
        return []
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        raise OperatorFailed("compute engine sent an unreadable job list")
    wanted = _checksummed(owner)
    kept: dict[str, OperatorJob] = {}
    for item in body:
        try:
            job = OperatorJob.model_validate(item)
        except ValidationError:
            raise OperatorFailed("compute engine sent an unreadable job list") from None
        if (
            wanted is not None
            and _checksummed(job.owner) == wanted
            and (not job_id or job.job_id == job_id)
            and (not document_id or document_id in job.input_dids)
        ):
            kept.setdefault(job.job_id, job)
    return list(kept.values())


def parse_environments(reply: EngineReply) -> list[dict[str, Any]]:
    body = reply.json()
    if not isinstance(body, list) or not all(isinstance(env, dict) for env in body):
        raise OperatorFailed("compute engine sent an unreadable environment list")
    return body


def _checksummed(address: str) -> str | None:
    try:
        return checksum_address(address)
    except ValueError:
        return None
