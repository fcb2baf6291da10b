"""Publish assets and order them, the way Ocean's clients (ocean.py, ocean.js) do.

For tests, the demo and the dev stack: each call is one signed transaction
(``contracts.transact``) from the key of the party who would send it.

An asset is a data NFT with a datatoken and a DDO (4.1.0) stored with
``setMetaData``: each service's ``files`` encrypted to the Provider's key as
``{"datatokenAddress", "nftAddress", "files"}``, the DDO itself compressed and
encrypted as its flags say, and its sha256 as ``metaDataHash``. ``encrypt`` is
any function from plain bytes to ``0x`` hex ciphertext: the Provider's
``POST /api/services/encrypt`` (``endpoint_encrypt``), as clients do, or the
Provider's key directly (``cipher_encrypt``). ``dataset_ddo`` and
``algorithm_ddo`` build sample DDOs to publish.
"""

from __future__ import annotations

import copy
import hashlib
import json
import lzma
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import requests
from eth_account import Account
from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from web3 import Web3
from web3.logs import DISCARD
from web3.types import TxReceipt

from ocean_provider.client import order, provider_fee_from_json
from ocean_provider.client.orders import ProviderFeeArgs
from ocean_provider.client.orders import provider_fee_args as client_fee_args
from ocean_provider.ddo.crypto import FLAG_ECIES, FLAG_LZMA, ProviderCipher, document_hash
from ocean_provider.ddo.dids import did_for
from ocean_provider.devnet.contracts import Deployment, contract_at, transact

ZERO_ADDRESS = "0x" + "0" * 40
MAX_UINT256 = 2**256 - 1


@dataclass(frozen=True)
class Published:
    nft: ChecksumAddress  # the data NFT (ERC721Template clone); token 1 is the publisher's
    datatoken: ChecksumAddress  # its datatoken (ERC20Template clone)


class ProviderFee(TypedDict):
    """A Provider's signed fee, as ``initializeCompute`` returns it in JSON."""

    providerFeeAddress: str
    providerFeeToken: str
    providerFeeAmount: int | str  # wei; some Providers send the integer as a string
    v: int
    r: str  # 0x + 32 bytes hex
    s: str
    validUntil: int | str
    providerData: str  # 0x hex of the bytes the Provider signed


def provider_fee_args(fee: ProviderFee) -> ProviderFeeArgs:
    """``fee`` (a Provider's JSON) as the contracts' ``providerFee`` tuple."""
    return client_fee_args(provider_fee_from_json(fee))


def publish_datatoken(
    w3: Web3,
    d: Deployment,
    publisher_key: str,
    *,
    name: str = "Sample",
    symbol: str = "SMPL",
    token_uri: str = "https://oceanprotocol.com/nft/",
    datatoken_name: str = "Datatoken 1",
    datatoken_symbol: str = "DT1",
    cap: int = MAX_UINT256,
) -> Published:
    """A data NFT owned by the publisher with one datatoken (template 1) whose minter and
    payment collector are the publisher; no publish-market fee."""
    publisher = Account.from_key(publisher_key).address
    nft_data = (name, symbol, 1, token_uri, True, publisher)
    erc_data: tuple[int, list[str], list[str], list[int], list[bytes]] = (
        1,
        [datatoken_name, datatoken_symbol],
        [publisher, publisher, ZERO_ADDRESS, ZERO_ADDRESS],  # minter, collector, market fee
        [cap, 0],
        [],
    )
    factory = contract_at(w3, "ERC721Factory", d.factory)
    receipt = transact(w3, publisher_key, factory.functions.createNftWithErc20(nft_data, erc_data))
    nfts = factory.events.NFTCreated().process_receipt(receipt, errors=DISCARD)
    tokens = factory.events.TokenCreated().process_receipt(receipt, errors=DISCARD)
    if len(nfts) != 1 or len(tokens) != 1:
        raise LookupError(
            f"createNftWithErc20 logged {len(nfts)} NFTCreated and {len(tokens)} TokenCreated"
        )
    return Published(
        nft=Web3.to_checksum_address(nfts[0]["args"]["newTokenAddress"]),
        datatoken=Web3.to_checksum_address(tokens[0]["args"]["newTokenAddress"]),
    )


def mint(w3: Web3, datatoken: str, minter_key: str, to: str, amount_wei: int) -> TxReceipt:
    dt = contract_at(w3, "ERC20Template", datatoken)
    return transact(w3, minter_key, dt.functions.mint(Web3.to_checksum_address(to), amount_wei))


def transfer_ocean(w3: Web3, d: Deployment, from_key: str, to: str, amount_wei: int) -> TxReceipt:
    ocean = contract_at(w3, "MockOcean", d.ocean)
    call = ocean.functions.transfer(Web3.to_checksum_address(to), amount_wei)
    return transact(w3, from_key, call)


def approve(w3: Web3, token: str, owner_key: str, spender: str, amount_wei: int) -> TxReceipt:
    """Set ``spender``'s allowance on ERC-20 ``token`` to ``amount_wei`` (not add to it)."""
    erc20 = contract_at(w3, "ERC20Template", token)
    call = erc20.functions.approve(Web3.to_checksum_address(spender), amount_wei)
    return transact(w3, owner_key, call)


def start_order(
    w3: Web3,
    datatoken: str,
    payer_key: str,
    *,
    consumer: str,
    service_index: int,
    provider_fee: ProviderFee,
) -> str:
    """Pay one datatoken for service ``service_index`` on behalf of ``consumer``, plus the
    provider fee; the order's transaction hash (0x hex), which the consumer hands to the
    Provider as ``transferTxId``. The consumer client's ``order``, with a JSON fee."""
    fee = provider_fee_from_json(provider_fee)
    return order(w3, payer_key, datatoken, fee, service_index=service_index, consumer=consumer)


def reuse_order(
    w3: Web3, datatoken: str, payer_key: str, *, order_tx: str, provider_fee: ProviderFee
) -> str:
    """Extend the order ``order_tx`` with a new provider fee (a new compute job on an order
    still valid); this transaction's hash (0x hex)."""
    fee = provider_fee_args(provider_fee)
    _approve_provider_fee(w3, datatoken, payer_key, fee)
    dt = contract_at(w3, "ERC20Template", datatoken)
    call = dt.functions.reuseOrder(bytes(HexBytes(order_tx)), fee)
    return transact(w3, payer_key, call)["transactionHash"].to_0x_hex()


def _approve_provider_fee(w3: Web3, datatoken: str, payer_key: str, fee: ProviderFeeArgs) -> None:
    """The datatoken pulls a non-zero provider fee from the payer with transferFrom."""
    token, amount = fee[1], fee[2]
    if amount > 0 and int(token, 16) != 0:
        approve(w3, token, payer_key, datatoken, amount)


# Assets: a data NFT, its datatoken and a DDO 4.1.0 on chain.

DDO_VERSION = "4.1.0"
SAMPLE_CONTAINER = {  # Ocean's sample algorithm container; the checksum pins the image
    "entrypoint": "python $ALGO",
    "image": "python",
    "tag": "3.11",
    "checksum": "sha256:" + hashlib.sha256(b"python:3.11").hexdigest(),
}
Encrypt = Callable[[bytes], str]  # plain bytes -> 0x hex ciphertext for the Provider's key


@dataclass(frozen=True)
class PublishedAsset:
    did: str
    nft: ChecksumAddress
    datatoken: ChecksumAddress
    ddo: dict[str, Any]  # as stored on chain: services' files encrypted
    tx: str  # the setMetaData transaction


def cipher_encrypt(cipher: ProviderCipher) -> Encrypt:
    """Encrypt to the Provider's key directly."""
    return lambda plain: "0x" + cipher.encrypt(plain).hex()


def endpoint_encrypt(
    provider_url: str,
    chain_id: int,
    *,
    session: requests.Session | None = None,
    timeout: float = 10.0,
) -> Encrypt:
    """Encrypt through the Provider's ``POST /api/services/encrypt?chainId=N``."""
    http = session or requests.Session()
    url = provider_url.rstrip("/") + "/api/services/encrypt"

    def encrypt(plain: bytes) -> str:
        reply = http.post(
            url,
            params={"chainId": chain_id},
            data=plain,
            headers={"Content-Type": "application/octet-stream"},
            timeout=timeout,
        )
        reply.raise_for_status()
        return reply.text.strip()

    return encrypt


def publish_asset(
    w3: Web3,
    deployment: Deployment,
    publisher_key: str,
    ddo_template: Mapping[str, Any],
    *,
    encrypt: Encrypt,
    flags: int = FLAG_LZMA | FLAG_ECIES,
    provider_url: str = "http://127.0.0.1:8030",
    provider_address: str = "",
    name: str = "Sample",
    symbol: str = "SMPL",
) -> PublishedAsset:
    """Publish ``ddo_template`` (its services' ``files`` in plain) as ocean.py does: a data
    NFT with one datatoken for every service, then ``setMetaData`` from the publisher."""
    published = publish_datatoken(w3, deployment, publisher_key, name=name, symbol=symbol)
    did = did_for(published.nft, deployment.chain_id)
    ddo = asset_ddo(
        ddo_template,
        did=did,
        chain_id=deployment.chain_id,
        nft=published.nft,
        datatoken=published.datatoken,
        encrypt=encrypt,
    )
    tx = set_metadata(
        w3,
        publisher_key,
        published.nft,
        ddo,
        encrypt=encrypt,
        flags=flags,
        decryptor_url=provider_url,
        decryptor_address=provider_address,
    )
    return PublishedAsset(did, published.nft, published.datatoken, ddo, tx)


def asset_ddo(
    template: Mapping[str, Any],
    *,
    did: str,
    chain_id: int,
    nft: str,
    datatoken: str,
    encrypt: Encrypt,
) -> dict[str, Any]:
    """``template`` as this asset's DDO: ``id``, ``nftAddress``, ``chainId``, each service's
    ``datatokenAddress``, and each service's ``files`` encrypted as DDO 4.1.0 binds them."""
    ddo = copy.deepcopy(dict(template))
    ddo.update(id=did, nftAddress=nft, chainId=chain_id)
    for service in ddo.get("services", []):
        service["datatokenAddress"] = datatoken
        bound = {"datatokenAddress": datatoken, "nftAddress": nft, "files": service["files"]}
        service["files"] = encrypt(_compact(bound))
    return ddo


def set_metadata(
    w3: Web3,
    publisher_key: str,
    nft: str,
    ddo: Mapping[str, Any],
    *,
    encrypt: Encrypt,
    flags: int = FLAG_LZMA | FLAG_ECIES,
    decryptor_url: str = "",
    decryptor_address: str = "",
    metadata_hash: bytes | None = None,
) -> str:
    """Store ``ddo`` on the NFT (state 0, active): compressed, then encrypted, as ``flags``
    say, with its sha256 (or ``metadata_hash``, to publish a wrong one). The tx hash."""
    document = _compact(ddo)
    data = lzma.compress(document) if flags & FLAG_LZMA else document
    if flags & FLAG_ECIES:
        data = bytes(HexBytes(encrypt(data)))
    digest = document_hash(document) if metadata_hash is None else metadata_hash
    call = contract_at(w3, "ERC721Template", nft).functions.setMetaData(
        0, decryptor_url, decryptor_address, bytes([flags]), data, digest, []
    )
    return transact(w3, publisher_key, call)["transactionHash"].to_0x_hex()


def set_metadata_state(w3: Web3, publisher_key: str, nft: str, state: int) -> str:
    """Set the NFT's metadata state (1 end of life, 2 deprecated, 3 revoked, 4 ordering
    disabled, 5 unlisted, 0 active again). The tx hash."""
    call = contract_at(w3, "ERC721Template", nft).functions.setMetaDataState(state)
    return transact(w3, publisher_key, call)["transactionHash"].to_0x_hex()


def url_file(url: str, method: str = "GET") -> dict[str, Any]:
    return {"type": "url", "url": url, "method": method}


def dataset_ddo(
    *,
    name: str,
    files: Sequence[Mapping[str, Any]],
    service_endpoint: str,
    allow_raw_algorithm: bool = False,
    allow_network_access: bool = False,
    trusted_algorithms: Sequence[Mapping[str, Any]] = (),
    trusted_publishers: Sequence[str] = (),
    timeout: int = 3600,
    created: str = "2024-01-01T00:00:00Z",
) -> dict[str, Any]:
    """A dataset with one compute service (id ``compute``), ready for ``publish_asset``."""
    service = _service("compute", "compute", files, service_endpoint, timeout)
    service["compute"] = {
        "allowRawAlgorithm": allow_raw_algorithm,
        "allowNetworkAccess": allow_network_access,
        "publisherTrustedAlgorithms": [dict(entry) for entry in trusted_algorithms],
        "publisherTrustedAlgorithmPublishers": list(trusted_publishers),
    }
    return _ddo(_metadata("dataset", name, created), [service])


def algorithm_ddo(
    *,
    name: str,
    files: Sequence[Mapping[str, Any]],
    service_endpoint: str,
    container: Mapping[str, str] = SAMPLE_CONTAINER,
    timeout: int = 3600,
    created: str = "2024-01-01T00:00:00Z",
) -> dict[str, Any]:
    """An algorithm with one access service (id ``access``), ready for ``publish_asset``."""
    metadata = _metadata("algorithm", name, created)
    metadata["algorithm"] = {"language": "python", "version": "0.1", "container": dict(container)}
    return _ddo(metadata, [_service("access", "access", files, service_endpoint, timeout)])


def trusted_algorithm(
    did: str, container: Mapping[str, str], contents: Sequence[bytes]
) -> dict[str, str]:
    """A ``publisherTrustedAlgorithms`` entry pinning an algorithm's files (``contents``, in
    order) and container, as the Provider computes both checksums."""
    files = "".join(hashlib.sha256(content).hexdigest() for content in contents)
    section = (container["entrypoint"] + container["checksum"]).encode()
    return {
        "did": did,
        "filesChecksum": files,
        "containerSectionChecksum": hashlib.sha256(section).hexdigest(),
    }


def _ddo(metadata: dict[str, Any], services: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "@context": ["https://w3id.org/did/v1"],
        "version": DDO_VERSION,
        "metadata": metadata,
        "services": services,
        "credentials": {"allow": [], "deny": []},
    }


def _metadata(kind: str, name: str, created: str) -> dict[str, Any]:
    return {
        "created": created,
        "updated": created,
        "type": kind,
        "name": name,
        "description": f"{name}: a sample {kind} published on the dev chain",
        "tags": ["sample"],
        "author": "ocean-provider devnet",
        "license": "CC0: PublicDomain",
        "additionalInformation": {},
    }


def _service(
    service_id: str,
    kind: str,
    files: Sequence[Mapping[str, Any]],
    endpoint: str,
    timeout: int,
) -> dict[str, Any]:
    return {
        "id": service_id,
        "type": kind,
        "name": f"{kind} service",
        "files": [dict(item) for item in files],
        "serviceEndpoint": endpoint,
        "timeout": timeout,
    }


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
