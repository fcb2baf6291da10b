"""Build the workflow the engine receives: the reference's one-stage shape plus our extras.

Each input also carries its ``ddo``, and its decrypted ``files`` when the engine takes them
(``wire.jobs.ACCEPTS_FILES`` in its environment: our local engine). Ocean's Operator-Service
stores the workflow and operator-engine mounts it into the job's pods, where an algorithm
could read it, so an engine that does not say so gets no file URLs: its pods fetch the
files through the Provider's ``download``. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ocean_provider.compute.interfaces import Asset

DEFAULT_MAXTIME = 3600


@dataclass(frozen=True)
class PreparedInput:
    asset: Asset
    service_id: str
    tx_id: str
    files: list[dict[str, Any]]
    userdata: Mapping[str, Any] | None = None
    allow_network: bool = False


@dataclass(frozen=True)
class PreparedAlgorithm:
    container: Mapping[str, Any]
    rawcode: str = ""
    url: str = ""
    asset: Asset | None = None
    service_id: str = ""
    tx_id: str = ""
    service_endpoint: str = ""
    files: list[dict[str, Any]] = field(default_factory=list)
    userdata: Mapping[str, Any] | None = None
    customdata: Mapping[str, Any] | None = None


def _input_entry(index: int, item: PreparedInput, with_files: bool) -> dict[str, Any]:
    remote: dict[str, Any] = {"txId": item.tx_id, "serviceId": item.service_id}
    if item.userdata is not None:
        remote["userdata"] = dict(item.userdata)
    entry: dict[str, Any] = {
        "index": index,
        "id": item.asset.did,
        "remote": remote,
        "ddo": dict(item.asset.ddo),
        "allowNetworkAccess": item.allow_network,
    }
    if with_files:
        entry["files"] = item.files
    return entry


def _algorithm_entry(algo: PreparedAlgorithm, with_files: bool) -> dict[str, Any]:
    container = dict(algo.container)
    custom = dict(algo.customdata) if algo.customdata is not None else None
    if algo.asset is None:
        return {
            "id": "",
            "url": algo.url,
            "rawcode": algo.rawcode,
            "container": container,
            "algocustomdata": custom,
        }
    userdata = dict(algo.userdata) if algo.userdata is not None else None
    remote: dict[str, Any] = {
        "serviceEndpoint": algo.service_endpoint,
        "txId": algo.tx_id,
        "serviceId": algo.service_id,
        "userData": userdata,  # the reference's key
    }
    if userdata is not None:
        remote["algouserdata"] = userdata  # the key pod-configuration reads
    entry: dict[str, Any] = {
        "id": algo.asset.did,
        "rawcode": "",
        "container": container,
        "remote": remote,
        "algocustomdata": custom,
        "ddo": dict(algo.asset.ddo),
    }
    if with_files:
        entry["files"] = algo.files
    return entry


def build_workflow(
    *,
    environment: str,
    chain_id: int,
    inputs: Sequence[PreparedInput],
    algorithm: PreparedAlgorithm,
    metadata_uri: str | None,
    valid_until: int = 0,
    with_files: bool = False,
) -> dict[str, Any]:
    """The POST /api/v1/operator/compute body, minus the signed fields the client adds;
    decrypted files only ``with_files`` (an engine whose environment takes them)."""
    stage = {
        "index": 0,
        "input": [_input_entry(i, item, with_files) for i, item in enumerate(inputs)],
        "compute": {"Instances": 1, "namespace": environment, "maxtime": DEFAULT_MAXTIME},
        "algorithm": _algorithm_entry(algorithm, with_files),
        "output": {"metadataUri": metadata_uri or ""},
    }
    return {
        "workflow": {"stages": [stage], "chainId": chain_id},
        "agreementId": inputs[0].tx_id,
        "environment": environment,
        "validUntil": valid_until,
        "chainId": chain_id,
    }
