"""Boundaries of the compute service: each a small Protocol the factory wires.

``DdoResolver`` and ``OrderVerifier`` need the chain and DDO sources; until
those land, ``create_app`` wires the ``Unavailable*`` classes below, which
refuse to start jobs with a clear error. Fakes live only in tests.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ocean_provider.errors import OrderVerificationUnavailable
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


class OrderVerifier(Protocol):
    def verify(
        self,
        *,
        asset: Asset,
        service_id: str,
        tx_id: str,
        consumer: str,
        environment: Mapping[str, Any],
    ) -> None:
        """Raise ComputeRefused unless ``tx_id`` is a valid, paid, unused order."""


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
    """What the service needs of an engine; ``OperatorClient`` is the real one."""

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


_PENDING = (
    "starting compute jobs needs on-chain order verification and DDO resolution, "
    "which this Provider build does not have yet"
)


class UnavailableDdoResolver:
    """Production placeholder until DDO resolution lands: refuses, never guesses."""

    def resolve(self, did: str) -> Asset:
        raise OrderVerificationUnavailable(_PENDING)

    def service_files(self, asset: Asset, service_id: str) -> list[dict[str, Any]]:
        raise OrderVerificationUnavailable(_PENDING)


class UnavailableOrderVerifier:
    """Production placeholder until order checks land: refuses, never accepts."""

    def verify(
        self,
        *,
        asset: Asset,
        service_id: str,
        tx_id: str,
        consumer: str,
        environment: Mapping[str, Any],
    ) -> None:
        raise OrderVerificationUnavailable(_PENDING)
