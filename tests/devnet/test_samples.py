"""What a dev start does with ``dev.json``: reuse it, publish everything, or (a record from
before the second dataset) publish just that dataset; with a fake publisher, no chain."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from ocean_provider.devnet.assets import PublishedAsset
from ocean_provider.devnet.samples import (
    SAMPLE_CSV,
    SECOND_CSV,
    Sample,
    consumer_lines,
    samples,
    write_files,
)

PROVIDER, FILES = "http://127.0.0.1:8030", "http://127.0.0.1:8060"
RECORDED = Sample(PROVIDER, FILES, "did:op:d1", "0xD1", "did:op:a1", "0xA1", "did:op:d2", "0xD2")
FRESH = Sample(PROVIDER, FILES, "did:op:n1", "0xN1", "did:op:na", "0xNA", "did:op:n2", "0xN2")


class FakePublisher:
    """Records what it was asked to publish."""

    provider_url, files_url = PROVIDER, FILES

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def all(self) -> Sample:
        self.calls.append(("all",))
        return FRESH

    def dataset(self, which: str, algorithm_did: str) -> PublishedAsset:
        self.calls.append(("dataset", which, algorithm_did))
        return PublishedAsset("did:op:new2", "0x" + "1" * 40, "0x" + "2" * 40, {}, "0xtx")


def start(record: Path, *, reuse: bool = True) -> tuple[Sample, FakePublisher, list[str]]:
    publisher, said = FakePublisher(), list[str]()
    sample = samples(publisher, record, reuse=reuse, say=said.append)
    return sample, publisher, said


def write(record: Path, body: Any) -> None:
    record.write_text(json.dumps(body))


def test_a_full_record_on_a_kept_chain_is_reused_as_it_is(tmp_path: Path) -> None:
    record = tmp_path / "dev.json"
    RECORDED.save(record)
    before = record.read_text()
    sample, publisher, said = start(record)
    assert (sample, publisher.calls, said) == (RECORDED, [], [])
    assert record.read_text() == before


def test_a_record_from_before_the_second_dataset_gets_just_that_one(tmp_path: Path) -> None:
    record = tmp_path / "dev.json"
    older = {k: v for k, v in asdict(RECORDED).items() if not k.startswith("second_")}
    write(record, older)
    sample, publisher, said = start(record)
    assert publisher.calls == [("dataset", "second", "did:op:a1")]  # trusting the recorded one
    assert said == ["publishing the second sample dataset (dev.json predates it)"]
    assert sample == Sample(
        **older, second_dataset_did="did:op:new2", second_dataset_datatoken="0x" + "2" * 40
    )
    assert json.loads(record.read_text()) == asdict(sample)


@pytest.mark.parametrize(
    "body",
    [
        {**asdict(RECORDED), "files_url": "http://127.0.0.1:9999"},  # another files port
        {**asdict(RECORDED), "provider_url": "http://127.0.0.1:9999"},
        {"provider_url": PROVIDER, "files_url": FILES},  # nothing published
        ["not", "an", "object"],
    ],
)
def test_a_record_for_other_urls_or_unreadable_gets_everything_published(
    tmp_path: Path, body: Any
) -> None:
    record = tmp_path / "dev.json"
    write(record, body)
    sample, publisher, said = start(record)
    assert (sample, publisher.calls) == (FRESH, [("all",)])
    assert said == ["publishing the sample algorithm and datasets"]
    assert json.loads(record.read_text()) == asdict(FRESH)


def test_a_new_chain_or_no_record_gets_everything_published(tmp_path: Path) -> None:
    record = tmp_path / "dev.json"
    RECORDED.save(record)
    assert start(record, reuse=False)[1].calls == [("all",)]  # the chain was not kept
    record.unlink()
    assert start(record)[1].calls == [("all",)]
    record.write_text("{not json")
    assert start(record)[1].calls == [("all",)]


def test_the_files_and_the_summary(tmp_path: Path) -> None:
    write_files(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "more_squares.csv",
        "squares.csv",
        "sum_squares.py",
    ]
    assert (tmp_path / "squares.csv").read_text() == SAMPLE_CSV
    assert SECOND_CSV.splitlines()[1:3] == ["101,10201", "102,10404"]
    lines = RECORDED.summary_lines()
    assert lines[1:] == [
        "dataset DID     did:op:d1  (datatoken 0xD1)",
        "dataset 2 DID   did:op:d2  (datatoken 0xD2)",
        "algorithm DID   did:op:a1  (datatoken 0xA1)",
    ]
    assert consumer_lines([])[0].startswith("Consumers: 10,000 ETH, 1,000 OCEAN and 10 of each")
