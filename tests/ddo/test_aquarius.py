"""The Aquarius resolver against requests-mock: DDOs, refusals, timeouts, its short cache."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import requests_mock as rm

from ocean_provider.ddo.aquarius import AquariusDdoResolver
from ocean_provider.ddo.dids import did_for
from ocean_provider.errors import AquariusUnavailable, ComputeRefused
from tests.ddo.conftest import FakeClock, RecordingFiles

AQUARIUS = "http://aquarius.test"
NFT = "0x" + "ab" * 20
CHAIN = 8996
DID = did_for(NFT, CHAIN)
URL = f"{AQUARIUS}/api/aquarius/assets/ddo/{DID}"


def ddo(**fields: Any) -> dict[str, Any]:
    base = {"id": DID, "chainId": CHAIN, "nftAddress": NFT, "version": "4.1.0"}
    return {**base, "services": [{"id": "compute", "type": "compute"}], **fields}


@pytest.fixture
def mocker() -> Iterator[rm.Mocker]:
    with rm.Mocker() as mock:
        yield mock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def resolver(clock: FakeClock) -> AquariusDdoResolver:
    return AquariusDdoResolver(
        AQUARIUS + "/", RecordingFiles(), chain_ids=[1, CHAIN], timeout=2, clock=clock
    )


def test_a_ddo_is_fetched_and_cached_briefly(
    mocker: rm.Mocker, resolver: AquariusDdoResolver, clock: FakeClock
) -> None:
    mocker.get(URL, json=ddo())

    asset = resolver.resolve(DID)
    again = resolver.resolve(DID)
    clock.advance(2.5)
    later = resolver.resolve(DID)

    assert (asset.did, asset.chain_id, asset.service("compute")) == (
        DID,
        CHAIN,
        {"id": "compute", "type": "compute"},
    )
    assert again is asset
    assert later is not asset
    assert mocker.call_count == 2
    request = mocker.request_history[0]
    assert request.timeout == 2


def test_service_files_are_delegated(mocker: rm.Mocker) -> None:
    files = RecordingFiles()
    resolver = AquariusDdoResolver(AQUARIUS, files, chain_ids=[CHAIN])
    mocker.get(URL, json=ddo())

    resolver.service_files(resolver.resolve(DID), "compute")

    assert files.asked == [(DID, "compute")]


def test_a_revoked_asset_aquarius_soft_deleted_keeps_its_chain_and_state(
    mocker: rm.Mocker, resolver: AquariusDdoResolver
) -> None:
    soft_deleted = {"nft": {"address": NFT, "state": 3}, "event": {}, "datatokens": [], "stats": {}}
    mocker.get(URL, json=soft_deleted)

    asset = resolver.resolve(DID)

    assert (asset.chain_id, asset.ddo["nft"]["state"], asset.service("compute")) == (CHAIN, 3, None)


def refusal(resolver: AquariusDdoResolver, did: str = DID) -> ComputeRefused | AquariusUnavailable:
    with pytest.raises((ComputeRefused, AquariusUnavailable)) as caught:
        resolver.resolve(did)
    error = caught.value
    assert isinstance(error, ComputeRefused | AquariusUnavailable)
    assert AQUARIUS not in error.message  # never the URL
    return error


def test_an_unknown_did_is_not_found(mocker: rm.Mocker, resolver: AquariusDdoResolver) -> None:
    mocker.get(URL, status_code=404, json={"error": "Asset DID not found in Elasticsearch."})

    error = refusal(resolver)

    assert (error.status, error.code) == (400, "did_not_found")


def test_a_malformed_did_is_not_asked_for(mocker: rm.Mocker, resolver: AquariusDdoResolver) -> None:
    assert refusal(resolver, "did:op:../../admin").code == "did_not_found"
    assert mocker.call_count == 0


@pytest.mark.parametrize(
    "answer",
    [
        {"status_code": 500, "text": "boom"},
        {"status_code": 200, "text": "<html>"},
        {"status_code": 200, "json": ["a", "list"]},
        {"status_code": 200, "json": ddo(id="did:op:" + "0" * 64)},
        {"status_code": 200, "json": ddo(chainId=1)},
        {"status_code": 200, "json": ddo(chainId="8996")},
        {"status_code": 200, "json": ddo(nftAddress="0x" + "cd" * 20)},
        {"status_code": 200, "json": ddo(nftAddress="not an address")},
        {"status_code": 200, "json": {"nft": {"address": "0x" + "cd" * 20}}},
        {"exc": requests.ConnectTimeout},
        {"exc": requests.ConnectionError},
        {"status_code": 200, "text": "x" * (9 << 20)},
    ],
    ids=[
        "server error",
        "not json",
        "not an object",
        "another did",
        "another chain",
        "chain as text",
        "another nft",
        "bad nft",
        "soft deleted other nft",
        "timeout",
        "refused",
        "too large",
    ],
)
def test_anything_but_the_ddo_is_aquarius_unavailable(
    mocker: rm.Mocker, resolver: AquariusDdoResolver, answer: dict[str, Any]
) -> None:
    mocker.get(URL, **answer)

    error = refusal(resolver)

    assert (error.status, error.code) == (503, "aquarius_unavailable")


class SlowBody(io.BytesIO):
    """A reply body that takes a second of the fake clock per read."""

    def __init__(self, data: bytes, clock: FakeClock) -> None:
        super().__init__(data)
        self.clock = clock

    def read(self, size: int | None = -1) -> bytes:
        self.clock.advance(1.0)
        return super().read(min(size or 1, 16) if size and size > 0 else 16)


def test_a_reply_that_drips_past_the_deadline_is_cut(
    mocker: rm.Mocker, resolver: AquariusDdoResolver, clock: FakeClock
) -> None:
    mocker.get(URL, body=SlowBody(json.dumps(ddo()).encode(), clock))

    error = refusal(resolver)

    assert error.code == "aquarius_unavailable"
    assert "too long" in error.message
