"""DDO compute policy: which services may run which algorithms. Pure functions over DDOs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ocean_provider.compute.interfaces import Asset
from ocean_provider.errors import ComputeRefused


def compute_service(asset: Asset, service_id: str, resource: str) -> Mapping[str, Any]:
    """The dataset's service, which must be a compute service."""
    service = asset.service(service_id)
    if service is None:
        raise ComputeRefused(f"{resource}.serviceId", "not_found")
    if service.get("type") != "compute":
        raise ComputeRefused(f"{resource}.serviceId", "main_service_compute")
    return service


def compute_options(service: Mapping[str, Any]) -> Mapping[str, Any]:
    options = service.get("compute")
    return options if isinstance(options, Mapping) else {}


def check_raw_algorithm_allowed(service: Mapping[str, Any], resource: str) -> None:
    if not compute_options(service).get("allowRawAlgorithm", False):
        raise ComputeRefused(resource, "no_raw_algo_allowed")


def check_published_algorithm_allowed(
    service: Mapping[str, Any], algorithm: Asset, resource: str
) -> None:
    """Empty trusted lists allow every published algorithm (as the reference does)."""
    options = compute_options(service)
    trusted = options.get("publisherTrustedAlgorithms") or []
    if trusted and algorithm.did not in {
        item.get("did") for item in trusted if isinstance(item, Mapping)
    }:
        raise ComputeRefused(resource, "not_trusted_algo")
    publishers = {str(p).lower() for p in options.get("publisherTrustedAlgorithmPublishers") or []}
    if publishers and str(algorithm.ddo.get("nft", {}).get("owner", "")).lower() not in publishers:
        raise ComputeRefused(resource, "not_trusted_algo_publisher")


def check_is_algorithm(algorithm: Asset) -> Mapping[str, Any]:
    """The algorithm DDO's ``metadata.algorithm`` section (container etc.)."""
    if algorithm.metadata.get("type") != "algorithm":
        raise ComputeRefused("algorithm", "not_algo")
    section = algorithm.metadata.get("algorithm")
    container = section.get("container") if isinstance(section, Mapping) else None
    if (
        not isinstance(container, Mapping)
        or not container.get("entrypoint")
        or not container.get("image")
    ):
        raise ComputeRefused("algorithm.container", "missing_entrypoint_image_checksum")
    return section if isinstance(section, Mapping) else {}


def network_allowed(service: Mapping[str, Any]) -> bool:
    return bool(compute_options(service).get("allowNetworkAccess", False))
