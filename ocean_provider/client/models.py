"""What the client sends and gets back: typed forms of the Provider's compute JSON.

Requests are frozen dataclasses with ``to_json``; replies are parsed by ``*.from_json``,
which raise ``ProviderReplyInvalid`` on a body of the wrong shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hexbytes import HexBytes

from ocean_provider.chain.fees import ProviderFee
from ocean_provider.client.errors import ProviderReplyInvalid


@dataclass(frozen=True)
class ServiceRef:
    """A published asset's service, to price with ``initialize``; ``transfer_tx_id`` names an
    earlier order, which the Provider reports back as ``valid_order`` if it still covers the job."""

    did: str
    service_id: str
    transfer_tx_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"documentId": self.did, "serviceId": self.service_id}
        if self.transfer_tx_id:
            body["transferTxId"] = self.transfer_tx_id
        return body


@dataclass(frozen=True)
class Ordered:
    """A published asset's service and the order that pays for it, to ``start`` a job."""

    did: str
    service_id: str
    transfer_tx_id: str
    userdata: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "documentId": self.did,
            "serviceId": self.service_id,
            "transferTxId": self.transfer_tx_id,
        }
        if self.userdata is not None:
            body["userdata"] = dict(self.userdata)
        return body


@dataclass(frozen=True)
class RawAlgorithm:
    """An unpublished algorithm: its code inline (``rawcode``) or at ``url``, and the container
    (``entrypoint``, ``image``, ``tag``, ``checksum``) it runs in."""

    container: Mapping[str, str]
    rawcode: str = ""
    url: str = ""

    def to_json(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"container": dict(self.container)}
        if self.rawcode:
            meta["rawcode"] = self.rawcode
        if self.url:
            meta["url"] = self.url
        return {"meta": meta}


def provider_fee_from_json(fee: Mapping[str, Any]) -> ProviderFee:
    """A ``providerFee`` object as initializeCompute returns it (the amount may be text)."""
    try:
        return ProviderFee(
            address=str(fee["providerFeeAddress"]),
            token=str(fee["providerFeeToken"]),
            amount=int(fee["providerFeeAmount"]),
            v=int(fee["v"]),
            r=bytes(HexBytes(fee["r"])),
            s=bytes(HexBytes(fee["s"])),
            valid_until=int(fee["validUntil"]),
            data=bytes(HexBytes(fee["providerData"])),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProviderReplyInvalid(f"a providerFee without a valid {exc}") from None


@dataclass(frozen=True)
class FeeItem:
    """initializeCompute's answer for one asset: a fee to order with (``datatoken`` and
    ``provider_fee``), or an order that still covers the job (``valid_order``), or both
    when the order is valid but its fee ran out (reuse it with the new fee)."""

    datatoken: str | None
    provider_fee: ProviderFee | None
    valid_order: str | None

    @classmethod
    def from_json(cls, item: Any) -> FeeItem:
        if not isinstance(item, dict):
            raise ProviderReplyInvalid("an initializeCompute item is not an object")
        fee = item.get("providerFee")
        if fee is not None and not isinstance(fee, dict):
            raise ProviderReplyInvalid("a providerFee is not an object")
        return cls(
            datatoken=_optional_text(item, "datatoken"),
            provider_fee=provider_fee_from_json(fee) if fee is not None else None,
            valid_order=_optional_text(item, "validOrder"),
        )


@dataclass(frozen=True)
class Initialized:
    """initializeCompute's reply: one item per dataset, and one for a published algorithm."""

    datasets: tuple[FeeItem, ...]
    algorithm: FeeItem | None

    @classmethod
    def from_json(cls, body: Any) -> Initialized:
        if not isinstance(body, dict) or not isinstance(body.get("datasets"), list):
            raise ProviderReplyInvalid("initializeCompute did not return {datasets: [...]}")
        algorithm = body.get("algorithm")
        return cls(
            datasets=tuple(FeeItem.from_json(item) for item in body["datasets"]),
            algorithm=FeeItem.from_json(algorithm) if algorithm is not None else None,
        )


@dataclass(frozen=True)
class ResultFile:
    index: int
    filename: str
    filesize: int
    type: str  # "output", "algorithmLog" or "configurationLog"


@dataclass(frozen=True)
class Job:
    """A compute job's status object (``GET /compute`` and the other compute replies)."""

    job_id: str
    owner: str
    did: str | None  # the first dataset's documentId
    status: int  # Ocean's status codes: 70 completed, 7 stopped, 8 deleted, ...
    status_text: str
    date_created: float | None  # epoch seconds
    date_finished: float | None
    results: tuple[ResultFile, ...]
    algorithm_did: str | None
    input_dids: tuple[str, ...]

    @property
    def finished(self) -> bool:
        return self.date_finished is not None

    def result_index(self, filename: str) -> int:
        """The index of the result called ``filename``; LookupError if there is none."""
        for result in self.results:
            if result.filename == filename:
                return result.index
        raise LookupError(f"job {self.job_id} has no result {filename!r}")

    @classmethod
    def from_json(cls, job: Any) -> Job:
        if not isinstance(job, dict):
            raise ProviderReplyInvalid("a job status is not an object")
        try:
            return cls(
                job_id=str(job["jobId"]),
                owner=str(job["owner"]),
                did=_optional_text(job, "documentId"),
                status=int(job["status"]),
                status_text=str(job.get("statusText") or ""),
                date_created=_date(job.get("dateCreated")),
                date_finished=_date(job.get("dateFinished")),
                results=tuple(_result(r) for r in job.get("results") or ()),
                algorithm_did=_optional_text(job, "algoDID"),
                input_dids=tuple(str(did) for did in job.get("inputDID") or ()),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderReplyInvalid(f"a job status without a valid {exc}") from None


def jobs_from_json(body: Any) -> list[Job]:
    if not isinstance(body, list):
        raise ProviderReplyInvalid("the compute endpoint did not return a list of jobs")
    return [Job.from_json(job) for job in body]


def _result(item: Any) -> ResultFile:
    if not isinstance(item, dict):
        raise TypeError("results")
    return ResultFile(
        index=int(item["index"]),
        filename=str(item["filename"]),
        filesize=int(item.get("filesize", 0)),
        type=str(item.get("type", "output")),
    )


def _date(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


def _optional_text(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ProviderReplyInvalid(f"{key} is not text")
    return value
