"""Service files: decryption (4.0.0 list, 4.1.0 bound object), normalisation for the engine,
and algorithm checksums of files served on loopback. No decrypted URL leaks into errors."""

from __future__ import annotations

import hashlib
import json
import logging
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ocean_provider.compute.interfaces import Asset
from ocean_provider.ddo.crypto import ProviderCipher
from ocean_provider.ddo.files import ServiceFiles
from ocean_provider.devnet.embedded import serve_directory
from ocean_provider.errors import ComputeRefused
from tests.conftest import CHAIN_ID, OTHER_KEY, PROVIDER_KEY

CIPHER = ProviderCipher(PROVIDER_KEY)
DATATOKEN = "0x" + "ab" * 20
NFT = "0x" + "cd" * 20
ALGO_DID = "did:op:" + "a" * 64
SECRET = "s3cret-path-4d1e"  # a part of a decrypted URL that must never leak
CONTAINER = {"entrypoint": "python $ALGO", "image": "python", "checksum": "sha256:" + "0" * 64}


def sealed(plain: Any, cipher: ProviderCipher = CIPHER) -> str:
    return "0x" + cipher.encrypt(json.dumps(plain).encode()).hex()


def bound(files: list[Any], **changes: str) -> dict[str, Any]:
    return {"datatokenAddress": DATATOKEN, "nftAddress": NFT, "files": files, **changes}


def asset(
    plain: Any = None,
    *,
    version: str | None = "4.1.0",
    files: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Asset:
    service = {
        "id": "svc",
        "type": "compute",
        "datatokenAddress": DATATOKEN,
        "files": files if files is not None else sealed(plain),
    }
    ddo: dict[str, Any] = {
        "id": ALGO_DID,
        "chainId": CHAIN_ID,
        "nftAddress": NFT,
        "metadata": metadata or {"type": "algorithm", "algorithm": {"container": CONTAINER}},
        "services": [service],
    }
    if version is not None:
        ddo["version"] = version
    return Asset(ALGO_DID, CHAIN_ID, ddo)


def url(address: str, **extra: Any) -> dict[str, Any]:
    return {"type": "url", "url": address, **extra}


@pytest.fixture
def files() -> Iterator[ServiceFiles]:
    yield ServiceFiles(
        {CHAIN_ID: CIPHER},
        ipfs_gateway="https://ipfs.example/",
        arweave_gateway="https://arweave.example",
        max_checksum_bytes=1000,
        allow_private=True,
        timeout=5,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("served")
    (root / "algo.py").write_text("print('hi')\n")
    (root / "lib.py").write_text("X = 1\n")
    (root / f"{SECRET}.py").write_bytes(b"x" * 1001)  # one byte over the cap
    served = serve_directory(root)
    yield served.url
    served.close()


# --- decryption ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "plain"),
    [
        ("4.0.0", [url("https://data.example/a.csv")]),
        (None, [url("https://data.example/a.csv")]),
        ("4.1.0", bound([url("https://data.example/a.csv")])),
        (
            "4.1.0",
            bound(
                [url("https://data.example/a.csv")],
                datatokenAddress=DATATOKEN.upper().replace("0X", "0x"),
                nftAddress=NFT.lower(),
            ),
        ),
    ],
)
def test_files_decrypt_in_either_shape(
    files: ServiceFiles, version: str | None, plain: Any
) -> None:
    assert files.service_files(asset(plain, version=version), "svc") == [
        {"type": "url", "url": "https://data.example/a.csv", "method": "GET"}
    ]


def test_url_files_keep_method_and_headers(files: ServiceFiles) -> None:
    plain = bound(
        [
            url("https://data.example/q", method="post", headers={"Authorization": "Bearer t"}),
            url("http://data.example/b.csv", method="GET", other="dropped"),
        ]
    )
    assert files.service_files(asset(plain), "svc") == [
        {
            "type": "url",
            "url": "https://data.example/q",
            "method": "POST",
            "headers": {"Authorization": "Bearer t"},
        },
        {"type": "url", "url": "http://data.example/b.csv", "method": "GET"},
    ]


def test_ipfs_and_arweave_go_through_the_gateways(files: ServiceFiles) -> None:
    cid = "QmQfpdcMWnLTXKKW9GPV7NgtEugghgD6HgzSF6gSrp2mL9"
    plain = bound(
        [
            {"type": "ipfs", "hash": cid},
            {"type": "ipfs", "hash": f"{cid}/data/file.csv"},
            {"type": "arweave", "transactionId": "a4secM-Q9hA_zW0zY1x2nE3bC5dR6fT7gU8hV9iJ0kL"},
        ]
    )
    assert [f["url"] for f in files.service_files(asset(plain), "svc")] == [
        f"https://ipfs.example/ipfs/{cid}",
        f"https://ipfs.example/ipfs/{cid}/data/file.csv",
        "https://arweave.example/a4secM-Q9hA_zW0zY1x2nE3bC5dR6fT7gU8hV9iJ0kL",
    ]


def test_no_gateway_means_no_such_files(files: ServiceFiles) -> None:
    no_ipfs = ServiceFiles({CHAIN_ID: CIPHER}, ipfs_gateway="", arweave_gateway="")
    with pytest.raises(ComputeRefused) as refused:
        no_ipfs.service_files(asset(bound([{"type": "ipfs", "hash": "Qm1"}])), "svc")
    assert refused.value.code == "unsupported_file_type"


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: asset(files=sealed(bound([url("https://d.example/")]), ProviderCipher(OTHER_KEY))),
         "compute_services_not_in_same_provider"),
        (lambda: asset(files="0xnot-hex"), "compute_services_not_in_same_provider"),
        (lambda: asset(files=""), "compute_services_not_in_same_provider"),
        (lambda: asset(files="0x" + CIPHER.encrypt(b"not json").hex()), "files_malformed"),
        (lambda: asset(bound([url("https://d.example/")], datatokenAddress="0x" + "ee" * 20)),
         "files_datatoken_mismatch"),
        (lambda: asset(bound([url("https://d.example/")], datatokenAddress="nope")),
         "files_datatoken_mismatch"),
        (lambda: asset(bound([url("https://d.example/")], nftAddress="0x" + "ee" * 20)),
         "files_nft_mismatch"),
        (lambda: asset({"files": [url("https://d.example/")]}), "files_datatoken_mismatch"),
        (lambda: asset([url("https://d.example/")]), "files_malformed"),  # 4.1.0 wants the object
        (lambda: asset(bound([url("https://d.example/")]), version="4.0.0"), "files_malformed"),
        (lambda: asset(bound([])), "files_malformed"),
        (lambda: asset(bound([url("https://d.example/")] * 65)), "files_malformed"),
        (lambda: asset(bound(["https://d.example/"])), "files_malformed"),
        (lambda: asset(bound([url("ftp://d.example/x")])), "files_malformed"),
        (lambda: asset(bound([url("https://d.example/", method="DELETE")])), "files_malformed"),
        (lambda: asset(bound([url("https://d.example/", headers={"Host": "x"})])),
         "files_malformed"),
        (lambda: asset(bound([{"type": "ipfs", "hash": "../etc/passwd"}])), "files_malformed"),
        (lambda: asset(bound([{"type": "ipfs", "hash": "Qm/../x"}])), "files_malformed"),
        (lambda: asset(bound([{"type": "arweave", "transactionId": "a/b"}])), "files_malformed"),
        (lambda: asset(bound([{"type": "graphql", "url": "https://d.example/", "query": "{}"}])),
         "unsupported_file_type"),
        (lambda: asset(bound([{"type": "smartcontract", "address": NFT}])),
         "unsupported_file_type"),
    ],
)  # fmt: skip
def test_unusable_files_are_refused(files: ServiceFiles, make: Any, code: str) -> None:
    with pytest.raises(ComputeRefused) as refused:
        files.service_files(make(), "svc")
    assert refused.value.code == code
    assert refused.value.resource == "dataset.serviceId"
    assert "d.example" not in str(refused.value) + json.dumps(refused.value.body())


def test_no_key_for_the_chain(files: ServiceFiles) -> None:
    elsewhere = ServiceFiles({CHAIN_ID + 1: CIPHER}, ipfs_gateway="", arweave_gateway="")
    with pytest.raises(ComputeRefused) as refused:
        elsewhere.service_files(asset(bound([url("https://d.example/")])), "svc")
    assert refused.value.code == "compute_services_not_in_same_provider"


def test_unknown_service(files: ServiceFiles) -> None:
    with pytest.raises(ComputeRefused) as refused:
        files.service_files(asset(bound([url("https://d.example/")])), "nope")
    assert refused.value.code == "not_found"


# --- algorithm checksums ------------------------------------------------------------


def test_checksums_of_served_files(files: ServiceFiles, server: str, tmp_path: Path) -> None:
    plain = bound([url(f"{server}/algo.py"), url(f"{server}/lib.py?v=2")])
    checksums = files.algorithm_checksums(asset(plain), "svc")
    expected = [hashlib.sha256(b) for b in (b"print('hi')\n", b"X = 1\n")]
    assert checksums.files == "".join(h.hexdigest() for h in expected)
    entry_and_image = CONTAINER["entrypoint"] + CONTAINER["checksum"]
    assert checksums.container == hashlib.sha256(entry_and_image.encode()).hexdigest()


@pytest.mark.parametrize(
    ("make", "settings"),
    [
        (lambda s: asset(bound([url(f"{s}/{SECRET}.py?token={SECRET}")])), {}),  # over the cap
        (lambda s: asset(bound([url(f"{s}/{SECRET}-missing.py?token={SECRET}")])), {}),
        (lambda s: asset(bound([url(f"{s}/algo.py?token={SECRET}")])), {"allow_private": False}),
        (lambda s: asset(bound([url(f"http://{SECRET}.invalid/?token={SECRET}")])), {}),
        (lambda s: asset(files="0x00"), {}),
        (lambda s: asset(bound([url(f"{s}/algo.py?token={SECRET}")]), metadata={"type": "x"}), {}),
    ],
)
def test_checksums_fail_as_file_unavailable_without_naming_the_url(
    server: str,
    caplog: pytest.LogCaptureFixture,
    make: Any,
    settings: dict[str, Any],
) -> None:
    caplog.set_level(logging.DEBUG, logger="ocean_provider")
    files = ServiceFiles(
        {CHAIN_ID: CIPHER},
        ipfs_gateway="",
        arweave_gateway="",
        max_checksum_bytes=1000,
        timeout=5,
        **{"allow_private": True, **settings},
    )
    with pytest.raises(ComputeRefused) as refused:
        files.algorithm_checksums(make(server), "svc")
    assert (refused.value.resource, refused.value.code) == ("algorithm", "file_unavailable")
    rendered = "".join(traceback.format_exception(refused.value)) + caplog.text
    assert SECRET not in rendered + json.dumps(refused.value.body())


def test_a_zero_cap_hashes_no_file(server: str) -> None:
    files = ServiceFiles(
        {CHAIN_ID: CIPHER},
        ipfs_gateway="",
        arweave_gateway="",
        max_checksum_bytes=0,
        allow_private=True,
    )
    with pytest.raises(ComputeRefused) as refused:
        files.algorithm_checksums(asset(bound([url(f"{server}/algo.py")])), "svc")
    assert refused.value.code == "file_unavailable"


def test_a_ciphertext_is_decrypted_once_and_callers_get_their_own_copy(
    files: ServiceFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    published = asset(bound([url("https://data.example/a.csv")]))
    calls: list[bytes] = []
    decrypt = ProviderCipher.decrypt

    def counted(self: ProviderCipher, cipher: bytes) -> bytes:
        calls.append(cipher)
        return decrypt(self, cipher)

    monkeypatch.setattr(ProviderCipher, "decrypt", counted)
    first = files.service_files(published, "svc")
    first[0]["url"] = "https://elsewhere.example/"  # a caller's change stays its own
    second = files.service_files(published, "svc")
    assert second == [{"type": "url", "url": "https://data.example/a.csv", "method": "GET"}]
    assert len(calls) == 1
    # the same ciphertext on an asset bound to another NFT is checked again, and refused
    moved = asset(files=published.ddo["services"][0]["files"])
    moved.ddo["nftAddress"] = "0x" + "9" * 40  # type: ignore[index]
    with pytest.raises(ComputeRefused) as refused:
        files.service_files(moved, "svc")
    assert refused.value.code == "files_nft_mismatch" and len(calls) == 2
