"""The address file ocean.py reads (ADDRESS_FILE): one network set, the others kept."""

from __future__ import annotations

import json
from pathlib import Path

from web3 import Web3

from ocean_provider.devnet.contracts import (
    Deployment,
    address_file_entry,
    read_address_file,
    write_address_file,
)


def address(n: int) -> str:
    return Web3.to_checksum_address(f"0x{n:040x}")


DEPLOYMENT = Deployment(
    chain_id=8996,
    ocean=address(1),
    opc_collector=address(2),
    router=address(3),
    factory=address(4),
    erc721_template=address(5),
    erc20_template=address(6),
    fixed_rate=address(7),
    dispenser=address(8),
    start_block=6,
)


def test_entry_uses_the_package_names() -> None:
    assert address_file_entry(DEPLOYMENT) == {
        "chainId": 8996,
        "Ocean": address(1),
        "OPFCommunityFeeCollector": address(2),
        "startBlock": 6,
        "Router": address(3),
        "FixedPrice": address(7),
        "ERC20Template": {"1": address(6)},
        "ERC721Template": {"1": address(5)},
        "Dispenser": address(8),
        "ERC721Factory": address(4),
    }


def test_writing_keeps_other_networks_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "address.json"
    path.write_text(json.dumps({"sepolia": {"chainId": 11155111}, "development": {"old": 1}}))

    write_address_file(path, DEPLOYMENT)

    written = json.loads(path.read_text())
    assert written["sepolia"] == {"chainId": 11155111}
    assert written["development"] == address_file_entry(DEPLOYMENT)
    assert read_address_file(path) == DEPLOYMENT
    assert [p.name for p in tmp_path.iterdir()] == ["address.json"]
