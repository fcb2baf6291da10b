"""Building DDO 4.1.0 assets to publish, without a chain: templates, files binding, encryption."""

from __future__ import annotations

import hashlib
import json

import requests_mock as rm
from hexbytes import HexBytes

from ocean_provider.ddo.crypto import ProviderCipher
from ocean_provider.ddo.dids import did_for
from ocean_provider.devnet.assets import (
    SAMPLE_CONTAINER,
    algorithm_ddo,
    asset_ddo,
    cipher_encrypt,
    dataset_ddo,
    endpoint_encrypt,
    trusted_algorithm,
    url_file,
)
from tests.conftest import PROVIDER_KEY

NFT = "0x" + "ab" * 20
DATATOKEN = "0x" + "cd" * 20
CIPHER = ProviderCipher(PROVIDER_KEY)


def test_asset_ddo_fills_the_asset_and_binds_each_services_files() -> None:
    template = dataset_ddo(
        name="D", files=[url_file("http://files.test/a.csv")], service_endpoint="http://p.test"
    )
    did = did_for(NFT, 8996)

    ddo = asset_ddo(
        template,
        did=did,
        chain_id=8996,
        nft=NFT,
        datatoken=DATATOKEN,
        encrypt=cipher_encrypt(CIPHER),
    )

    assert (ddo["id"], ddo["nftAddress"], ddo["chainId"], ddo["version"]) == (
        did,
        NFT,
        8996,
        "4.1.0",
    )
    service = ddo["services"][0]
    assert service["datatokenAddress"] == DATATOKEN
    assert json.loads(CIPHER.decrypt(bytes(HexBytes(service["files"])))) == {
        "datatokenAddress": DATATOKEN,
        "nftAddress": NFT,
        "files": [url_file("http://files.test/a.csv")],
    }
    assert template["services"][0]["files"] == [url_file("http://files.test/a.csv")]  # untouched


def test_sample_dataset_and_algorithm_use_ddo_4_1_0_names() -> None:
    dataset = dataset_ddo(
        name="D",
        files=[],
        service_endpoint="http://p.test",
        allow_raw_algorithm=True,
        trusted_publishers=["0x" + "11" * 20],
        timeout=60,
    )
    algorithm = algorithm_ddo(name="A", files=[], service_endpoint="http://p.test")

    service = dataset["services"][0]
    assert (service["id"], service["type"], service["timeout"]) == ("compute", "compute", 60)
    assert service["compute"] == {
        "allowRawAlgorithm": True,
        "allowNetworkAccess": False,
        "publisherTrustedAlgorithms": [],
        "publisherTrustedAlgorithmPublishers": ["0x" + "11" * 20],
    }
    assert dataset["metadata"]["type"] == "dataset"
    assert algorithm["metadata"]["type"] == "algorithm"
    assert algorithm["metadata"]["algorithm"]["container"] == SAMPLE_CONTAINER
    assert algorithm["services"][0]["type"] == "access"


def test_a_trusted_algorithm_entry_pins_files_and_container_as_the_provider_hashes_them() -> None:
    entry = trusted_algorithm("did:op:" + "a" * 64, SAMPLE_CONTAINER, [b"one", b"two"])

    assert entry["filesChecksum"] == (
        hashlib.sha256(b"one").hexdigest() + hashlib.sha256(b"two").hexdigest()
    )
    container = SAMPLE_CONTAINER["entrypoint"] + SAMPLE_CONTAINER["checksum"]
    assert entry["containerSectionChecksum"] == hashlib.sha256(container.encode()).hexdigest()


def test_endpoint_encrypt_posts_octet_stream_with_the_chain_id() -> None:
    with rm.Mocker() as mocker:
        mocker.post("http://p.test/api/services/encrypt", status_code=201, text="0xabcd")

        assert endpoint_encrypt("http://p.test/", 8996)(b"plain") == "0xabcd"

        request = mocker.request_history[0]
        assert request.qs == {"chainid": ["8996"]}
        assert request.headers["Content-Type"] == "application/octet-stream"
        assert request.body == b"plain"
