"""Shared fixtures: settings on a temp dir, signing consumers, fakes for chain-facing parts."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests_mock as rm
from eth_account import Account
from flask import Flask
from flask.testing import FlaskClient

from ocean_provider.app import create_app
from ocean_provider.auth.signing import sign_message
from ocean_provider.compute.interfaces import Asset, VerifiedOrder
from ocean_provider.config import ProviderSettings, load_provider_settings
from ocean_provider.errors import ComputeRefused

pytest_plugins = ["tests.devchain"]  # the ``devchain`` fixture: anvil with Ocean's contracts

# Public test keys (reference pytest.ini / anvil); never used outside tests.
CONSUMER_KEY = "0x5d75837394b078ce97bc289fa8d75e21000573520bfa7784a9d28ccaae602bf8"
OTHER_KEY = "0x8467415bb2ba7c91084d932276214b11a3dd9bdb2930fefa194b666dd8020b99"
PROVIDER_KEY = "0xfd5c1ccea015b6d663618850824154a3b3fb2882c46cefb05b9a93fea8c3d215"
ENGINE_URL = "http://engine.test:8050"
CHAIN_ID = 8996
DATASET_DID = "did:op:e16a777d1f146dba369cf98d212f34c17d9de516fcda5c9546076cf043ba6e37"
ALGO_DID = "did:op:a1" + "0" * 62
TX = "0x" + "a1" * 32  # transaction hashes of orders (faked by FakeOrderVerifier)
TX2 = "0x" + "b2" * 32
ALGO_TX = "0x" + "c3" * 32


class Consumer:
    """A client identity that signs requests the way ocean.py does."""

    _clock = itertools.count(time.time_ns())

    def __init__(self, key: str) -> None:
        self.key = key
        self.address = str(Account.from_key(key).address)

    def nonce(self) -> str:
        return str(next(self._clock))

    def sign(self, message: str, nonce: str) -> str:
        return sign_message(message + nonce, self.key)


def make_settings(tmp_path: Path, **overrides: str) -> ProviderSettings:
    environ = {
        "NETWORK_URL": "http://127.0.0.1:8545",
        "PROVIDER_PRIVATE_KEY": PROVIDER_KEY,
        "OPERATOR_SERVICE_URL": ENGINE_URL,
        "STORAGE_PATH": str(tmp_path / "nonces.db"),
        "PROVIDER_URL": "http://provider.test",
        "REQUEST_TIMEOUT": "2",
        **overrides,
    }
    return load_provider_settings(environ, config_path=None)


DATASET_NFT = "0x" + "d1" * 20
ALGO_NFT = "0x" + "a1" * 20
ALGO_OWNER = "0x" + "1" * 40
ALGO_CONTAINER = {
    "entrypoint": "python $ALGO",
    "image": "python",
    "tag": "3.11",
    "checksum": "sha256:" + "0" * 64,
}


def dataset_ddo(*, raw_allowed: bool = True, trusted: list[str] | None = None) -> dict[str, Any]:
    return {
        "id": DATASET_DID,
        "version": "4.1.0",
        "chainId": CHAIN_ID,
        "nftAddress": DATASET_NFT,
        "nft": {"address": DATASET_NFT, "state": 0, "owner": "0x" + "2" * 40},
        "metadata": {"type": "dataset", "name": "sample"},
        "services": [
            {
                "id": "compute-1",
                "type": "compute",
                "serviceEndpoint": "http://provider.test",
                "compute": {
                    "allowRawAlgorithm": raw_allowed,
                    "allowNetworkAccess": False,
                    "publisherTrustedAlgorithms": [{"did": d} for d in trusted or []],
                    "publisherTrustedAlgorithmPublishers": [],
                },
            },
            {"id": "access-1", "type": "access", "serviceEndpoint": "http://provider.test"},
        ],
    }


def algo_ddo() -> dict[str, Any]:
    return {
        "id": ALGO_DID,
        "version": "4.1.0",
        "chainId": CHAIN_ID,
        "nftAddress": ALGO_NFT,
        "nft": {"address": ALGO_NFT, "state": 0, "owner": ALGO_OWNER},
        "metadata": {"type": "algorithm", "algorithm": {"container": dict(ALGO_CONTAINER)}},
        "services": [{"id": "access-a", "type": "access", "serviceEndpoint": "http://p.test"}],
    }


class FakeDdoResolver:
    def __init__(self, ddos: Mapping[str, dict[str, Any]]) -> None:
        self.ddos = dict(ddos)

    def resolve(self, did: str) -> Asset:
        if did not in self.ddos:
            raise ComputeRefused("dataset", "did_not_found")
        return Asset(did=did, chain_id=CHAIN_ID, ddo=self.ddos[did])

    def service_files(self, asset: Asset, service_id: str) -> list[dict[str, Any]]:
        return [{"type": "url", "url": f"http://files.test/{service_id}.csv", "method": "GET"}]


class FakeOrderVerifier:
    """Accepts every order except those in ``bad``; the chain's own checks run on anvil."""

    def __init__(self) -> None:
        self.bad: set[str] = set()
        self.calls: list[str] = []

    def verify(
        self, *, asset: Asset, service_id: str, tx_id: str, consumer: str, **_: Any
    ) -> VerifiedOrder:
        self.calls.append(tx_id)
        if tx_id in self.bad:
            raise ComputeRefused(f"{service_id}", "order_invalid")
        return VerifiedOrder(asset.chain_id, tx_id, tx_id, "0x" + "0" * 40, 0, 0)

    def check_fees(self, chain_id: int, orders: list[VerifiedOrder], environment: Any) -> None:
        pass


class FakeFeeIssuer:
    """Issues recognisable unsigned fees; the real signer is tested against the contract."""

    def __init__(self) -> None:
        self.issued: list[dict[str, Any]] = []

    def issue(self, **request: Any) -> dict[str, Any]:
        self.issued.append(request)
        return {"providerFeeAmount": "1" if request["charge"] else "0", "fake": True}


@pytest.fixture
def consumer() -> Consumer:
    return Consumer(CONSUMER_KEY)


@pytest.fixture
def other() -> Consumer:
    return Consumer(OTHER_KEY)


@pytest.fixture
def settings(tmp_path: Path) -> ProviderSettings:
    return make_settings(tmp_path)


@pytest.fixture
def ddos() -> FakeDdoResolver:
    return FakeDdoResolver({DATASET_DID: dataset_ddo(trusted=[ALGO_DID]), ALGO_DID: algo_ddo()})


@pytest.fixture
def orders() -> FakeOrderVerifier:
    return FakeOrderVerifier()


@pytest.fixture
def engine() -> Iterator[rm.Mocker]:
    with rm.Mocker() as mocker:
        yield mocker


@pytest.fixture
def app(
    settings: ProviderSettings,
    ddos: FakeDdoResolver,
    orders: FakeOrderVerifier,
    engine: rm.Mocker,
) -> Flask:
    from ocean_provider.operator.client import OperatorClient

    backend = OperatorClient(ENGINE_URL, PROVIDER_KEY, connect_timeout=1, read_timeout=2, backoff=0)
    return create_app(settings, backend=backend, ddos=ddos, orders=orders)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
