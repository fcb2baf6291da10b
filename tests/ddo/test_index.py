"""The NFT index on anvil: incremental and persisted scans, bounded ranges, a reset chain."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest

from ocean_provider.ddo.crypto import ProviderCipher
from ocean_provider.ddo.dids import did_for
from ocean_provider.devnet.assets import cipher_encrypt, publish_datatoken, set_metadata
from ocean_provider.devnet.contracts import deploy_contract
from ocean_provider.errors import ChainUnavailable, ComputeRefused
from tests.ddo.conftest import CHAIN, Published, Setup, make_setup, publish_dataset
from tests.devchain import DevChain

pytestmark = pytest.mark.integration


def test_the_index_knows_every_published_nft_and_its_datatokens(
    onchain: Setup, published: Published
) -> None:
    onchain.index.refresh(CHAIN, onchain.clock())

    for asset in (published.dataset, published.algorithm):
        nft = onchain.index.lookup(asset.did)
        assert nft is not None
        assert (nft.chain_id, nft.address, nft.state) == (CHAIN, asset.nft, 0)
        assert nft.metadata_location is not None
        tokens = onchain.index.datatokens(CHAIN, [asset.datatoken.lower()])
        assert tokens[asset.datatoken.lower()].nft == asset.nft


def test_scans_are_persisted_and_resume_where_they_stopped(
    devchain: DevChain, tmp_path: Path, published: Published
) -> None:
    path = tmp_path / "index.db"
    first = make_setup(devchain, path)
    first.index.refresh(CHAIN, first.clock())
    asset = publish_dataset(devchain, "Later")

    second = make_setup(devchain, path)  # another process, or after a restart
    calls = second.calls()
    resolved = second.resolver.resolve(asset.did)

    assert resolved.metadata["name"] == "Later"
    assert second.calls() - calls == 3  # head and factory block; the new logs; the DDO


def test_a_scan_reads_bounded_ranges_and_tells_how_far_behind_it_is(
    devchain: DevChain, tmp_path: Path, published: Published
) -> None:
    bounded = make_setup(devchain, tmp_path / "index.db", blocks_per_call=5, calls_per_scan=2)

    with pytest.raises(ChainUnavailable) as caught:
        bounded.index.refresh(CHAIN, bounded.clock())

    assert caught.value.status == 503
    assert "catching up" in caught.value.message
    head = bounded.index.catch_up(CHAIN)
    assert head >= devchain.w3.eth.block_number - 1
    assert bounded.index.lookup(published.dataset.did) is not None


def test_a_chain_reset_under_the_same_addresses_starts_the_index_over(
    devchain: DevChain, tmp_path: Path, published: Published
) -> None:
    path = tmp_path / "index.db"
    first = make_setup(devchain, path)
    first.index.refresh(CHAIN, first.clock())
    with closing(sqlite3.connect(path)) as db, db:  # as if the chain had been reset
        db.execute("UPDATE ddo_scan SET genesis = '0x1234'")
        db.execute(
            "INSERT INTO ddo_nft (did, chain_id, nft, name, symbol, token_uri, uri_key) "
            "VALUES ('did:op:gone', ?, '0xgone', 'n', 's', 'u', 0)",
            (CHAIN,),
        )

    again = make_setup(devchain, path)
    again.index.refresh(CHAIN, again.clock())

    assert again.index.lookup("did:op:gone") is None
    assert again.index.lookup(published.dataset.did) is not None


def test_nfts_of_another_factory_are_not_indexed(onchain: Setup, devchain: DevChain) -> None:
    d = devchain.deployment
    other, _ = deploy_contract(
        devchain.w3,
        devchain.deployer_key,
        "ERC721Factory",
        d.erc721_template,
        d.erc20_template,
        d.router,
    )
    chain = devchain.w3
    elsewhere = publish_datatoken(chain, replace(d, factory=other.address), devchain.publisher_key)
    did = did_for(elsewhere.nft, CHAIN)
    encrypt = cipher_encrypt(ProviderCipher(devchain.provider_key))
    set_metadata(chain, devchain.publisher_key, elsewhere.nft, {"id": did}, encrypt=encrypt)

    assert refused_code(onchain, did) == "did_not_found"
    assert onchain.index.lookup(did) is None


def refused_code(setup: Setup, did: str) -> str:
    with pytest.raises(ComputeRefused) as caught:
        setup.resolver.resolve(did)
    return caught.value.code
