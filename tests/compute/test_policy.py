"""The compute policy through ComputeService with fakes: each refusal a row with the
resource and code the reference answers, for a start and for initializeCompute alike."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ocean_provider.auth.addresses import checksum_address
from ocean_provider.auth.order_ledger import SqliteOrderLedger
from ocean_provider.compute.interfaces import AlgorithmChecksums, Asset, AssetFiles
from ocean_provider.compute.requests import InitializeRequest, StartRequest
from ocean_provider.compute.service import ComputeService
from ocean_provider.errors import ComputeRefused
from ocean_provider.wire.jobs import ACCEPTS_FILES, OperatorJob
from tests.conftest import (
    ALGO_CONTAINER,
    ALGO_DID,
    ALGO_OWNER,
    ALGO_TX,
    CHAIN_ID,
    CONSUMER_KEY,
    DATASET_DID,
    TX,
    TX2,
    Consumer,
    FakeDdoResolver,
    FakeFeeIssuer,
    FakeOrderVerifier,
    algo_ddo,
    dataset_ddo,
)

SIGNER = Consumer(CONSUMER_KEY).address
SIGNER_UPPER = "0x" + SIGNER[2:].upper()
OTHER = "0x" + "9" * 40
EXTRA_DID = "did:op:" + "b2" * 32
ENV = "ocean-compute"
FILES_SUM = "ab" * 32 + "cd" * 32  # two files' sha256, as AssetFiles reports them
CONTAINER_SUM = hashlib.sha256(
    (ALGO_CONTAINER["entrypoint"] + ALGO_CONTAINER["checksum"]).encode()
).hexdigest()


class FakeBackend:
    def __init__(self, accepts_files: bool = True) -> None:
        self.started: list[Mapping[str, Any]] = []
        self.accepts_files = accepts_files  # our engine does; Ocean's does not say so

    def environments(self, chain_id: int) -> list[dict[str, Any]]:
        return [{"id": ENV, "priceMin": 0, ACCEPTS_FILES: self.accepts_files}]

    def start(self, owner: str, payload: Mapping[str, Any]) -> list[OperatorJob]:
        self.started.append(payload)
        return [OperatorJob(jobId="job1", owner=owner, status=1)]


class FilesOf(FakeDdoResolver):
    """Decrypts every service's files except those it is told this Provider cannot."""

    def __init__(self, ddos: Mapping[str, dict[str, Any]]) -> None:
        super().__init__(ddos)
        self.undecryptable: set[tuple[str, str]] = set()

    def service_files(self, asset: Asset, service_id: str) -> list[dict[str, Any]]:
        if (asset.did, service_id) in self.undecryptable:
            raise ComputeRefused("dataset.serviceId", "compute_services_not_in_same_provider")
        return super().service_files(asset, service_id)


class FakeChecksums:
    def __init__(self) -> None:
        self.calls = 0
        self.fails = False

    def algorithm_checksums(self, asset: Asset, service_id: str) -> AlgorithmChecksums:
        self.calls += 1
        if self.fails:
            raise ComputeRefused("algorithm", "file_unavailable")
        return AlgorithmChecksums(files=FILES_SUM, container=CONTAINER_SUM)


@dataclass
class World:
    """What one request meets: the DDOs, the request's items, the Provider's parts."""

    ddos: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            DATASET_DID: dataset_ddo(trusted=[ALGO_DID]),
            EXTRA_DID: {**dataset_ddo(trusted=[ALGO_DID]), "id": EXTRA_DID},
            ALGO_DID: algo_ddo(),
        }
    )
    dataset: dict[str, Any] = field(
        default_factory=lambda: {
            "documentId": DATASET_DID,
            "serviceId": "compute-1",
            "transferTxId": TX,
        }
    )
    extra: dict[str, Any] = field(
        default_factory=lambda: {
            "documentId": EXTRA_DID,
            "serviceId": "access-1",
            "transferTxId": TX2,
        }
    )
    algorithm: dict[str, Any] = field(
        default_factory=lambda: {
            "documentId": ALGO_DID,
            "serviceId": "access-a",
            "transferTxId": ALGO_TX,
        }
    )
    undecryptable: set[tuple[str, str]] = field(default_factory=set)
    files: FakeChecksums | None = field(default_factory=FakeChecksums)

    @property
    def main(self) -> dict[str, Any]:
        return self.ddos[DATASET_DID]

    @property
    def algo(self) -> dict[str, Any]:
        return self.ddos[ALGO_DID]

    def compute(self, did: str = DATASET_DID) -> dict[str, Any]:
        options: dict[str, Any] = self.ddos[did]["services"][0]["compute"]
        return options

    def raw(self, **container: str) -> None:
        self.algorithm = {
            "meta": {"rawcode": "print(1)", "container": {**ALGO_CONTAINER, **container}}
        }


def service(
    world: World,
    tmp_path: Path,
    orders: FakeOrderVerifier | None = None,
    backend: FakeBackend | None = None,
) -> tuple[ComputeService, FakeBackend]:
    resolver = FilesOf(world.ddos)
    resolver.undecryptable = world.undecryptable
    backend = backend or FakeBackend()
    files: AssetFiles | None = world.files
    compute = ComputeService(
        backend,  # type: ignore[arg-type]  # only environments() and start() are used here
        resolver,
        orders or FakeOrderVerifier(),
        FakeFeeIssuer(),
        SqliteOrderLedger(tmp_path / "orders.db"),
        chain_ids=[CHAIN_ID],
        fee_tokens={},
        consumer_addresses={},
        metadata_uri=None,
        files=files,
    )
    return compute, backend


def start(world: World, tmp_path: Path, backend: FakeBackend | None = None) -> FakeBackend:
    compute, backend = service(world, tmp_path, backend=backend)
    request = StartRequest.model_validate(
        {
            "consumerAddress": SIGNER,
            "nonce": "1",
            "environment": ENV,
            "dataset": world.dataset,
            "additionalDatasets": [world.extra],
            "algorithm": world.algorithm,
        }
    )
    compute.start(SIGNER, request)
    return backend


def initialize(world: World, tmp_path: Path) -> FakeBackend:
    compute, backend = service(world, tmp_path)
    request = InitializeRequest.model_validate(
        {
            "consumerAddress": SIGNER,
            "datasets": [world.dataset, world.extra],
            "algorithm": world.algorithm,
            "compute": {"env": ENV, "validUntil": 2**40},
        }
    )
    reply = compute.initialize(request)
    assert len(reply["datasets"]) == 2
    return backend


Change = Callable[[World], Any]


def _set(target: Callable[[World], dict[str, Any]], key: str, value: Any) -> Change:
    return lambda w: target(w).__setitem__(key, value)


def container(world: World) -> dict[str, Any]:
    section: dict[str, Any] = world.algo["metadata"]["algorithm"]["container"]
    return section


def _pin(**entry: Any) -> Change:
    return lambda w: w.compute().__setitem__(
        "publisherTrustedAlgorithms", [{"did": ALGO_DID, **entry}]
    )


def _extra_compute(w: World) -> None:
    w.extra["serviceId"] = "compute-1"


def _all(*changes: Change) -> Change:
    def each(w: World) -> None:
        for change in changes:
            change(w)

    return each


def _no_hashing(w: World) -> None:
    w.files = None


def _hashing_fails(w: World) -> None:
    assert w.files is not None
    w.files.fails = True


REFUSALS: list[tuple[str, Change, str, str]] = [
    # resolving and finding services
    ("unknown dataset", _set(lambda w: w.dataset, "documentId", "did:op:nope"),
     "dataset.documentId", "did_not_found"),
    ("unknown extra dataset", _set(lambda w: w.extra, "documentId", "did:op:nope"),
     "datasets[1].documentId", "did_not_found"),
    ("unknown algorithm", _set(lambda w: w.algorithm, "documentId", "did:op:nope"),
     "algorithm", "did_not_found"),
    ("unknown service", _set(lambda w: w.dataset, "serviceId", "nope"),
     "dataset.serviceId", "not_found"),
    ("unknown extra service", _set(lambda w: w.extra, "serviceId", "nope"),
     "datasets[1].serviceId", "not_found"),
    # state (section 3.2)
    ("no data NFT", lambda w: w.main.pop("nft"), "dataset", "asset_malformed"),
    ("no metadata", lambda w: w.main.pop("metadata"), "dataset", "asset_malformed"),
    ("no state", lambda w: w.main["nft"].pop("state"), "dataset", "asset_not_consumable"),
    ("end of life", _set(lambda w: w.main["nft"], "state", 1), "dataset", "asset_not_consumable"),
    ("deprecated", _set(lambda w: w.main["nft"], "state", 2), "dataset", "asset_not_consumable"),
    ("revoked", _set(lambda w: w.main["nft"], "state", 3), "dataset", "asset_not_consumable"),
    ("disabled", _set(lambda w: w.main["nft"], "state", 4), "dataset", "asset_not_consumable"),
    ("state as text", _set(lambda w: w.main["nft"], "state", "0"),
     "dataset", "asset_not_consumable"),
    ("state true", _set(lambda w: w.main["nft"], "state", True), "dataset", "asset_not_consumable"),
    ("extra disabled", _set(lambda w: w.ddos[EXTRA_DID]["nft"], "state", 4),
     "datasets[1]", "asset_not_consumable"),
    # credentials
    ("not allowed", _set(lambda w: w.main, "credentials",
                         {"allow": [{"type": "address", "values": [OTHER]}]}),
     "dataset", "credential_not_in_allow_list"),
    ("denied", _set(lambda w: w.main, "credentials",
                    {"deny": [{"type": "address", "values": [SIGNER_UPPER]}]}),
     "dataset", "credential_in_deny_list"),
    ("extra denied", _set(lambda w: w.ddos[EXTRA_DID], "credentials",
                          {"deny": [{"type": "address", "values": [SIGNER.lower()]}]}),
     "datasets[1]", "credential_in_deny_list"),
    ("credentials not an object", _set(lambda w: w.main, "credentials", ["x"]),
     "dataset", "credentials_malformed"),
    ("address values not a list", _set(lambda w: w.main, "credentials",
                                       {"allow": [{"type": "address", "values": SIGNER}]}),
     "dataset", "credentials_malformed"),
    # service types
    ("main is access", _set(lambda w: w.dataset, "serviceId", "access-1"),
     "dataset.serviceId", "main_service_compute"),
    ("extra is neither", _set(lambda w: w.ddos[EXTRA_DID]["services"][1], "type", "download"),
     "datasets[1].serviceId", "service_not_access_compute"),
    ("main is neither", _set(lambda w: w.main["services"][0], "type", "download"),
     "dataset.serviceId", "service_not_access_compute"),
    # files this Provider cannot decrypt
    ("main files elsewhere", lambda w: w.undecryptable.add((DATASET_DID, "compute-1")),
     "dataset.serviceId", "compute_services_not_in_same_provider"),
    ("extra files elsewhere", lambda w: w.undecryptable.add((EXTRA_DID, "access-1")),
     "datasets[1].serviceId", "compute_services_not_in_same_provider"),
    ("algorithm files elsewhere", lambda w: w.undecryptable.add((ALGO_DID, "access-a")),
     "algorithm", "compute_services_not_in_same_provider"),
    # raw algorithms
    ("raw not allowed", _all(World.raw, _set(World.compute, "allowRawAlgorithm", False)),
     "dataset", "no_raw_algo_allowed"),
    ("raw allowed by omission", _all(World.raw, lambda w: w.compute().pop("allowRawAlgorithm")),
     "dataset", "no_raw_algo_allowed"),
    ("raw, extra compute says no",
     _all(_extra_compute, World.raw,
          _set(lambda w: w.compute(EXTRA_DID), "allowRawAlgorithm", False)),
     "datasets[1]", "no_raw_algo_allowed"),
    ("raw checksum without prefix", lambda w: w.raw(checksum="md5:00"),
     "algorithm.container", "checksum_prefix"),
    # trusted algorithms and publishers
    ("not trusted",
     _set(lambda w: w.compute(), "publisherTrustedAlgorithms", [{"did": "did:op:x"}]),
     "dataset", "not_trusted_algo"),
    ("extra compute trusts another",
     _all(_extra_compute, _set(lambda w: w.compute(EXTRA_DID), "publisherTrustedAlgorithms",
                               [{"did": "did:op:x"}])),
     "datasets[1]", "not_trusted_algo"),
    ("an entry without did", _set(lambda w: w.compute(), "publisherTrustedAlgorithms",
                                  [{"did": ALGO_DID}, {"filesChecksum": "ab"}]),
     "dataset", "no_publisherTrustedAlgorithms"),
    ("untrusted publisher", _set(lambda w: w.compute(), "publisherTrustedAlgorithmPublishers",
                                 [OTHER]),
     "dataset", "not_trusted_algo_publisher"),
    ("publisher without owner",
     _all(_set(World.compute, "publisherTrustedAlgorithmPublishers", [ALGO_OWNER]),
          lambda w: w.algo["nft"].pop("owner")),
     "dataset", "not_trusted_algo_publisher"),
    ("files changed", _pin(filesChecksum="ef" * 64), "dataset", "algorithm_file_checksum_mismatch"),
    ("container changed", _pin(containerSectionChecksum="00" * 32),
     "dataset", "algorithm_container_checksum_mismatch"),
    ("pinned, no way to hash", _all(_pin(filesChecksum=FILES_SUM), _no_hashing),
     "algorithm", "file_unavailable"),
    ("pinned, files unavailable",
     _all(_pin(containerSectionChecksum=CONTAINER_SUM), _hashing_fails),
     "algorithm", "file_unavailable"),
    # the algorithm DDO
    ("not an algorithm", _set(lambda w: w.algo["metadata"], "type", "dataset"),
     "algorithm", "not_algo"),
    ("no container checksum", lambda w: container(w).pop("checksum"),
     "algorithm.container", "missing_entrypoint_image_checksum"),
    ("no image", _set(lambda w: container(w), "image", ""),
     "algorithm.container", "missing_entrypoint_image_checksum"),
    ("no container", _set(lambda w: w.algo["metadata"], "algorithm", {}),
     "algorithm.container", "missing_entrypoint_image_checksum"),
    ("checksum without prefix",
     _set(lambda w: container(w), "checksum", "0" * 64),
     "algorithm.container", "checksum_prefix"),
    ("unknown algorithm service", _set(lambda w: w.algorithm, "serviceId", "nope"),
     "algorithm.serviceId", "not_found"),
    ("algorithm service neither", _set(lambda w: w.algo["services"][0], "type", "download"),
     "algorithm.serviceId", "service_not_access_compute"),
    ("algorithm denied", _set(lambda w: w.algo, "credentials",
                              {"allow": [{"type": "address", "values": [OTHER]}]}),
     "algorithm.credentials", "credential_not_in_allow_list"),
    ("algorithm disabled", _set(lambda w: w.algo["nft"], "state", 4),
     "algorithm.credentials", "asset_not_consumable"),
]  # fmt: skip

ALLOWED: list[tuple[str, Change]] = [
    ("as built", lambda w: None),
    ("unlisted", _set(lambda w: w.main["nft"], "state", 5)),
    ("allowed in any case", _set(lambda w: w.main, "credentials",
                                 {"allow": [{"type": "address", "values": [SIGNER.lower()]}],
                                  "deny": [{"type": "address", "values": [SIGNER]}]})),
    ("other credential types", _set(lambda w: w.main, "credentials",
                                    {"allow": [{"type": "email", "values": ["a@b.c"]}]})),
    ("raw, extra is access", lambda w: w.raw()),
    ("raw without checksum", lambda w: w.raw(checksum="")),
    ("no trusted lists", lambda w: w.compute().pop("publisherTrustedAlgorithms")),
    ("publisher compared checksummed",
     _all(_set(lambda w: w.algo["nft"], "owner", "0x" + "ab" * 20),
          _set(World.compute, "publisherTrustedAlgorithmPublishers",
               [checksum_address("0x" + "ab" * 20)]))),
    ("pinned and matching", _pin(filesChecksum=FILES_SUM.upper(),
                                 containerSectionChecksum=CONTAINER_SUM)),
    ("extra compute trusts it too", _extra_compute),
]  # fmt: skip


@pytest.mark.parametrize("method", [start, initialize], ids=["start", "initialize"])
@pytest.mark.parametrize(
    ("change", "resource", "code"),
    [pytest.param(c, r, code, id=name) for name, c, r, code in REFUSALS],
)
def test_refusals(
    tmp_path: Path,
    method: Callable[[World, Path], FakeBackend],
    change: Change,
    resource: str,
    code: str,
) -> None:
    world = World()
    change(world)
    with pytest.raises(ComputeRefused) as refused:
        method(world, tmp_path)
    assert (refused.value.resource, refused.value.code) == (resource, code)
    assert refused.value.body()["error"] == {resource: code}


@pytest.mark.parametrize("method", [start, initialize], ids=["start", "initialize"])
@pytest.mark.parametrize("change", [pytest.param(c, id=name) for name, c in ALLOWED])
def test_allowed(
    tmp_path: Path, method: Callable[[World, Path], FakeBackend], change: Change
) -> None:
    world = World()
    change(world)
    backend = method(world, tmp_path)
    assert len(backend.started) == (1 if method is start else 0)


def test_checksums_are_fetched_once_and_only_when_pinned(tmp_path: Path) -> None:
    world = World()
    start(world, tmp_path / "a")
    assert world.files is not None and world.files.calls == 0
    pinned = World()
    _extra_compute(pinned)
    for did in (DATASET_DID, EXTRA_DID):
        pinned.compute(did)["publisherTrustedAlgorithms"] = [
            {"did": ALGO_DID, "filesChecksum": FILES_SUM, "containerSectionChecksum": CONTAINER_SUM}
        ]
    start(pinned, tmp_path / "b")
    assert pinned.files is not None and pinned.files.calls == 1


def test_a_refused_start_reaches_no_engine_and_no_order(tmp_path: Path) -> None:
    world = World()
    world.ddos[EXTRA_DID]["nft"]["state"] = 4
    orders = FakeOrderVerifier()
    compute, backend = service(world, tmp_path, orders)
    request = StartRequest.model_validate(
        {
            "consumerAddress": SIGNER,
            "nonce": "1",
            "environment": ENV,
            "dataset": world.dataset,
            "additionalDatasets": [world.extra],
            "algorithm": world.algorithm,
        }
    )
    with pytest.raises(ComputeRefused):
        compute.start(SIGNER, request)
    assert backend.started == [] and orders.calls == [TX]  # the main input's, checked first


def test_the_workflow_carries_the_decrypted_files_and_the_algorithm(tmp_path: Path) -> None:
    world = World()
    _extra_compute(world)
    (payload,) = start(world, tmp_path).started
    stage = payload["workflow"]["stages"][0]
    assert [i["files"][0]["url"] for i in stage["input"]] == [
        "http://files.test/compute-1.csv",
        "http://files.test/compute-1.csv",
    ]
    assert stage["algorithm"]["id"] == ALGO_DID
    assert stage["algorithm"]["container"] == ALGO_CONTAINER
    assert stage["algorithm"]["files"][0]["url"] == "http://files.test/access-a.csv"


@pytest.mark.parametrize("key", ["userdata", "algouserdata"])  # ocean.js, the reference
def test_the_algorithms_userdata_reaches_pod_configuration(tmp_path: Path, key: str) -> None:
    """The reference's workflow names it ``remote.userData``, which pod-configuration never
    reads; it reads ``remote.algouserdata``. Both are sent."""
    world = World()
    _extra_compute(world)
    world.algorithm[key] = {"token": "abc"}
    (payload,) = start(world, tmp_path).started
    remote = payload["workflow"]["stages"][0]["algorithm"]["remote"]
    assert remote["userData"] == remote["algouserdata"] == {"token": "abc"}


def test_an_engine_that_does_not_take_files_gets_no_file_url(tmp_path: Path) -> None:
    """Ocean's Operator-Service stores the workflow and mounts it into the job's pods: its
    inputs carry their DID, order and service only, and pod-configuration downloads."""
    world = World()
    _extra_compute(world)
    (payload,) = start(world, tmp_path, FakeBackend(accepts_files=False)).started
    stage = payload["workflow"]["stages"][0]
    assert "files.test" not in json.dumps(payload)
    assert [sorted(i) for i in stage["input"]] == [
        ["allowNetworkAccess", "ddo", "id", "index", "remote"]
    ] * 2
    assert [i["remote"]["txId"] for i in stage["input"]] == [TX, TX2]
    assert "files" not in stage["algorithm"] and stage["algorithm"]["id"] == ALGO_DID
