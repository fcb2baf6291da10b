"""The consume service: who may download which service's files, and the files themselves.

Policy (README "Downloads and file information"):

- a ``compute`` service's files go only to a compute environment's operator: the signer
  must be the ``consumerAddress`` an environment of the asset's chain announces, and the
  order must name it as consumer (the user who paid is the payer). A consumer of the
  compute service gets ``not_access_service``, as from the reference;
- an ``access`` service's files go to the order's consumer or payer, as the reference
  serves them, once the asset's state and address credentials allow the signer (an
  environment's operator, fetching a job's algorithm, passes the credentials: the job's
  user passed them when it started);
- any other service type is ``not_access_service``.

Every method that downloads receives an authenticated signer; everything that reaches the
chain or a file's server happens after that. Decrypted URLs stay inside: log lines name
the DID, the service and the file index, never a URL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from ocean_provider.auth.addresses import checksum_address
from ocean_provider.compute import policy
from ocean_provider.compute.interfaces import Asset, DdoResolver, OrderVerifier, VerifiedOrder
from ocean_provider.consume import upstream
from ocean_provider.consume.requests import DownloadRequest, FileInfoRequest
from ocean_provider.errors import (
    ComputeDisabled,
    ComputeRefused,
    FileUnavailable,
    RangeNotSatisfiable,
)
from ocean_provider.fetch.fetcher import FetchPolicy, OpenedFile, SafeFetcher
from ocean_provider.fetch.request import FetchError, FetchStatus

log = logging.getLogger(__name__)
CREDENTIAL_CODES = ("credential_not_in_allow_list", "credential_in_deny_list")
STREAM_CAP = 1 << 50  # downloads stream in constant memory: no practical size cap


class Environments(Protocol):
    """The compute environments a chain announces (``ComputeService`` is the real one)."""

    def environments(self, chain_id: int) -> list[dict[str, Any]]: ...


class Download:
    """An open download: what ``api.downloads.download_response`` streams."""

    def __init__(self, opened: OpenedFile) -> None:
        self._opened = opened
        self.status = opened.status
        self.headers = upstream.reply_headers(opened.headers)
        self.filename = upstream.file_name(opened.headers)

    def chunks(self) -> Iterator[bytes]:
        return self._opened.chunks()

    def close(self) -> None:
        self._opened.close()


class ConsumeService:
    def __init__(
        self,
        ddos: DdoResolver,
        orders: OrderVerifier,
        environments: Environments,
        *,
        timeout: float,
        max_checksum_bytes: int,
        allow_private: bool = False,
    ) -> None:
        self._ddos = ddos
        self._orders = orders
        self._environments = environments
        connect = min(5.0, timeout)
        # downloads: each read within ``timeout``, however long the whole file takes
        self._streamer = SafeFetcher(
            FetchPolicy(allow_private, connect, timeout, max_bytes=STREAM_CAP)
        )
        # fileinfo: the whole check within ``timeout``, checksums over at most so many bytes
        self._prober = SafeFetcher(
            FetchPolicy(
                allow_private, connect, timeout, max_bytes=max_checksum_bytes, total_timeout=timeout
            )
        )

    def download(self, signer: str, req: DownloadRequest, byte_range: str | None) -> Download:
        asset = self._resolve(req.document_id)
        service = _service(asset, req.service_id)
        self._check_signer(asset, service, signer)
        order = self._verify(asset, req, signer)
        if service.get("type") == "compute" and order.consumer != signer:
            raise ComputeRefused(
                "transferTxId",
                "order_wrong_consumer",
                "a compute input goes to the order's consumer: the environment's operator",
            )
        files = self._files(asset, req.service_id)
        if req.file_index >= len(files):
            raise ComputeRefused("fileIndex", "file_index_out_of_range")
        file = upstream.with_range(
            upstream.with_userdata(files[req.file_index], req.userdata), byte_range
        )
        where = f"{asset.did} service {req.service_id} file {req.file_index}"
        try:
            opened = self._streamer.open(file)
        except FetchStatus as failed:
            if failed.status == 416:
                raise RangeNotSatisfiable("the requested range lies outside the file") from None
            raise self._unavailable(where, failed) from None
        except FetchError as failed:
            raise self._unavailable(where, failed) from None
        log.info("%s: streaming to %s (HTTP %d)", where, signer, opened.status)
        return Download(opened)

    def fileinfo(self, req: FileInfoRequest) -> list[dict[str, Any]]:
        """One entry per file: ``index``, ``valid``, ``type``, ``contentLength``,
        ``contentType`` (and ``checksum`` on request). A compute service's files are
        described without contacting their server (the caller is unknown)."""
        if req.did is None:
            return [self._probe(0, req.file_object(), req)]
        asset = self._resolve(req.did)
        assert req.service_id is not None  # the request model requires it with did
        service = _service(asset, req.service_id)
        try:
            files = self._files(asset, req.service_id)
        except ComputeRefused as refused:
            # a list still, so that pod-configuration's download meets the refusal (31)
            return [{"index": 0, "valid": False, "type": "url", "code": refused.code}]
        if service.get("type") != "access":
            blank = {"contentLength": "", "contentType": ""}
            return [{"index": i, "valid": True, "type": "url", **blank} for i in range(len(files))]
        return [self._probe(i, file, req) for i, file in enumerate(files)]

    def _probe(self, index: int, file: Mapping[str, Any], req: FileInfoRequest) -> dict[str, Any]:
        entry: dict[str, Any] = {"index": index, "valid": False, "type": "url"}
        file = upstream.with_userdata(file, req.userdata)
        try:
            opened = self._prober.open(file)
            opened.close()  # the head is all fileinfo needs
            entry.update(valid=True, **upstream.details(opened.headers))
            if req.checksum:
                entry.update(checksum=self._prober.sha256(file), checksumType="sha256")
        except FetchError as failed:
            log.info("fileinfo: file %d not reachable: %s", index, failed.reason)
            entry["valid"] = False
        return entry

    def _check_signer(self, asset: Asset, service: Mapping[str, Any], signer: str) -> None:
        kind = service.get("type")
        policy.check_state(asset, "documentId")
        if kind == "access":
            try:
                policy.check_consumable(asset, signer, "documentId")
            except ComputeRefused as refused:
                # an operator fetches an algorithm for a job whose user passed them at start
                if refused.code not in CREDENTIAL_CODES or signer not in self._operators(
                    asset.chain_id
                ):
                    raise
            return
        if kind != "compute" or signer not in self._operators(asset.chain_id):
            raise ComputeRefused(
                "serviceId",
                "not_access_service",
                f"Service with id={service.get('id')} is not an access service: a compute "
                "service's files go only to a compute environment's consumerAddress",
            )

    def _operators(self, chain_id: int) -> set[str]:
        try:
            environments = self._environments.environments(chain_id)
        except ComputeDisabled:
            return set()
        operators = set()
        for env in environments:
            try:
                operators.add(checksum_address(str(env.get("consumerAddress"))))
            except ValueError:
                continue
        return operators

    def _verify(self, asset: Asset, req: DownloadRequest, signer: str) -> VerifiedOrder:
        try:
            return self._orders.verify(
                asset=asset,
                service_id=req.service_id,
                tx_id=req.transfer_tx_id,
                consumer=signer,
                environment=None,  # as the reference's download: no environment, no expiry
                resource="order",
            )
        except ComputeRefused as refused:
            field = "transferTxId" if refused.resource.endswith("transferTxId") else "serviceId"
            raise _rescoped(refused, field) from None

    def _resolve(self, did: str) -> Asset:
        try:
            return self._ddos.resolve(did)
        except ComputeRefused as refused:
            raise _rescoped(refused, "documentId") from None

    def _files(self, asset: Asset, service_id: str) -> list[dict[str, Any]]:
        try:
            return self._ddos.service_files(asset, service_id)
        except ComputeRefused as refused:
            raise _rescoped(refused, "serviceId") from None

    @staticmethod
    def _unavailable(where: str, failed: FetchError) -> FileUnavailable:
        log.info("%s: not fetched: %s", where, failed.reason)
        return FileUnavailable(f"the file could not be fetched: {failed.reason}")


def _service(asset: Asset, service_id: str) -> Mapping[str, Any]:
    service = asset.service(service_id)
    if service is None:
        raise ComputeRefused("serviceId", "not_found")
    return service


def _rescoped(refused: ComputeRefused, resource: str) -> ComputeRefused:
    """The refusal on this route's own parameter; a message of its own is kept."""
    default = refused.message == f"{refused.resource}: {refused.code}"
    return ComputeRefused(resource, refused.code, None if default else refused.message)
