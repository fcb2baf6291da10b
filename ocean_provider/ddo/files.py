"""A service's files, decrypted and normalised for the engine, and the algorithm checksums
that ``publisherTrustedAlgorithms`` entries pin.

``services[].files`` is ECIES ciphertext (``0x`` hex) to this Provider's key for the DDO's
chain. DDO version "4.0.0" (or none) encrypts the JSON list of file objects; later versions
encrypt ``{"datatokenAddress", "nftAddress", "files"}``, which binds the files to the
service's datatoken and the DDO's NFT, so they cannot be copied into another asset.

File objects come out as the engine fetches them: ``{"type": "url", "url", "method"}`` plus
``headers`` when given; ``ipfs`` and ``arweave`` files become URLs on the configured
gateways. Decrypted URLs go only to the engine: no error text or log line here names one.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from ocean_provider import bounded_json
from ocean_provider.auth.addresses import checksum_address
from ocean_provider.compute.interfaces import AlgorithmChecksums, Asset
from ocean_provider.ddo.crypto import CryptoFailed, ProviderCipher
from ocean_provider.errors import ComputeRefused
from ocean_provider.fetch.fetcher import FetchPolicy, SafeFetcher
from ocean_provider.fetch.request import FetchError, build_request

log = logging.getLogger(__name__)

# The resource a refusal names; the compute service re-scopes it (datasets[i], algorithm).
SERVICE_RESOURCE = "dataset.serviceId"
NOT_DECRYPTABLE = "compute_services_not_in_same_provider"
MAX_FILES = 64  # per service, as the engine takes per input
CACHED_SERVICES = 1024  # decrypted file lists kept per process
IPFS_PATH = re.compile(r"[A-Za-z0-9]{1,128}(/[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,254})*")
ARWEAVE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


class ServiceFiles:
    """Decrypts services' files with each chain's provider key; hashes algorithm files
    through the SSRF-safe fetcher, each bounded to ``max_checksum_bytes`` and ``timeout``."""

    def __init__(
        self,
        ciphers: Mapping[int, ProviderCipher],
        *,
        ipfs_gateway: str,
        arweave_gateway: str,
        max_checksum_bytes: int = 5 << 20,
        allow_private: bool = False,
        timeout: float = 30.0,
    ) -> None:
        self._ciphers = ciphers
        self._lock = threading.Lock()
        self._decrypted: OrderedDict[tuple[int, str, str, str, str], list[dict[str, Any]]] = (
            OrderedDict()
        )
        self._gateways = {"ipfs": ipfs_gateway.rstrip("/"), "arweave": arweave_gateway.rstrip("/")}
        self._timeout = timeout
        self._fetcher = SafeFetcher(
            FetchPolicy(
                allow_private=allow_private,
                connect_timeout=min(5.0, timeout),
                read_timeout=timeout,
                max_bytes=max_checksum_bytes,
                total_timeout=timeout,
            )
        )

    def service_files(self, asset: Asset, service_id: str) -> list[dict[str, Any]]:
        """The service's file objects, ready for the engine; ``ComputeRefused`` on
        ``SERVICE_RESOURCE`` when this Provider cannot decrypt them or they are unusable."""
        service = asset.service(service_id)
        if service is None:
            raise ComputeRefused(SERVICE_RESOURCE, "not_found")
        # everything the answer depends on: the same ciphertext bound to the same tokens
        key = (
            asset.chain_id,
            str(service.get("files")),
            str(service.get("datatokenAddress")),
            str(asset.ddo.get("nftAddress")),
            str(asset.ddo.get("version")),
        )
        with self._lock:
            cached = self._decrypted.get(key)
            if cached is not None:
                self._decrypted.move_to_end(key)
        if cached is None:  # an ECIES decryption costs about 0.25 ms: once per ciphertext
            plain = self._decrypt(asset, service, service_id)
            files = _bound_files(asset, service, plain)
            if not 0 < len(files) <= MAX_FILES:
                raise _malformed()
            cached = [self._normalise(item) for item in files]
            with self._lock:
                self._decrypted[key] = cached
                if len(self._decrypted) > CACHED_SERVICES:
                    self._decrypted.popitem(last=False)
        return copy.deepcopy(cached)  # callers own their copy

    def algorithm_checksums(self, asset: Asset, service_id: str) -> AlgorithmChecksums:
        """sha256 of each algorithm file, fetched now, and of entrypoint + image checksum."""
        try:
            files = self.service_files(asset, service_id)
            container = _container_checksum(asset)
        except ComputeRefused as refused:
            log.info("algorithm %s: no checksums, its files are %s", asset.did, refused.code)
            raise _unavailable() from None
        deadline = time.monotonic() + self._timeout
        digests = []
        for index, file in enumerate(files):
            if time.monotonic() > deadline:
                log.info("algorithm %s: checksums took longer than %ss", asset.did, self._timeout)
                raise _unavailable()
            try:
                digests.append(self._fetcher.sha256(file))
            except FetchError as failed:  # its reason names no URL, query or header
                log.info("algorithm %s: file %d not hashed: %s", asset.did, index, failed.reason)
                raise _unavailable() from None
        return AlgorithmChecksums(files="".join(digests).lower(), container=container)

    def _decrypt(self, asset: Asset, service: Mapping[str, Any], service_id: str) -> Any:
        cipher = self._ciphers.get(asset.chain_id)
        encrypted = service.get("files")
        try:
            if cipher is None or not isinstance(encrypted, str):
                raise CryptoFailed("no key or no ciphertext")
            plain = cipher.decrypt(bytes.fromhex(encrypted.removeprefix("0x")))
        except (CryptoFailed, ValueError):
            log.info("%s service %s: files not decryptable with this key", asset.did, service_id)
            raise ComputeRefused(
                SERVICE_RESOURCE,
                NOT_DECRYPTABLE,
                "the service's files are not encrypted to this Provider's key for its chain",
            ) from None
        try:
            return bounded_json.loads(plain)
        except ValueError:
            raise _malformed() from None

    def _normalise(self, item: Any) -> dict[str, Any]:
        """One file object as the engine fetches it, checked as the fetcher will check it."""
        if not isinstance(item, Mapping):
            raise _malformed()
        kind = item.get("type")
        if kind == "url":
            url, method = item.get("url"), item.get("method") or "GET"
        elif kind in ("ipfs", "arweave"):
            url, method = self._gateway_url(str(kind), item), "GET"
        else:
            raise ComputeRefused(
                SERVICE_RESOURCE,
                "unsupported_file_type",
                "this Provider fetches url, ipfs and arweave files only",
            )
        file: dict[str, Any] = {"type": "url", "url": url, "method": method}
        if item.get("headers"):
            file["headers"] = item["headers"]
        try:
            request = build_request(file)
        except FetchError:
            raise _malformed() from None
        file["method"] = request.method
        return file

    def _gateway_url(self, kind: str, item: Mapping[str, Any]) -> str:
        gateway = self._gateways[kind]
        if not gateway:
            raise ComputeRefused(
                SERVICE_RESOURCE,
                "unsupported_file_type",
                f"this Provider has no {kind} gateway configured",
            )
        if kind == "ipfs":
            path = item.get("hash")
            if not isinstance(path, str) or not IPFS_PATH.fullmatch(path):
                raise _malformed()
            return f"{gateway}/ipfs/{path}"
        transaction = item.get("transactionId")
        if not isinstance(transaction, str) or not ARWEAVE_ID.fullmatch(transaction):
            raise _malformed()
        return f"{gateway}/{transaction}"


def _bound_files(asset: Asset, service: Mapping[str, Any], plain: Any) -> list[Any]:
    """The file list; for DDOs after 4.0.0, only if bound to this datatoken and NFT."""
    if (asset.ddo.get("version") or "4.0.0") == "4.0.0":
        if not isinstance(plain, list):
            raise _malformed()
        return plain
    if not isinstance(plain, Mapping) or not isinstance(plain.get("files"), list):
        raise _malformed()
    if not _same_address(plain.get("datatokenAddress"), service.get("datatokenAddress")):
        raise ComputeRefused(
            SERVICE_RESOURCE,
            "files_datatoken_mismatch",
            "the service's files were encrypted for another datatoken",
        )
    nft = asset.ddo.get("nftAddress") or _mapping(asset.ddo.get("nft")).get("address")
    if not _same_address(plain.get("nftAddress"), nft):
        raise ComputeRefused(
            SERVICE_RESOURCE,
            "files_nft_mismatch",
            "the service's files were encrypted for another data NFT",
        )
    return list(plain["files"])


def _container_checksum(asset: Asset) -> str:
    """sha256 hex of the algorithm container's ``entrypoint + checksum``."""
    section = _mapping(asset.metadata.get("algorithm"))
    container = _mapping(section.get("container"))
    entrypoint, checksum = container.get("entrypoint"), container.get("checksum")
    if not isinstance(entrypoint, str) or not isinstance(checksum, str):
        raise ComputeRefused("algorithm.container", "missing_entrypoint_image_checksum")
    return hashlib.sha256((entrypoint + checksum).encode("utf-8")).hexdigest()


def _same_address(given: Any, expected: Any) -> bool:
    if not isinstance(given, str) or not isinstance(expected, str):
        return False
    try:
        return checksum_address(given) == checksum_address(expected)
    except ValueError:
        return False


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _malformed() -> ComputeRefused:
    return ComputeRefused(
        SERVICE_RESOURCE, "files_malformed", "the service's decrypted files are not usable"
    )


def _unavailable() -> ComputeRefused:
    return ComputeRefused(
        "algorithm",
        "file_unavailable",
        "the algorithm's files could not be fetched and hashed for its checksums",
    )
