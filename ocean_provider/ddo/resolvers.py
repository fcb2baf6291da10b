"""The ``DdoResolver`` the settings choose: from the chain (the default) or from Aquarius.

``DDO_SOURCE=chain`` needs an ERC721Factory for the Provider's chains
(``ADDRESS_FILE``); its NFT index lives in an SQLite file beside the nonce
store's (``STORAGE_PATH``), as ``<name>-ddo-index<suffix>``. ``DDO_SOURCE=aquarius``
reads ``AQUARIUS_URL``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from ocean_provider.chain.rpc import Chains
from ocean_provider.compute.interfaces import Asset, DdoResolver
from ocean_provider.config import ProviderSettings
from ocean_provider.ddo.aquarius import AquariusDdoResolver
from ocean_provider.ddo.crypto import ProviderCipher
from ocean_provider.ddo.index import Factory, NftIndex
from ocean_provider.ddo.onchain import OnChainDdoResolver
from ocean_provider.errors import ConfigurationError

log = logging.getLogger(__name__)


class ServiceFileSource(Protocol):
    """What decrypts a service's ``files`` (``ddo.files.ServiceFiles``); resolvers delegate
    ``service_files`` to it."""

    def service_files(self, asset: Asset, service_id: str) -> list[dict[str, Any]]: ...


def resolver_from_settings(
    settings: ProviderSettings,
    chains: Chains,
    ciphers: Mapping[int, ProviderCipher],
    files: ServiceFileSource,
) -> DdoResolver:
    """The resolver ``settings.ddo_source`` names; ``ConfigurationError`` if it cannot run."""
    if settings.ddo_source == "aquarius":
        if not settings.aquarius_url:
            raise ConfigurationError("DDO_SOURCE=aquarius needs AQUARIUS_URL")
        return AquariusDdoResolver(
            settings.aquarius_url,
            files,
            chain_ids=settings.chain_ids,
            timeout=settings.request_timeout,
        )
    factories = {
        chain: Factory(contracts.factory, contracts.start_block)
        for chain, contracts in settings.contracts.items()
        if contracts.factory and chain in settings.chain_ids
    }
    if not factories:
        raise ConfigurationError(
            "DDO_SOURCE=chain needs ADDRESS_FILE with an ERC721Factory for chain "
            + " or ".join(str(chain) for chain in settings.chain_ids)
        )
    for chain in settings.chain_ids:
        if chain not in factories:
            log.warning("chain %s has no ERC721Factory in ADDRESS_FILE: no DDOs there", chain)
    index = NftIndex(index_path(settings.storage_path), chains, factories)
    return OnChainDdoResolver(index, ciphers, files)


def index_path(storage_path: Path) -> Path:
    """The NFT index's SQLite file, beside the nonce store's: its own file, so a long
    scan never holds the nonce store's write lock, and deleting it only costs a rescan."""
    return storage_path.with_name(f"{storage_path.stem}-ddo-index{storage_path.suffix or '.db'}")
