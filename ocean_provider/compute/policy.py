"""DDO compute policy: who may use an asset, which services are inputs, which algorithms a
compute service runs (reference sections 3.2, 3.4 and 3.5).

Pure functions over DDOs. Each refusal is ``ComputeRefused(resource, code)`` with the
reference's resource names (``dataset``, ``datasets[i]``, ``algorithm``,
``algorithm.container``, ``algorithm.serviceId``, ``algorithm.credentials``) and codes.
Where the reference answers a sentence instead of a code (an asset's state, credentials),
the code is a stable name for that sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ocean_provider.auth.addresses import checksum_address
from ocean_provider.compute.interfaces import AlgorithmChecksums, Asset
from ocean_provider.errors import ComputeRefused

CONSUMABLE_STATES = (0, 5)  # the data NFT's metadata state: active, unlisted
INPUT_TYPES = ("access", "compute")


@dataclass(frozen=True)
class PublishedAlgorithm:
    """A published algorithm past the checks that need no dataset; ``checksums`` fetches
    its files at most once per request, and only if a dataset pins a checksum."""

    asset: Asset
    service_id: str
    service: Mapping[str, Any]
    container: Mapping[str, Any]
    files: list[dict[str, Any]]
    checksums: Callable[[], AlgorithmChecksums]


def input_resource(index: int) -> str:
    """``dataset`` for the main input, ``datasets[i]`` for additional ones."""
    return "dataset" if index == 0 else f"datasets[{index}]"


def find_service(asset: Asset, service_id: str, resource: str) -> Mapping[str, Any]:
    service = asset.service(service_id)
    if service is None:
        raise ComputeRefused(f"{resource}.serviceId", "not_found")
    return service


def check_input_service(service: Mapping[str, Any], resource: str, *, main: bool) -> None:
    """Inputs are access or compute services; the main one must be compute."""
    if service.get("type") not in INPUT_TYPES:
        raise ComputeRefused(f"{resource}.serviceId", "service_not_access_compute")
    if main and service.get("type") != "compute":
        raise ComputeRefused(f"{resource}.serviceId", "main_service_compute")


def check_consumable(asset: Asset, address: str, resource: str) -> None:
    """The asset is published (data NFT, chain), active or unlisted, and ``address`` passes
    its address credentials: in the allow list if there is one, else not in the deny list."""
    check_state(asset, resource)
    allowed = _credential_addresses(asset, "allow", resource)
    denied = _credential_addresses(asset, "deny", resource)
    who = address.lower()
    if allowed and who not in allowed:
        raise ComputeRefused(
            resource,
            "credential_not_in_allow_list",
            f"Error: Access to asset {asset.did} was denied with code: "
            "ConsumableCodes.CREDENTIAL_NOT_IN_ALLOW_LIST.",
        )
    if not allowed and who in denied:
        raise ComputeRefused(
            resource,
            "credential_in_deny_list",
            f"Error: Access to asset {asset.did} was denied with code: "
            "ConsumableCodes.CREDENTIAL_IN_DENY_LIST.",
        )


def check_state(asset: Asset, resource: str) -> None:
    """The asset is published (data NFT, chain) and active or unlisted."""
    nft = _mapping(asset.ddo.get("nft"))
    if not nft.get("address") or not asset.chain_id or not asset.metadata:
        raise ComputeRefused(resource, "asset_malformed", "Asset malformed or disabled.")
    state = nft.get("state")
    if isinstance(state, bool) or state not in CONSUMABLE_STATES:
        raise ComputeRefused(resource, "asset_not_consumable", "Asset is not consumable.")


def _credential_addresses(asset: Asset, access_class: str, resource: str) -> set[str]:
    """Lowercased ``values`` of the ``type: "address"`` entries of ``credentials[class]``;
    a malformed credentials section refuses rather than allows."""
    credentials = asset.ddo.get("credentials")
    if credentials is None:
        return set()
    if not isinstance(credentials, Mapping):
        raise ComputeRefused(resource, "credentials_malformed")
    entries = credentials.get(access_class)
    if entries is None:
        return set()
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise ComputeRefused(resource, "credentials_malformed")
    addresses: set[str] = set()
    for entry in entries:
        if entry.get("type") != "address":
            continue
        values = entry.get("values")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ComputeRefused(resource, "credentials_malformed")
        addresses.update(value.lower() for value in values)
    return addresses


def compute_options(service: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(service.get("compute"))


def network_allowed(service: Mapping[str, Any]) -> bool:
    return bool(compute_options(service).get("allowNetworkAccess", False))


def check_algorithm_allowed(
    service: Mapping[str, Any], algorithm: PublishedAlgorithm | None, resource: str
) -> None:
    """A compute service runs the request's algorithm: a raw one (None) only with
    ``allowRawAlgorithm``, a published one if trusted. Access services run none."""
    if service.get("type") != "compute":
        return
    if algorithm is None:
        check_raw_algorithm_allowed(service, resource)
    else:
        check_published_algorithm_allowed(service, algorithm.asset, algorithm.checksums, resource)


def check_raw_algorithm_allowed(service: Mapping[str, Any], resource: str) -> None:
    if compute_options(service).get("allowRawAlgorithm", False) is not True:
        raise ComputeRefused(resource, "no_raw_algo_allowed")


def check_published_algorithm_allowed(
    service: Mapping[str, Any],
    algorithm: Asset,
    checksums: Callable[[], AlgorithmChecksums],
    resource: str,
) -> None:
    """Empty trusted lists allow every published algorithm (as the reference does). A
    trusted publisher is compared checksummed (the reference compares case-sensitively).
    ``checksums`` is called only when the algorithm's entry pins one."""
    options = compute_options(service)
    trusted = options.get("publisherTrustedAlgorithms") or []
    publishers = options.get("publisherTrustedAlgorithmPublishers") or []
    if publishers:
        owner = _checksummed(_mapping(algorithm.ddo.get("nft")).get("owner"))
        allowed = {_checksummed(p) for p in publishers} if isinstance(publishers, list) else set()
        if owner is None or owner not in allowed:
            raise ComputeRefused(resource, "not_trusted_algo_publisher")
    if not trusted:
        return
    if not isinstance(trusted, list) or not all(
        isinstance(entry, Mapping) and "did" in entry for entry in trusted
    ):
        raise ComputeRefused(resource, "no_publisherTrustedAlgorithms")
    entry = next((e for e in trusted if e["did"] == algorithm.did), None)
    if entry is None:
        raise ComputeRefused(resource, "not_trusted_algo")
    pinned_files = entry.get("filesChecksum")
    if pinned_files and not _same_hex(pinned_files, checksums().files):
        raise ComputeRefused(resource, "algorithm_file_checksum_mismatch")
    pinned_container = entry.get("containerSectionChecksum")
    if pinned_container and not _same_hex(pinned_container, checksums().container):
        raise ComputeRefused(resource, "algorithm_container_checksum_mismatch")


def check_algorithm_asset(algorithm: Asset) -> Mapping[str, Any]:
    """An algorithm DDO with a valid container; returns ``metadata.algorithm.container``."""
    if algorithm.metadata.get("type") != "algorithm":
        raise ComputeRefused("algorithm", "not_algo")
    container = _mapping(_mapping(algorithm.metadata.get("algorithm")).get("container"))
    check_container(container, require_checksum=True)
    return container


def check_container(container: Mapping[str, Any], *, require_checksum: bool) -> None:
    """``entrypoint``, ``image`` and (for published algorithms) ``checksum`` are set, and
    a checksum is a ``sha256:`` digest. A raw algorithm may omit the checksum."""
    required = ("entrypoint", "image", "checksum") if require_checksum else ("entrypoint", "image")
    if not all(isinstance(container.get(k), str) and container.get(k) for k in required):
        raise ComputeRefused("algorithm.container", "missing_entrypoint_image_checksum")
    checksum = container.get("checksum")
    if checksum and not (isinstance(checksum, str) and checksum.startswith("sha256:")):
        raise ComputeRefused("algorithm.container", "checksum_prefix")


def algorithm_service(algorithm: Asset, service_id: str) -> Mapping[str, Any]:
    """The algorithm's service: an access or a compute service."""
    service = algorithm.service(service_id)
    if service is None:
        raise ComputeRefused("algorithm.serviceId", "not_found")
    if service.get("type") not in INPUT_TYPES:
        raise ComputeRefused("algorithm.serviceId", "service_not_access_compute")
    return service


def _same_hex(pinned: Any, computed: str) -> bool:
    return isinstance(pinned, str) and pinned.lower() == computed.lower()


def _checksummed(address: Any) -> str | None:
    if not isinstance(address, str):
        return None
    try:
        return checksum_address(address)
    except ValueError:
        return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
