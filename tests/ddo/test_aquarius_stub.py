"""Published assets resolved through an Aquarius stub on loopback, as they resolve from chain."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from ocean_provider.ddo.aquarius import AquariusDdoResolver
from ocean_provider.devnet.assets import set_metadata_state
from ocean_provider.devnet.embedded import ServedApp, serve_app
from tests.ddo.conftest import CHAIN, Published, RecordingFiles, Setup, publish_dataset
from tests.devchain import DevChain

pytestmark = pytest.mark.integration

PREFIX = "/api/aquarius/assets/ddo/"


class AquariusStub:
    """Serves the DDOs it holds as Aquarius does (404 with a JSON error otherwise)."""

    def __init__(self) -> None:
        self.ddos: dict[str, Any] = {}
        self.served: ServedApp = serve_app(self._app, "aquarius")

    @Request.application
    def _app(self, request: Request) -> Response:
        did = request.path.removeprefix(PREFIX)
        if not request.path.startswith(PREFIX) or did not in self.ddos:
            return Response('{"error": "Asset DID not found in Elasticsearch."}', status=404)
        return Response(json.dumps(self.ddos[did]), mimetype="application/json")


@pytest.fixture
def aquarius() -> Iterator[AquariusStub]:
    stub = AquariusStub()
    yield stub
    stub.served.close()


def test_published_assets_resolve_through_aquarius_as_from_chain(
    onchain: Setup, published: Published, aquarius: AquariusStub
) -> None:
    resolver = AquariusDdoResolver(aquarius.served.url, RecordingFiles(), chain_ids=[CHAIN])
    for asset in (published.dataset, published.algorithm):
        from_chain = onchain.resolver.resolve(asset.did)
        aquarius.ddos[asset.did] = dict(from_chain.ddo)

        through_aquarius = resolver.resolve(asset.did)

        assert through_aquarius == from_chain
    resolver.close()


def test_a_revoked_asset_through_aquarius_keeps_its_state(
    onchain: Setup, devchain: DevChain, aquarius: AquariusStub
) -> None:
    asset = publish_dataset(devchain, "Revoked via Aquarius")
    set_metadata_state(devchain.w3, devchain.publisher_key, asset.nft, 3)
    from_chain = onchain.resolver.resolve(asset.did)
    aquarius.ddos[asset.did] = {  # Aquarius' soft delete keeps only its own fields
        key: from_chain.ddo[key] for key in ("event", "nft", "datatokens")
    }
    resolver = AquariusDdoResolver(aquarius.served.url, RecordingFiles(), chain_ids=[1, CHAIN])

    through_aquarius = resolver.resolve(asset.did)

    assert (through_aquarius.chain_id, through_aquarius.ddo["nft"]["state"]) == (CHAIN, 3)
    assert from_chain.ddo["nft"]["state"] == 3
    resolver.close()
