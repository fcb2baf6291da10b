"""Boundaries of the compute service: each a small Protocol the factory wires.

``OrderVerifier`` and ``FeeIssuer`` are the chain's (``ocean_provider.chain``),
``DdoResolver``, ``AssetFiles`` and ``Documents`` the assets' (``ocean_provider.ddo``).
Without a DDO source in the settings, ``create_app`` wires ``UnavailableDdoResolver``,
which refuses to start jobs with a clear error. Fakes live only in tests.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ocean_provider.errors import DdoSourceMissing
from ocean_provider.wire.jobs import OperatorJob


@dataclass(frozen=True)
class Asset:
    """A resolved DDO."""

    did: str
    chain_id: int
    ddo: Mapping[str, Any]

    def service(self, service_id: str) -> Mapping[str, Any] | None:
        for service in self.ddo.get("services", []) or []:
            if isinstance(service, Mapping) and service.get("id") == service_id:
                return service
        return None

    @property
    def metadata(self) -> Mapping[str, Any]:
        value = self.ddo.get("metadata")
        return value if isinstance(value, Mapping) else {}


class DdoResolver(Protocol):
    def resolve(self, did: str) -> Asset:
        """The asset's DDO; raise ComputeRefused(resource, "did_not_found") if unknown."""

    def service_files(self, asset: Asset, service_id: str) -> list[dict[str, Any]]:
        """The service's decrypted file objects."""


@dataclass(frozen=True)
class AlgorithmChecksums:
    """What ``publisherTrustedAlgorithms`` entries pin: sha256 hex of each of the
    algorithm's files, concatenated, and sha256 hex of entrypoint + container checksum."""

    files: str
    container: str


class AssetFiles(Protocol):
    def algorithm_checksums(self, asset: Asset, service_id: str) -> AlgorithmChecksums:
        """Fetch the algorithm's files (SSRF-safe, bounded) and hash them; raise
        ComputeRefused("algorithm", "file_unavailable") when that cannot be done."""


class Documents(Protocol):
    """``POST /encrypt`` and ``POST /decrypt``: ECIES to and from this Provider's key."""

    def encrypt(self, chain_id: int, plain: bytes) -> str:
        """``0x`` hex of the ciphertext for the chain's provider key."""

    def decrypt(self, signer: str, request: Any) -> bytes:
        """The plain document, after every check of the reference's decrypt route."""


@dataclass(frozen=True)
class VerifiedOrder:
    """An order that passed every check, with the provider fee it paid."""

    chain_id: int
    tx_id: str  # as the consumer named it: the key that makes it start one job only
    order_tx_id: str  # the startOrder transaction (tx_id itself, unless tx_id reused it)
    fee_token: str
    fee_amount: int
    valid_until: int
    consumer: str = ""  # the order's consumer (checksummed): who the datatoken was spent for


class OrderVerifier(Protocol):
    def verify(
        self,
        *,
        asset: Asset,
        service_id: str,
        tx_id: str,
        consumer: str,
        environment: Mapping[str, Any] | None,
        resource: str,
        allow_expired_fee: bool = False,
    ) -> VerifiedOrder:
        """Raise ComputeRefused(resource..., code) unless ``tx_id`` is a valid, paid order
        for this service; with an ``environment``, its provider fee must be for that
        environment and (unless ``allow_expired_fee``) not expired."""

    def check_fees(
        self, chain_id: int, orders: list[VerifiedOrder], environment: Mapping[str, Any]
    ) -> None:
        """Raise ComputeRefused("order", "fees_not_paid") unless one order's provider fee
        covers the environment's price up to the latest ``validUntil`` of ``orders``."""


class FeeIssuer(Protocol):
    def issue(
        self,
        *,
        chain_id: int,
        datatoken: str,
        service_id: str,
        environment: Mapping[str, Any],
        valid_until: int,
        charge: bool,
    ) -> dict[str, Any]:
        """A signed ``providerFee`` object for ordering this service (zero unless ``charge``)."""


class ResultStream(Protocol):
    """An engine's open reply to a result download (200 or 206): stream ``chunks()`` once."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def filename(self) -> str | None: ...

    def chunks(self) -> Iterator[bytes]: ...

    def close(self) -> None: ...


class ComputeBackend(Protocol):
    """What the service needs of an engine; ``OperatorClient`` is the real one, and
    ``EngineRouter`` puts several behind one. An environment that carries
    ``"reachable": false`` (its engine is down) is listed, but neither priced nor started."""

    def start(self, owner: str, payload: Mapping[str, Any]) -> list[OperatorJob]: ...

    def status(
        self, owner: str, job_id: str | None = None, document_id: str | None = None
    ) -> list[OperatorJob]: ...

    def stop(
        self, owner: str, job_id: str | None, document_id: str | None
    ) -> list[OperatorJob]: ...

    def delete(
        self, owner: str, job_id: str | None, document_id: str | None
    ) -> list[OperatorJob]: ...

    def environments(self, chain_id: int) -> list[dict[str, Any]]: ...

    def result(
        self, owner: str, job_id: str, index: int, range_header: str | None
    ) -> ResultStream: ...


class UnavailableDdoResolver:
    """Wired when no DDO source is configured: refuses, never guesses."""

    def __init__(self, reason: str) -> None:
        self._reason = reason

    def resolve(self, did: str) -> Asset:
        raise self._refusal()

    def service_files(self, asset: Asset, service_id: str) -> list[dict[str, Any]]:
        raise self._refusal()

    def _refusal(self) -> DdoSourceMissing:
        return DdoSourceMissing(
            f"this Provider cannot resolve DDOs ({self._reason}), so it cannot start jobs"
        )
