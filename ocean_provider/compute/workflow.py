"""Build the workflow the engine receives: the reference's one-stage shape plus our extras.

Each input also carries its ``ddo`` and decrypted ``files`` (our engine needs
them; Ocean's ignores them). Pure: no I/O.
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


def _input_entry(index: int, item: PreparedInput) -> dict[str, Any]:
    remote: dict[str, Any] = {"txId": item.tx_id, "serviceId": item.service_id}
    if item.userdata is not None:
        remote["userdata"] = dict(item.userdata)
    return {
        "index": index,
        "id": item.asset.did,
        "remote": remote,
        "ddo": dict(item.asset.ddo),
        "files": item.files,
        "allowNetworkAccess": item.allow_network,
    }


def _algorithm_entry(algo: PreparedAlgorithm) -> dict[str, Any]:
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
    return {
        "id": algo.asset.did,
        "rawcode": "",
        "container": container,
        "remote": {
            "serviceEndpoint": algo.service_endpoint,
            "txId": algo.tx_id,
            "serviceId": algo.service_id,
            "userData": dict(algo.userdata) if algo.userdata is not None else None,
        },
        "algocustomdata": custom,
        "ddo": dict(algo.asset.ddo),
        "files": algo.files,
    }


def build_workflow(
    *,
    environment: str,
    chain_id: int,
    inputs: Sequence[PreparedInput],
    algorithm: PreparedAlgorithm,
    metadata_uri: str | None,
    valid_until: int = 0,
) -> dict[str, Any]:
    """The POST /api/v1/operator/compute body, minus the signed fields the client adds."""
    stage = {
        "index": 0,
        "input": [_input_entry(i, item) for i, item in enumerate(inputs)],
        "compute": {"Instances": 1, "namespace": environment, "maxtime": DEFAULT_MAXTIME},
        "algorithm": _algorithm_entry(algorithm),
        "output": {"metadataUri": metadata_uri or ""},
    }
    return {
        "workflow": {"stages": [stage], "chainId": chain_id},
        "agreementId": inputs[0].tx_id,
        "environment": environment,
        "validUntil": valid_until,
        "chainId": chain_id,
    }
