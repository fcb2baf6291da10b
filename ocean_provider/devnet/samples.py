"""What the dev node offers a newcomer: Ocean's contracts, consumers funded with OCEAN, a
compute environment, and the samples: two small CSV datasets, each with a compute service,
and a sample Python algorithm both trust, published by DID (files encrypted through the
running Provider, as clients do), with datatokens minted to each consumer.

What was published is recorded in ``dev.json`` (``Sample``); a start on the same chain and
URLs reuses it. A record written before the second dataset existed gets that dataset
published now, the rest kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3

from ocean_provider.devnet.assets import (
    SAMPLE_CONTAINER,
    PublishedAsset,
    algorithm_ddo,
    dataset_ddo,
    endpoint_encrypt,
    mint,
    publish_asset,
    transfer_ocean,
    trusted_algorithm,
    url_file,
)
from ocean_provider.devnet.contracts import (
    Deployment,
    deploy,
    read_address_file,
    write_address_file,
)

TOKEN = 10**18  # one OCEAN or one datatoken, in wei
OCEAN_EACH = 1000 * TOKEN  # to each consumer
DATATOKENS_EACH = 10 * TOKEN  # of each sample asset, to each consumer
DEV_ENVIRONMENT = {  # the engine's one environment, where the samples run
    "id": "ocean-compute",
    "desc": "Local sandboxed engine (bubblewrap), free",
    "cpuType": "x86_64",
    "nCPU": 1,
    "ramGB": 1,
    "diskGB": 2,
    "priceMin": 0,
    "maxJobs": 2,
    "maxJobDuration": 600,
    "storageExpiry": 86400,
    "maxProcesses": 64,
    "maxOutputMB": 512,
    "maxQueueSeconds": 3600,
    "free": True,
}
DATASET_FILE = "squares.csv"
SECOND_DATASET_FILE = "more_squares.csv"
ALGORITHM_FILE = "sum_squares.py"
SAMPLE_CSV = "n,square\n" + "".join(f"{n},{n * n}\n" for n in range(1, 101))
SECOND_CSV = "n,square\n" + "".join(f"{n},{n * n}\n" for n in range(101, 201))
# Each sample dataset: its DDO's name, its datatoken's symbol and the file it serves.
DATASETS = {
    "first": ("Squares", "SQR", DATASET_FILE),
    "second": ("More squares", "SQR2", SECOND_DATASET_FILE),
}
SAMPLE_ALGORITHM = b"""\
import csv, json, os, pathlib
did = json.loads(os.environ["DIDS"])[0]
with open(pathlib.Path("/data/inputs") / did / "0", newline="") as rows:
    squares = [int(row["square"]) for row in csv.DictReader(rows)]
pathlib.Path("/data/outputs/result.json").write_text(json.dumps({"sum": sum(squares)}))
print("summed", len(squares), "squares")
"""

Say = Callable[[str], None]


def contracts(
    w3: Web3, address_file: Path, publisher_key: str, consumers: Sequence[str], say: Say
) -> tuple[Deployment, bool]:
    """The contracts ``address_file`` names if the chain still holds them, else Ocean's
    contracts deployed now from ``publisher_key`` (recorded there) and ``OCEAN_EACH`` sent to
    each of ``consumers`` (addresses); and whether they were reused."""
    if address_file.exists():
        deployment = read_address_file(address_file)
        if w3.eth.get_code(deployment.factory):
            say(f"reusing the chain in {address_file.parent}")
            return deployment, True
        say("the saved chain is gone: deploying afresh")
    else:
        say("deploying Ocean's contracts")
    deployment = deploy(w3, publisher_key)
    for address in consumers:
        transfer_ocean(w3, deployment, publisher_key, address, OCEAN_EACH)
    write_address_file(address_file, deployment)
    return deployment, False


def consumer_lines(keys: Sequence[str]) -> list[str]:
    """The summary's lines on the funded consumers."""
    lines = [
        f"Consumers: 10,000 ETH, {OCEAN_EACH // TOKEN:,} OCEAN and {DATATOKENS_EACH // TOKEN} "
        "of each sample datatoken each. These are",
        "anvil's public test keys: anyone can spend from them on any chain; use them here only.",
    ]
    return lines + [f"  {Account.from_key(key).address}  {key}" for key in keys]


def write_files(folder: Path) -> None:
    """The files the samples' DDOs point at, served from ``folder``."""
    (folder / DATASET_FILE).write_text(SAMPLE_CSV)
    (folder / SECOND_DATASET_FILE).write_text(SECOND_CSV)
    (folder / ALGORITHM_FILE).write_bytes(SAMPLE_ALGORITHM)


@dataclass(frozen=True)
class Sample:
    """What ``dev.json`` records of the published samples."""

    provider_url: str
    files_url: str
    dataset_did: str
    dataset_datatoken: str
    algorithm_did: str
    algorithm_datatoken: str
    second_dataset_did: str
    second_dataset_datatoken: str

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    def summary_lines(self) -> list[str]:
        files = ", ".join((DATASET_FILE, SECOND_DATASET_FILE, ALGORITHM_FILE))
        return [
            f"sample files    {self.files_url}/  ({files})",
            f"dataset DID     {self.dataset_did}  (datatoken {self.dataset_datatoken})",
            f"dataset 2 DID   {self.second_dataset_did}"
            f"  (datatoken {self.second_dataset_datatoken})",
            f"algorithm DID   {self.algorithm_did}  (datatoken {self.algorithm_datatoken})",
        ]


class SamplePublisher:
    """Publishes the samples from ``publisher_key`` for the Provider at ``provider_url``
    (which encrypts their files) and mints their datatokens to ``consumers`` (addresses)."""

    def __init__(
        self,
        w3: Web3,
        deployment: Deployment,
        publisher_key: str,
        consumers: Sequence[str],
        *,
        provider_url: str,
        files_url: str,
    ) -> None:
        self.w3, self.deployment, self.publisher_key = w3, deployment, publisher_key
        self.consumers = tuple(consumers)
        self.provider_url, self.files_url = provider_url, files_url
        self._encrypt = endpoint_encrypt(provider_url, deployment.chain_id)

    def all(self) -> Sample:
        algorithm = self.algorithm()
        dataset = self.dataset("first", algorithm.did)
        second = self.dataset("second", algorithm.did)
        return Sample(
            self.provider_url,
            self.files_url,
            dataset.did,
            dataset.datatoken,
            algorithm.did,
            algorithm.datatoken,
            second.did,
            second.datatoken,
        )

    def algorithm(self) -> PublishedAsset:
        name = "Sum of squares"
        template = algorithm_ddo(
            name=name,
            files=[url_file(f"{self.files_url}/{ALGORITHM_FILE}")],
            service_endpoint=self.provider_url,
        )
        return self.publish(template, name, "SUMSQ")

    def dataset(self, which: str, algorithm_did: str) -> PublishedAsset:
        """Sample dataset ``which`` (a key of ``DATASETS``): raw algorithms allowed, and the
        sample algorithm trusted."""
        name, symbol, file = DATASETS[which]
        template = dataset_ddo(
            name=name,
            files=[url_file(f"{self.files_url}/{file}")],
            service_endpoint=self.provider_url,
            allow_raw_algorithm=True,
            trusted_algorithms=[
                trusted_algorithm(algorithm_did, SAMPLE_CONTAINER, [SAMPLE_ALGORITHM])
            ],
        )
        return self.publish(template, name, symbol)

    def publish(self, template: dict[str, Any], name: str, symbol: str) -> PublishedAsset:
        """Publish ``template`` (its files in plain) and mint its datatoken to the consumers."""
        asset = publish_asset(
            self.w3,
            self.deployment,
            self.publisher_key,
            template,
            encrypt=self._encrypt,
            provider_url=self.provider_url,
            name=name,
            symbol=symbol,
        )
        for address in self.consumers:
            mint(self.w3, asset.datatoken, self.publisher_key, address, DATATOKENS_EACH)
        return asset


def samples(publisher: SamplePublisher, record: Path, *, reuse: bool, say: Say) -> Sample:
    """The samples ``record`` holds if ``reuse`` (the chain they are on was kept) and they
    were published for the same URLs, else published now; ``record`` is written when
    anything was published. A record from before the second dataset gets that one."""
    known = _read(record) if reuse else {}
    urls = (known.get("provider_url"), known.get("files_url"))
    if urls != (publisher.provider_url, publisher.files_url) or not _has(
        known, "dataset", "algorithm"
    ):
        say("publishing the sample algorithm and datasets")
        sample = publisher.all()
    elif _has(known, "second_dataset"):
        return Sample(**known)
    else:
        say("publishing the second sample dataset (dev.json predates it)")
        second = publisher.dataset("second", known["algorithm_did"])
        sample = Sample(
            **known, second_dataset_did=second.did, second_dataset_datatoken=second.datatoken
        )
    sample.save(record)
    return sample


def _read(record: Path) -> dict[str, Any]:
    """The record's fields ``Sample`` knows; nothing when it is missing or unreadable."""
    try:
        body = json.loads(record.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(body, dict):
        return {}
    names = {field.name for field in fields(Sample)}
    return {key: str(value) for key, value in body.items() if key in names}


def _has(known: dict[str, Any], *assets: str) -> bool:
    return all(f"{asset}_did" in known and f"{asset}_datatoken" in known for asset in assets)
