"""The on-chain resolver on anvil: published DDOs with Aquarius' fields, its cache, refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hexbytes import HexBytes

from ocean_provider.app import create_app
from ocean_provider.ddo.crypto import FLAG_ECIES, FLAG_LZMA, ProviderCipher
from ocean_provider.ddo.dids import did_for
from ocean_provider.ddo.files import ServiceFiles
from ocean_provider.ddo.onchain import OnChainDdoResolver
from ocean_provider.devnet.assets import (
    Encrypt,
    cipher_encrypt,
    dataset_ddo,
    endpoint_encrypt,
    publish_asset,
    publish_datatoken,
    set_metadata,
    set_metadata_state,
    url_file,
)
from ocean_provider.devnet.embedded import serve_app
from ocean_provider.errors import ComputeRefused
from tests.conftest import make_settings
from tests.ddo.conftest import CHAIN, Published, Setup, publish_dataset
from tests.devchain import DevChain

pytestmark = pytest.mark.integration


def refused(onchain: Setup, did: str) -> ComputeRefused:
    with pytest.raises(ComputeRefused) as caught:
        onchain.resolver.resolve(did)
    return caught.value


def test_a_dataset_resolves_with_the_fields_aquarius_adds(
    onchain: Setup, devchain: DevChain, published: Published
) -> None:
    asset = onchain.resolver.resolve(published.dataset.did)

    ddo = asset.ddo
    assert (asset.did, asset.chain_id) == (published.dataset.did, CHAIN)
    assert ddo["id"] == published.dataset.did
    assert ddo["version"] == "4.1.0"
    assert ddo["chainId"] == CHAIN
    assert ddo["nftAddress"] == published.dataset.nft
    assert ddo["metadata"]["type"] == "dataset"
    service = asset.service("compute")
    assert service is not None
    assert service["datatokenAddress"] == published.dataset.datatoken
    assert service["timeout"] == 600
    assert service["compute"]["allowRawAlgorithm"] is True
    assert service["compute"]["publisherTrustedAlgorithmPublishers"] == [devchain.publisher]
    trusted = service["compute"]["publisherTrustedAlgorithms"]
    assert [entry["did"] for entry in trusted] == [published.algorithm.did]
    nft = ddo["nft"]
    assert nft["address"] == published.dataset.nft
    assert (nft["name"], nft["symbol"], nft["state"]) == ("Data NFT", "DATA", 0)
    assert nft["owner"] == devchain.publisher
    assert nft["tokenURI"] == "https://oceanprotocol.com/nft/"
    assert nft["created"] == ddo["event"]["datetime"]
    assert ddo["datatokens"] == [
        {
            "address": published.dataset.datatoken,
            "name": "Datatoken 1",
            "symbol": "DT1",
            "serviceId": "compute",
        }
    ]
    event = ddo["event"]
    assert event["tx"] == published.dataset.tx
    assert (event["from"], event["contract"]) == (devchain.publisher, published.dataset.nft)
    receipt = devchain.w3.eth.get_transaction_receipt(HexBytes(published.dataset.tx))
    assert event["block"] == receipt["blockNumber"]


def test_service_files_stay_encrypted_to_the_provider_and_bound_to_the_asset(
    onchain: Setup, devchain: DevChain, published: Published
) -> None:
    asset = onchain.resolver.resolve(published.dataset.did)
    files = asset.service("compute")["files"]  # type: ignore[index]

    plain = ProviderCipher(devchain.provider_key).decrypt(bytes(HexBytes(files)))
    assert json.loads(plain) == {
        "datatokenAddress": published.dataset.datatoken,
        "nftAddress": published.dataset.nft,
        "files": [url_file("http://files.test/data.csv")],
    }
    assert onchain.resolver.service_files(asset, "compute") == [
        url_file("http://files.test/compute")
    ]
    assert onchain.files.asked == [(published.dataset.did, "compute")]


def test_an_algorithm_resolves_with_its_container(onchain: Setup, published: Published) -> None:
    asset = onchain.resolver.resolve(published.algorithm.did)

    algorithm = asset.metadata["algorithm"]
    assert asset.metadata["type"] == "algorithm"
    assert algorithm["container"]["entrypoint"] == "python $ALGO"
    assert algorithm["container"]["checksum"].startswith("sha256:")
    assert asset.service("access") is not None
    assert asset.ddo["nft"]["symbol"] == "ALGO"


def test_warm_resolves_make_no_rpc_call_within_the_ttl_and_one_after(
    onchain: Setup, published: Published
) -> None:
    first = onchain.resolver.resolve(published.dataset.did)
    calls = onchain.calls()

    assert onchain.resolver.resolve(published.dataset.did) is first
    assert onchain.resolver.resolve(published.algorithm.did) is not None  # cold: one batch
    assert onchain.calls() - calls == 1
    onchain.clock.advance(1.5)
    calls = onchain.calls()
    assert onchain.resolver.resolve(published.dataset.did) is first
    assert onchain.calls() - calls == 1  # the index scan, one batch for the whole chain
    calls = onchain.calls()
    assert onchain.resolver.resolve(published.algorithm.did) is not None
    assert onchain.calls() == calls


def test_a_cached_ddo_is_read_again_after_max_age(onchain: Setup, published: Published) -> None:
    first = onchain.resolver.resolve(published.dataset.did)
    onchain.clock.advance(61)

    again = onchain.resolver.resolve(published.dataset.did)

    assert again is not first
    assert again.ddo == first.ddo


def test_metadata_changed_after_the_first_resolution(onchain: Setup, devchain: DevChain) -> None:
    asset = publish_dataset(devchain, "Before")
    before = onchain.resolver.resolve(asset.did)
    changed = {**asset.ddo, "metadata": {**asset.ddo["metadata"], "name": "After"}}
    tx = set_metadata(
        devchain.w3, devchain.publisher_key, asset.nft, changed, encrypt=_encrypt(devchain)
    )

    assert onchain.resolver.resolve(asset.did) is before  # within the ttl
    onchain.clock.advance(1.5)
    after = onchain.resolver.resolve(asset.did)

    assert before.metadata["name"] == "Before"
    assert after.metadata["name"] == "After"
    assert after.ddo["event"]["tx"] == tx
    assert after.ddo["nft"]["created"] == before.ddo["nft"]["created"]


@pytest.mark.parametrize(("state", "name"), [(3, "revoked"), (2, "deprecated")])
def test_a_revoked_or_deprecated_asset_reports_its_state(
    onchain: Setup, devchain: DevChain, state: int, name: str
) -> None:
    asset = publish_dataset(devchain, name)
    assert onchain.resolver.resolve(asset.did).ddo["nft"]["state"] == 0

    set_metadata_state(devchain.w3, devchain.publisher_key, asset.nft, state)
    onchain.clock.advance(1.5)
    resolved = onchain.resolver.resolve(asset.did)

    assert resolved.ddo["nft"]["state"] == state
    assert resolved.metadata["name"] == name  # reported, not judged: policy refuses it


def test_a_tampered_metadata_hash_is_refused(onchain: Setup, devchain: DevChain) -> None:
    asset = publish_dataset(devchain, "Tampered")
    set_metadata(
        devchain.w3,
        devchain.publisher_key,
        asset.nft,
        asset.ddo,
        encrypt=_encrypt(devchain),
        metadata_hash=b"\x01" * 32,
    )
    onchain.clock.advance(1.5)

    error = refused(onchain, asset.did)
    calls = onchain.calls()
    again = refused(onchain, asset.did)  # the refusal is kept until the metadata changes
    onchain.clock.advance(1.5)
    later = refused(onchain, asset.did)

    assert (error.status, error.code, error.resource) == (400, "metadata_hash_mismatch", "dataset")
    assert again.code == later.code == "metadata_hash_mismatch"
    assert onchain.calls() - calls == 1  # the index scan after the ttl; no metadata read


@pytest.mark.parametrize(
    "flags",
    [0, FLAG_LZMA, FLAG_ECIES, FLAG_LZMA | FLAG_ECIES],
    ids=["plain", "lzma", "ecies", "both"],
)
def test_each_flag_combination_opens(onchain: Setup, devchain: DevChain, flags: int) -> None:
    asset = publish_dataset(devchain, f"flags {flags}", flags=flags)

    assert onchain.resolver.resolve(asset.did).metadata["name"] == f"flags {flags}"


def test_an_unknown_did_is_not_found_after_one_scan(onchain: Setup, published: Published) -> None:
    onchain.resolver.resolve(published.dataset.did)
    calls = onchain.calls()

    error = refused(onchain, "did:op:" + os.urandom(32).hex())

    assert (error.status, error.code) == (400, "did_not_found")
    assert onchain.calls() - calls == 1


@pytest.mark.parametrize(
    "did", ["did:op:xyz", "did:op:" + "A" * 64, "did:op:" + "0" * 63, "", "did:ethr:" + "0" * 64]
)
def test_a_malformed_did_is_not_found_without_a_call(onchain: Setup, did: str) -> None:
    assert refused(onchain, did).code == "did_not_found"
    assert onchain.calls() == 0


def test_a_did_of_the_nft_on_another_chain_is_not_found(
    onchain: Setup, published: Published
) -> None:
    assert refused(onchain, did_for(published.dataset.nft, 1)).code == "did_not_found"


def test_an_nft_without_metadata_is_not_found(onchain: Setup, devchain: DevChain) -> None:
    nft = publish_datatoken(devchain.w3, devchain.deployment, devchain.publisher_key).nft

    error = refused(onchain, did_for(nft, CHAIN))

    assert error.code == "did_not_found"
    assert "no metadata" in str(error)


def test_metadata_for_another_provider_is_not_found(onchain: Setup, devchain: DevChain) -> None:
    other = cipher_encrypt(ProviderCipher(devchain.consumer_key))
    asset = publish_dataset(devchain, "Elsewhere")
    set_metadata(devchain.w3, devchain.publisher_key, asset.nft, asset.ddo, encrypt=other)
    onchain.clock.advance(1.5)

    error = refused(onchain, asset.did)

    assert error.code == "did_not_found"
    assert "cannot decrypt" in str(error)


def test_a_ddo_with_another_id_is_not_found(onchain: Setup, devchain: DevChain) -> None:
    asset = publish_dataset(devchain, "Impostor")
    stolen = {**asset.ddo, "id": "did:op:" + "ab" * 32}
    set_metadata(devchain.w3, devchain.publisher_key, asset.nft, stolen, encrypt=_encrypt(devchain))
    onchain.clock.advance(1.5)

    assert refused(onchain, asset.did).code == "did_not_found"


def _encrypt(chain: DevChain) -> Encrypt:
    return cipher_encrypt(ProviderCipher(chain.provider_key))


def test_published_through_the_encrypt_endpoint_and_files_opened_by_service_files(
    tmp_path: Path, devchain: DevChain, onchain: Setup
) -> None:
    settings = make_settings(
        tmp_path,
        NETWORK_URL=devchain.url,
        PROVIDER_PRIVATE_KEY=devchain.provider_key,
        ADDRESS_FILE=str(devchain.address_file),
    )
    served = serve_app(create_app(settings), "provider")
    try:
        asset = publish_asset(
            devchain.w3,
            devchain.deployment,
            devchain.publisher_key,
            dataset_ddo(
                name="Via endpoint",
                files=[url_file("http://files.test/d.csv")],
                service_endpoint=served.url,
            ),
            encrypt=endpoint_encrypt(served.url, CHAIN),
        )
    finally:
        served.close()
    cipher = {CHAIN: ProviderCipher(devchain.provider_key)}
    files = ServiceFiles(
        cipher, ipfs_gateway="https://ipfs.test", arweave_gateway="https://ar.test"
    )
    resolver = OnChainDdoResolver(onchain.index, cipher, files, clock=onchain.clock)

    resolved = resolver.resolve(asset.did)

    assert resolved.metadata["name"] == "Via endpoint"
    assert resolver.service_files(resolved, "compute") == [url_file("http://files.test/d.csv")]
