"""POST /encrypt and /decrypt through Flask's test client, without a chain.

Decrypt runs the real ``ChainDocuments`` over ``FakeNfts``, which answers the three chain
reads it makes (factory list, metadata state, receipt); anvil runs the same checks for real
in tests/chain/test_documents.py. Each refusal is a row with its status and code.
"""

from __future__ import annotations

import lzma
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import encode
from flask import Flask
from flask.testing import FlaskClient

from ocean_provider.app import create_app
from ocean_provider.auth.messages import decrypt_message
from ocean_provider.chain.events import event
from ocean_provider.chain.reads import Receipt, ReceiptMissing, ReceiptUnconfirmed
from ocean_provider.config import ProviderSettings
from ocean_provider.ddo.crypto import ProviderCipher, document_hash, seal_document
from ocean_provider.ddo.documents import ChainDocuments
from tests.conftest import CHAIN_ID, PROVIDER_KEY, Consumer, make_settings

ENCRYPT = "/api/services/encrypt"
DECRYPT = "/api/services/decrypt"
OCTET = "application/octet-stream"
FACTORY = "0x" + "f" * 40
NFT = "0x" + "ab" * 20
OTHER_NFT = "0x" + "cd" * 20
ZERO = "0x" + "0" * 40
TX_OK = "0x" + "11" * 32
DOCUMENT = b'{"@context": ["https://w3id.org/did/v1"], "id": "did:op:1", "version": "4.1.0"}'
CIPHER = ProviderCipher(PROVIDER_KEY)


class FakeNfts:
    """The chain as decrypt reads it: NFTs the factory made, their states, receipts."""

    def __init__(self) -> None:
        self.from_factory = {NFT.lower()}
        self.states: dict[str, int] = {}
        self.receipts: dict[str, Receipt | Exception] = {}
        self.reads = 0

    def erc721_list(self, chain_id: int, factory: str, nft: str) -> str:
        self.reads += 1
        assert factory == FACTORY
        return nft if nft.lower() in self.from_factory else ZERO

    def metadata_state(self, chain_id: int, nft: str) -> int:
        self.reads += 1
        return self.states.get(nft.lower(), 0)

    def receipt(self, chain_id: int, tx_id: str) -> Receipt:
        self.reads += 1
        found = self.receipts[tx_id]
        if isinstance(found, Exception):
            raise found
        return found


def metadata_log(
    emitter: str, data: bytes, flags: bytes, digest: bytes, name: str = "MetadataCreated"
) -> dict[str, Any]:
    """A raw log of ``setMetaData`` as a receipt carries it."""
    spec = event(name, "ERC721Template")
    values = {
        "state": 0,
        "decryptorUrl": "http://provider.test",
        "flags": flags,
        "data": data,
        "metaDataHash": digest,
        "timestamp": 1700000000,
        "blockNumber": 7,
    }
    publisher = bytes(12) + bytes.fromhex("12" * 20)
    return {
        "address": emitter,
        "topics": [spec.topic, publisher],
        "data": encode([kind for _, kind in spec.data], [values[n] for n, _ in spec.data]),
    }


def receipt(*logs: Mapping[str, Any], status: int = 1) -> dict[str, Any]:
    return {"status": status, "blockNumber": 7, "logs": list(logs)}


@pytest.fixture
def nfts() -> FakeNfts:
    return FakeNfts()


def documents_app(settings: ProviderSettings, nfts: FakeNfts, *decrypters: str) -> Flask:
    documents = ChainDocuments(
        nfts,
        ciphers={CHAIN_ID: ProviderCipher(PROVIDER_KEY)},
        factories={CHAIN_ID: FACTORY},
        decrypters=decrypters,
    )
    return create_app(settings, documents=documents)


@pytest.fixture
def client(settings: ProviderSettings, nfts: FakeNfts) -> FlaskClient:
    return documents_app(settings, nfts).test_client()


def stored_nonce(client: FlaskClient, address: str) -> Any:
    return client.application.extensions["ocean_provider"].auth.nonces.current(address)


def signed(decrypter: Consumer, **fields: Any) -> dict[str, Any]:
    """A decrypt body signed as the reference and Aquarius sign it."""
    body: dict[str, Any] = {
        "decrypterAddress": decrypter.address,
        "chainId": CHAIN_ID,
        "dataNftAddress": NFT,
        **fields,
    }
    nonce = decrypter.nonce()
    message = decrypt_message(
        body["decrypterAddress"], body["chainId"], body.get("transactionId"), body["dataNftAddress"]
    )
    return {**body, "nonce": nonce, "signature": decrypter.sign(message, nonce)}


def by_document(plain: bytes = DOCUMENT, flags: int = 3, digest: bytes | None = None) -> Any:
    return {
        "encryptedDocument": "0x" + seal_document(CIPHER, plain, flags).hex(),
        "flags": flags,
        "documentHash": "0x" + (digest or document_hash(plain)).hex(),
    }


# --- encrypt ------------------------------------------------------------------------------


def test_root_lists_encrypt_and_decrypt(client: FlaskClient) -> None:
    endpoints = client.get("/").get_json()["serviceEndpoints"]
    assert endpoints["encrypt"] == ["POST", ENCRYPT]
    assert endpoints["decrypt"] == ["POST", DECRYPT]


@pytest.mark.parametrize("body", [DOCUMENT, b"", bytes(range(256)) * 8])
def test_encrypt_round_trip(client: FlaskClient, body: bytes) -> None:
    reply = client.post(f"{ENCRYPT}?chainId={CHAIN_ID}", data=body, content_type=OCTET)
    assert reply.status_code == 201
    assert reply.content_type == "text/plain"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    text = reply.get_data(as_text=True)
    assert text.startswith("0x")
    assert CIPHER.decrypt(bytes.fromhex(text[2:])) == body


def test_encrypt_accepts_content_type_parameters(client: FlaskClient) -> None:
    reply = client.post(
        f"{ENCRYPT}?chainId={CHAIN_ID}", data=b"x", content_type=f"{OCTET}; charset=binary"
    )
    assert reply.status_code == 201


@pytest.mark.parametrize(
    ("query", "content_type", "status", "code", "error"),
    [
        (f"chainId={CHAIN_ID}", "application/json", 400, "invalid_request",
         "Invalid request content type: should be application/octet-stream"),
        (f"chainId={CHAIN_ID}&Content-Type={OCTET}", "text/plain", 400, "invalid_request",
         "Invalid request content type: should be application/octet-stream"),
        (f"chainId={CHAIN_ID}", None, 400, "invalid_request",
         "Invalid request content type: should be application/octet-stream"),
        ("", OCTET, 400, "invalid_request", "Missing chainId query parameter."),
        ("chainId=", OCTET, 400, "invalid_request", "Missing chainId query parameter."),
        ("chainId=abc", OCTET, 400, "invalid_request", None),
        ("chainId=0", OCTET, 400, "invalid_request", None),
        ("chainId=1", OCTET, 400, "chain_not_supported", None),
    ],
)  # fmt: skip
def test_encrypt_refusals(
    client: FlaskClient,
    query: str,
    content_type: str | None,
    status: int,
    code: str,
    error: str | None,
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    reply = client.post(f"{ENCRYPT}?{query}", data=b"doc", headers=headers)
    assert (reply.status_code, reply.get_json()["code"]) == (status, code)
    if error is not None:
        assert reply.get_json()["error"] == error
    if code == "invalid_request":
        field = "chainId" if content_type == OCTET else "Content-Type"
        assert list(reply.get_json()["errors"]) == [field]


def test_encrypt_body_over_the_cap_is_413(tmp_path: Path, nfts: FakeNfts) -> None:
    client = documents_app(make_settings(tmp_path, MAX_REQUEST_BYTES="1024"), nfts).test_client()
    reply = client.post(f"{ENCRYPT}?chainId={CHAIN_ID}", data=b"x" * 2048, content_type=OCTET)
    assert reply.status_code == 413


# --- decrypt: documents given in the request and from a transaction -----------------------


@pytest.mark.parametrize("flags", [0, 1, 2, 3])
def test_decrypt_a_given_document(client: FlaskClient, consumer: Consumer, flags: int) -> None:
    reply = client.post(DECRYPT, json=signed(consumer, **by_document(flags=flags)))
    assert reply.status_code == 201, reply.get_json()
    assert reply.content_type == "text/plain"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.get_data() == DOCUMENT


@pytest.mark.parametrize("name", ["MetadataCreated", "MetadataUpdated"])
@pytest.mark.parametrize("flags", [b"\x00", b"\x01", b"\x02", b"\x03", b""])
def test_decrypt_from_a_transaction(
    client: FlaskClient, nfts: FakeNfts, consumer: Consumer, name: str, flags: bytes
) -> None:
    sealed = seal_document(CIPHER, DOCUMENT, flags[0] if flags else 0)
    log = metadata_log(NFT, sealed, flags, document_hash(DOCUMENT), name)
    nfts.receipts[TX_OK] = receipt(log)
    reply = client.post(DECRYPT, json=signed(consumer, transactionId=TX_OK))
    assert reply.status_code == 201, reply.get_json()
    assert reply.get_data() == DOCUMENT


def test_decrypt_prefers_the_nfts_created_event(
    client: FlaskClient, nfts: FakeNfts, consumer: Consumer
) -> None:
    """As the reference: MetadataCreated before MetadataUpdated; other emitters never count."""
    other = b"another document"
    nfts.receipts[TX_OK] = receipt(
        metadata_log(OTHER_NFT, other, b"\x00", document_hash(other)),
        metadata_log(NFT, other, b"\x00", document_hash(other), "MetadataUpdated"),
        metadata_log(NFT, DOCUMENT, b"\x00", document_hash(DOCUMENT)),
    )
    reply = client.post(DECRYPT, json=signed(consumer, transactionId=TX_OK))
    assert reply.get_data() == DOCUMENT


def test_temporarily_disabled_and_unlisted_assets_decrypt(
    client: FlaskClient, nfts: FakeNfts, consumer: Consumer
) -> None:
    for state in (4, 5):
        nfts.states[NFT.lower()] = state
        reply = client.post(DECRYPT, json=signed(consumer, **by_document()))
        assert reply.status_code == 201


# --- decrypt: shape errors are refused before the nonce is spent --------------------------


def _without(field: str) -> Callable[[dict[str, Any]], None]:
    return lambda body: body.pop(field)


def _set(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda body: body.update({field: value})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (_without("decrypterAddress"), "decrypterAddress"),
        (_set("decrypterAddress", "0x1234"), "decrypterAddress"),
        (_without("chainId"), "chainId"),
        (_set("chainId", "eight"), "chainId"),
        (_without("dataNftAddress"), "dataNftAddress"),
        (_set("dataNftAddress", "nft"), "dataNftAddress"),
        (_without("nonce"), "nonce"),
        (_set("nonce", "-1"), "nonce"),
        (_set("signature", "0x" + "ab" * 300), "signature"),
        (_without("encryptedDocument"), "body"),
        (_without("flags"), "body"),
        (_without("documentHash"), "body"),
        (_set("encryptedDocument", "0xnothex"), "encryptedDocument"),
        (_set("encryptedDocument", "0xabc"), "encryptedDocument"),
        (_set("flags", 256), "flags"),
        (_set("flags", -1), "flags"),
        (_set("documentHash", "0x" + "ab" * 31), "documentHash"),
        (_set("transactionId", "0x1234"), "transactionId"),
    ],
)
def test_decrypt_shape_errors_keep_the_nonce(
    client: FlaskClient,
    nfts: FakeNfts,
    consumer: Consumer,
    change: Callable[[dict[str, Any]], None],
    field: str,
) -> None:
    body = signed(consumer, **by_document())
    change(body)
    reply = client.post(DECRYPT, json=body)
    assert (reply.status_code, reply.get_json()["code"]) == (400, "invalid_request")
    assert field in reply.get_json()["errors"]
    assert stored_nonce(client, consumer.address) is None
    assert nfts.reads == 0


def test_decrypt_signature_errors_keep_the_nonce(
    client: FlaskClient, consumer: Consumer, other: Consumer
) -> None:
    unsigned = signed(consumer, **by_document())
    del unsigned["signature"]
    reply = client.post(DECRYPT, json=unsigned)
    assert (reply.status_code, reply.get_json()["code"]) == (400, "signature_missing")
    forged = {**signed(other, **by_document()), "decrypterAddress": consumer.address}
    reply = client.post(DECRYPT, json=forged)
    assert (reply.status_code, reply.get_json()["code"]) == (400, "signature_invalid")
    assert stored_nonce(client, consumer.address) is None


def test_decrypt_signs_the_transaction_id_when_given(
    client: FlaskClient, nfts: FakeNfts, consumer: Consumer
) -> None:
    """With a transactionId the message starts with it, not with the NFT's address."""
    nfts.receipts[TX_OK] = receipt(metadata_log(NFT, DOCUMENT, b"\x00", document_hash(DOCUMENT)))
    body = signed(consumer, **by_document())  # signed over the NFT address
    reply = client.post(DECRYPT, json={**body, "transactionId": TX_OK})
    assert reply.get_json()["code"] == "signature_invalid"


def test_a_signed_decrypt_is_accepted_once(client: FlaskClient, consumer: Consumer) -> None:
    body = signed(consumer, **by_document())
    assert client.post(DECRYPT, json=body).status_code == 201
    again = client.post(DECRYPT, json=body)
    assert (again.status_code, again.get_json()["code"]) == (400, "nonce_too_low")


# --- decrypt: refusals after authentication -----------------------------------------------


def test_unauthorized_decrypter_is_403(
    settings: ProviderSettings, nfts: FakeNfts, consumer: Consumer, other: Consumer
) -> None:
    client = documents_app(settings, nfts, other.address.lower()).test_client()
    reply = client.post(DECRYPT, json=signed(consumer, **by_document()))
    assert reply.status_code == 403
    assert reply.get_json() == {
        "error": "Decrypter not authorized",
        "code": "decrypter_not_authorized",
    }
    assert nfts.reads == 0
    assert client.post(DECRYPT, json=signed(other, **by_document())).status_code == 201


def test_unauthorized_decrypter_is_403_with_the_real_wiring(
    tmp_path: Path, consumer: Consumer, other: Consumer
) -> None:
    """AUTHORIZED_DECRYPTERS is checked before any chain call (no chain runs here)."""
    settings = make_settings(tmp_path, AUTHORIZED_DECRYPTERS=f'["{other.address}"]')
    reply = create_app(settings).test_client().post(DECRYPT, json=signed(consumer, **by_document()))
    assert (reply.status_code, reply.get_json()["code"]) == (403, "decrypter_not_authorized")


def test_a_provider_without_a_factory_address_refuses_clearly(
    settings: ProviderSettings, consumer: Consumer
) -> None:
    reply = create_app(settings).test_client().post(DECRYPT, json=signed(consumer, **by_document()))
    assert (reply.status_code, reply.get_json()["code"]) == (400, "factory_unknown")
    assert "ADDRESS_FILE" in reply.get_json()["error"]
    assert f"chain {CHAIN_ID}" in reply.get_json()["error"]


def _state(value: int) -> Callable[[FakeNfts], None]:
    return lambda nfts: nfts.states.update({NFT.lower(): value})


def _receipt(found: Receipt | Exception) -> Callable[[FakeNfts], None]:
    return lambda nfts: nfts.receipts.update({TX_OK: found})


GOOD_LOG = metadata_log(NFT, DOCUMENT, b"\x00", document_hash(DOCUMENT))
REFUSALS = [
    # (what the chain says, the request's fields, status, code, error)
    (None, {"dataNftAddress": OTHER_NFT}, 400, "nft_not_from_factory",
     "Asset not deployed by the data NFT factory."),
    (None, {"chainId": 1}, 400, "chain_not_supported", None),
    (_state(1), {}, 403, "asset_end_of_life", "Asset end of life"),
    (_state(2), {}, 403, "asset_deprecated", "Asset deprecated"),
    (_state(3), {}, 403, "asset_revoked", "Asset revoked"),
    (_state(6), {}, 400, "invalid_metadata_state", "Invalid MetadataState"),
    (None, by_document(digest=b"\x01" * 32), 400, "checksum_mismatch", "Checksum doesn't match."),
    (None, {**by_document(flags=0), "flags": 2}, 400, "decrypt_failed", "Failed to decrypt."),
    (None, {**by_document(flags=2), "flags": 3}, 400, "decompress_failed", None),
    (_receipt(ReceiptMissing(pending=False)), {"transactionId": TX_OK}, 400,
     "transaction_not_found", None),
    (_receipt(ReceiptMissing(pending=True)), {"transactionId": TX_OK}, 400,
     "transaction_pending", None),
    (_receipt(ReceiptUnconfirmed()), {"transactionId": TX_OK}, 400,
     "transaction_unconfirmed", None),
    (_receipt(receipt(GOOD_LOG, status=0)), {"transactionId": TX_OK}, 400,
     "transaction_failed", None),
    (_receipt(receipt()), {"transactionId": TX_OK}, 400, "metadata_event_not_found", None),
    (_receipt(receipt({**GOOD_LOG, "address": OTHER_NFT})), {"transactionId": TX_OK}, 400,
     "metadata_event_not_found", None),
    (_receipt(receipt({**GOOD_LOG, "data": b"\x00" * 5})), {"transactionId": TX_OK}, 400,
     "metadata_event_not_found", None),
    (_receipt(receipt(metadata_log(NFT, DOCUMENT, b"\x00", b"\x02" * 32))),
     {"transactionId": TX_OK}, 400, "checksum_mismatch", "Checksum doesn't match."),
]  # fmt: skip


@pytest.mark.parametrize(("chain", "fields", "status", "code", "error"), REFUSALS)
def test_decrypt_refusals(
    client: FlaskClient,
    nfts: FakeNfts,
    consumer: Consumer,
    chain: Callable[[FakeNfts], None] | None,
    fields: dict[str, Any],
    status: int,
    code: str,
    error: str | None,
) -> None:
    if chain is not None:
        chain(nfts)
    body = fields if "transactionId" in fields else {**by_document(), **fields}
    reply = client.post(DECRYPT, json=signed(consumer, **body))
    assert (reply.status_code, reply.get_json()["code"]) == (status, code), reply.get_json()
    if error is not None:
        assert reply.get_json()["error"] == error
    assert stored_nonce(client, consumer.address) is not None  # authenticated, then refused


def test_a_decompression_bomb_is_refused(client: FlaskClient, consumer: Consumer) -> None:
    bomb = lzma.compress(b"\x00" * (9 << 20))
    body = {"encryptedDocument": "0x" + bomb.hex(), "flags": 1, "documentHash": "0x" + "00" * 32}
    reply = client.post(DECRYPT, json=signed(consumer, **body))
    assert (reply.status_code, reply.get_json()["code"]) == (400, "decompress_failed")
