"""POST /decrypt against anvil: metadata a publisher stored with ``setMetaData``, read back.

The Provider is the real app (``create_app``) on the devchain, with ADDRESS_FILE naming
the factory that published the data NFTs. Each document is sealed for the provider's key
as its flags say, then decrypted by the transaction that stored it and as given in the
request; then each refusal the chain decides, by its code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from ocean_provider.app import create_app
from ocean_provider.auth.messages import decrypt_message
from ocean_provider.ddo.crypto import ProviderCipher, document_hash, seal_document
from ocean_provider.devnet.assets import mint, publish_datatoken
from ocean_provider.devnet.contracts import contract_at, deploy_contract, transact
from tests.conftest import Consumer, make_settings
from tests.devchain import DevChain

pytestmark = pytest.mark.integration

DECRYPT = "/api/services/decrypt"
DDO = b'{"@context": ["https://w3id.org/did/v1"], "id": "did:op:c0ffee", "version": "4.1.0"}'
UNKNOWN_TX = "0x" + "5e" * 32


@pytest.fixture
def client(tmp_path: Path, devchain: DevChain) -> FlaskClient:
    settings = make_settings(
        tmp_path,
        NETWORK_URL=devchain.url,
        PROVIDER_PRIVATE_KEY=devchain.provider_key,
        ADDRESS_FILE=str(devchain.address_file),
        ORDER_WAIT="0.3",
    )
    return create_app(settings).test_client()


@pytest.fixture
def decrypter(devchain: DevChain) -> Consumer:
    return Consumer(devchain.consumer_key)


def publish(chain: DevChain) -> str:
    """A fresh data NFT from the factory, owned by the publisher (state changes stay its own)."""
    return publish_datatoken(chain.w3, chain.deployment, chain.publisher_key).nft


def sealed(chain: DevChain, plain: bytes, flags: int) -> bytes:
    return seal_document(ProviderCipher(chain.provider_key), plain, flags)


def set_metadata(
    chain: DevChain, nft: str, plain: bytes, flags: int, *, digest: bytes | None = None
) -> str:
    """``setMetaData`` from the publisher, as ocean.py and ocean.js publish; its tx hash."""
    call = contract_at(chain.w3, "ERC721Template", nft).functions.setMetaData(
        0,  # active
        "http://provider.test",
        chain.provider,
        bytes([flags]),
        sealed(chain, plain, flags),
        digest or document_hash(plain),
        [],
    )
    return transact(chain.w3, chain.publisher_key, call)["transactionHash"].to_0x_hex()


def set_state(chain: DevChain, nft: str, state: int) -> None:
    call = contract_at(chain.w3, "ERC721Template", nft).functions.setMetaDataState(state)
    transact(chain.w3, chain.publisher_key, call)


def decrypt(
    client: FlaskClient, decrypter: Consumer, chain: DevChain, nft: str, **fields: Any
) -> TestResponse:
    body: dict[str, Any] = {
        "decrypterAddress": decrypter.address,
        "chainId": chain.deployment.chain_id,
        "dataNftAddress": nft,
        **fields,
    }
    nonce = decrypter.nonce()
    message = decrypt_message(
        decrypter.address, body["chainId"], body.get("transactionId"), body["dataNftAddress"]
    )
    body.update(nonce=nonce, signature=decrypter.sign(message, nonce))
    return client.post(DECRYPT, json=body)


def given(chain: DevChain, plain: bytes, flags: int, digest: bytes | None = None) -> Any:
    return {
        "encryptedDocument": "0x" + sealed(chain, plain, flags).hex(),
        "flags": flags,
        "documentHash": "0x" + (digest or document_hash(plain)).hex(),
    }


def refused(reply: TestResponse) -> tuple[int, str]:
    return reply.status_code, reply.get_json()["code"]


@pytest.mark.parametrize("flags", [0, 1, 2, 3])
def test_decrypt_by_transaction_and_as_given(
    client: FlaskClient, devchain: DevChain, decrypter: Consumer, flags: int
) -> None:
    nft = publish(devchain)
    tx = set_metadata(devchain, nft, DDO, flags)
    by_tx = decrypt(client, decrypter, devchain, nft, transactionId=tx)
    assert by_tx.status_code == 201, by_tx.get_json()
    assert by_tx.content_type == "text/plain"
    assert by_tx.get_data() == DDO
    as_given = decrypt(client, decrypter, devchain, nft, **given(devchain, DDO, flags))
    assert (as_given.status_code, as_given.get_data()) == (201, DDO)


def test_an_update_is_read_from_its_own_transaction(
    client: FlaskClient, devchain: DevChain, decrypter: Consumer
) -> None:
    nft = publish(devchain)
    created = set_metadata(devchain, nft, DDO, 3)
    updated_ddo = DDO.replace(b"4.1.0", b"4.3.0")
    updated = set_metadata(devchain, nft, updated_ddo, 2)  # MetadataUpdated
    assert (
        decrypt(client, decrypter, devchain, nft, transactionId=updated).get_data() == updated_ddo
    )
    assert decrypt(client, decrypter, devchain, nft, transactionId=created).get_data() == DDO


def test_a_wrong_hash_is_refused(
    client: FlaskClient, devchain: DevChain, decrypter: Consumer
) -> None:
    nft = publish(devchain)
    wrong = document_hash(b"another document")
    tx = set_metadata(devchain, nft, DDO, 3, digest=wrong)
    by_tx = decrypt(client, decrypter, devchain, nft, transactionId=tx)
    assert refused(by_tx) == (400, "checksum_mismatch")
    assert by_tx.get_json()["error"] == "Checksum doesn't match."
    as_given = decrypt(client, decrypter, devchain, nft, **given(devchain, DDO, 1, wrong))
    assert refused(as_given) == (400, "checksum_mismatch")


def test_an_nft_the_factory_did_not_create_is_refused(
    client: FlaskClient, devchain: DevChain, decrypter: Consumer
) -> None:
    template, _ = deploy_contract(devchain.w3, devchain.publisher_key, "ERC721Template")
    published = publish_datatoken(devchain.w3, devchain.deployment, devchain.publisher_key)
    for address in (template.address, published.datatoken, devchain.consumer):
        reply = decrypt(client, decrypter, devchain, address, **given(devchain, DDO, 0))
        assert refused(reply) == (400, "nft_not_from_factory")
        assert reply.get_json()["error"] == "Asset not deployed by the data NFT factory."


@pytest.mark.parametrize(
    ("state", "status", "code", "error"),
    [
        (1, 403, "asset_end_of_life", "Asset end of life"),
        (2, 403, "asset_deprecated", "Asset deprecated"),
        (3, 403, "asset_revoked", "Asset revoked"),
    ],
)
def test_closed_assets_are_refused_until_reopened(
    client: FlaskClient,
    devchain: DevChain,
    decrypter: Consumer,
    state: int,
    status: int,
    code: str,
    error: str,
) -> None:
    nft = publish(devchain)
    tx = set_metadata(devchain, nft, DDO, 2)
    set_state(devchain, nft, state)
    reply = decrypt(client, decrypter, devchain, nft, transactionId=tx)
    assert refused(reply) == (status, code)
    assert reply.get_json()["error"] == error
    set_state(devchain, nft, 5)  # unlisted: readable again, the state is read each time
    assert decrypt(client, decrypter, devchain, nft, transactionId=tx).get_data() == DDO


def test_transactions_without_the_nfts_metadata_are_refused(
    client: FlaskClient, devchain: DevChain, decrypter: Consumer
) -> None:
    published = publish_datatoken(devchain.w3, devchain.deployment, devchain.publisher_key)
    minted = mint(devchain.w3, published.datatoken, devchain.publisher_key, devchain.consumer, 1)[
        "transactionHash"
    ].to_0x_hex()
    reply = decrypt(client, decrypter, devchain, published.nft, transactionId=minted)
    assert refused(reply) == (400, "metadata_event_not_found")
    assert reply.get_json()["error"].startswith("Failed to process transaction id.")
    elsewhere = set_metadata(devchain, publish(devchain), DDO, 0)  # another NFT's metadata
    reply = decrypt(client, decrypter, devchain, published.nft, transactionId=elsewhere)
    assert refused(reply) == (400, "metadata_event_not_found")
    reply = decrypt(client, decrypter, devchain, published.nft, transactionId=UNKNOWN_TX)
    assert refused(reply) == (400, "transaction_not_found")


def test_encrypt_then_publish_then_decrypt(
    client: FlaskClient, devchain: DevChain, decrypter: Consumer
) -> None:
    """What ocean.js does: /encrypt the DDO, store the ciphertext with flags 2, and what
    Aquarius then does: /decrypt it by the transaction."""
    chain_id = devchain.deployment.chain_id
    reply = client.post(
        f"/api/services/encrypt?chainId={chain_id}",
        data=DDO,
        content_type="application/octet-stream",
    )
    assert reply.status_code == 201
    nft = publish(devchain)
    call = contract_at(devchain.w3, "ERC721Template", nft).functions.setMetaData(
        0,
        "http://provider.test",
        devchain.provider,
        bytes([2]),
        bytes.fromhex(reply.get_data(as_text=True)[2:]),
        document_hash(DDO),
        [],
    )
    tx = transact(devchain.w3, devchain.publisher_key, call)["transactionHash"].to_0x_hex()
    assert decrypt(client, decrypter, devchain, nft, transactionId=tx).get_data() == DDO
