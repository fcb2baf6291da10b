"""``resolver_from_settings``: the source the settings name, or a boot error naming the setting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocean_provider.chain.rpc import Chains
from ocean_provider.config import ConfigurationError
from ocean_provider.ddo.aquarius import AquariusDdoResolver
from ocean_provider.ddo.crypto import ProviderCipher
from ocean_provider.ddo.onchain import OnChainDdoResolver
from ocean_provider.ddo.resolvers import index_path, resolver_from_settings
from tests.conftest import PROVIDER_KEY, make_settings
from tests.ddo.conftest import RecordingFiles

CIPHERS = {8996: ProviderCipher(PROVIDER_KEY)}


def chains() -> Chains:
    return Chains({8996: "http://127.0.0.1:1"}, timeout=1)


def address_file(tmp_path: Path) -> Path:
    path = tmp_path / "address.json"
    entry = {"chainId": 8996, "ERC721Factory": "0x" + "fa" * 20, "startBlock": 7}
    path.write_text(json.dumps({"development": entry}))
    return path


def test_the_default_reads_the_chain_with_an_index_beside_the_nonce_store(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, ADDRESS_FILE=str(address_file(tmp_path)))

    resolver = resolver_from_settings(settings, chains(), CIPHERS, RecordingFiles())

    assert isinstance(resolver, OnChainDdoResolver)
    assert resolver.index.factories[8996].start_block == 7
    assert index_path(settings.storage_path) == tmp_path / "nonces-ddo-index.db"
    assert index_path(settings.storage_path).exists()


def test_the_chain_source_without_a_factory_fails_at_boot(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)

    with pytest.raises(ConfigurationError, match="ADDRESS_FILE"):
        resolver_from_settings(settings, chains(), CIPHERS, RecordingFiles())


def test_aquarius_is_chosen_by_ddo_source(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, DDO_SOURCE="aquarius", AQUARIUS_URL="http://aqua.test")

    resolver = resolver_from_settings(settings, chains(), CIPHERS, RecordingFiles())

    assert isinstance(resolver, AquariusDdoResolver)
    resolver.close()
