"""A real chain for integration tests: anvil with Ocean's contracts, deployed once per session.

``devchain`` is a session fixture; ``pytest_plugins = ["tests.devchain"]`` in the root
conftest makes it available to every test folder. ``sign_provider_fee`` signs a provider fee the way
a Provider does, for tests that place orders (the Provider's own signer lives in
``ocean_provider.chain``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from web3 import Web3

from ocean_provider.devnet.anvil import ACCOUNT_KEYS, Anvil, AnvilNotFound, find_anvil
from ocean_provider.devnet.assets import ProviderFee, transfer_ocean
from ocean_provider.devnet.contracts import Deployment, deploy, write_address_file

OCEAN = 10**18  # one OCEAN (or one datatoken) in wei
FUNDING = 1000 * OCEAN  # each party's OCEAN, from the deployer


@dataclass(frozen=True)
class DevChain:
    """anvil (chain id 8996) with Ocean's contracts and funded parties.

    Every key holds anvil's 10,000 ETH; publisher and both consumers also
    hold ``FUNDING`` OCEAN. The provider key only signs fees.
    """

    url: str
    w3: Web3
    deployment: Deployment
    address_file: Path  # {"development": ...}, as ocean.py's ADDRESS_FILE
    deployer_key: str
    publisher_key: str
    consumer_key: str
    other_consumer_key: str
    provider_key: str

    @staticmethod
    def address(key: str) -> ChecksumAddress:
        address: ChecksumAddress = Account.from_key(key).address
        return address

    @property
    def publisher(self) -> ChecksumAddress:
        return self.address(self.publisher_key)

    @property
    def consumer(self) -> ChecksumAddress:
        return self.address(self.consumer_key)

    @property
    def other_consumer(self) -> ChecksumAddress:
        return self.address(self.other_consumer_key)

    @property
    def provider(self) -> ChecksumAddress:
        return self.address(self.provider_key)


@pytest.fixture(scope="session")
def devchain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevChain]:
    try:
        binary = find_anvil()
    except AnvilNotFound as exc:
        pytest.fail(str(exc), pytrace=False)
    deployer, publisher, consumer, other, _, provider = ACCOUNT_KEYS[:6]
    with Anvil(binary=binary) as anvil, requests.Session() as session:
        w3 = Web3(Web3.HTTPProvider(anvil.url, session=session))
        deployment = deploy(w3, deployer)
        for key in (publisher, consumer, other):
            transfer_ocean(w3, deployment, deployer, DevChain.address(key), FUNDING)
        address_file = tmp_path_factory.mktemp("devchain") / "address.json"
        write_address_file(address_file, deployment)
        yield DevChain(
            url=anvil.url,
            w3=w3,
            deployment=deployment,
            address_file=address_file,
            deployer_key=deployer,
            publisher_key=publisher,
            consumer_key=consumer,
            other_consumer_key=other,
            provider_key=provider,
        )


def sign_provider_fee(
    provider_key: str,
    *,
    token: str,
    amount: int,
    provider_data: bytes,
    valid_until: int,
) -> ProviderFee:
    """A provider fee signed as ``ERC20Template._checkProviderFee`` verifies it: the EIP-191
    signature of keccak256(abi.encodePacked(data, provider, token, amount, validUntil))."""
    provider = Account.from_key(provider_key).address
    token = Web3.to_checksum_address(token)
    message = Web3.solidity_keccak(
        ["bytes", "address", "address", "uint256", "uint256"],
        [provider_data, provider, token, amount, valid_until],
    )
    signed = Account.sign_message(encode_defunct(primitive=message), private_key=provider_key)
    return {
        "providerFeeAddress": provider,
        "providerFeeToken": token,
        "providerFeeAmount": amount,
        "v": signed.v,
        "r": HexBytes(signed.r.to_bytes(32, "big")).to_0x_hex(),
        "s": HexBytes(signed.s.to_bytes(32, "big")).to_0x_hex(),
        "validUntil": valid_until,
        "providerData": HexBytes(provider_data).to_0x_hex(),
    }
