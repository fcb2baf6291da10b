"""Deploy Ocean's contracts (the ``ocean-contracts`` artifacts) to a local chain, and write
the address file Ocean's tools read (``ADDRESS_FILE``, the ``development`` network).

Every transaction is signed here with a local key and sent raw, as a wallet
would; nothing relies on the node holding keys.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from eth_account import Account
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.types import TxParams, TxReceipt

from ocean_provider.chain.artifacts import abi, bytecode

GAS_MARGIN = 1.2  # on top of the node's estimate
GAS_CAP = 15_000_000  # half of anvil's block gas limit; the largest deployment needs ~5.3M
RECEIPT_TIMEOUT = 30.0


class TransactionReverted(RuntimeError):
    """A transaction was mined with status 0 (or its receipt carries no status 1)."""


class Transactable(Protocol):
    """A contract call or constructor, bound to its arguments (web3's ``ContractFunction``
    or ``ContractConstructor``)."""

    def build_transaction(self, transaction: TxParams | None = None) -> TxParams: ...

    def estimate_gas(self, transaction: TxParams | None = None) -> int: ...


def transact(
    w3: Web3, key: str, call: Transactable, *, timeout: float = RECEIPT_TIMEOUT
) -> TxReceipt:
    """Sign ``call`` with ``key``, send it raw, wait for its receipt; raise unless status 1.

    A call the node already knows will revert raises web3's ``ContractLogicError``
    (with the revert reason) while estimating gas, before anything is sent.
    """
    sender = Account.from_key(key).address
    estimate = call.estimate_gas({"from": sender})
    tx = call.build_transaction(
        {
            "from": sender,
            "nonce": w3.eth.get_transaction_count(sender, "pending"),
            "gas": min(int(estimate * GAS_MARGIN), GAS_CAP),
        }
    )
    signed = Account.sign_transaction(dict(tx), key)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout)
    if receipt.get("status") != 1:
        raise TransactionReverted(
            f"transaction {tx_hash.to_0x_hex()} from {sender} reverted "
            f"(gas used {receipt['gasUsed']} of {tx['gas']})"
        )
    return receipt


def contract_at(w3: Web3, name: str, address: str) -> Contract:
    """The deployed contract ``name`` (an ocean-contracts artifact) at ``address``."""
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi(name))


def deploy_contract(w3: Web3, key: str, name: str, *args: Any) -> tuple[Contract, TxReceipt]:
    """Deploy artifact ``name`` with constructor ``args``; the contract and its receipt."""
    undeployed = w3.eth.contract(abi=abi(name), bytecode=bytecode(name))
    receipt = transact(w3, key, undeployed.constructor(*args))
    address = receipt["contractAddress"]
    if address is None:
        raise TransactionReverted(f"deploying {name} created no contract")
    return contract_at(w3, name, address), receipt


@dataclass(frozen=True)
class Deployment:
    """Where Ocean's contracts live on one chain (checksummed addresses)."""

    chain_id: int
    ocean: ChecksumAddress
    opc_collector: ChecksumAddress
    router: ChecksumAddress
    factory: ChecksumAddress
    erc721_template: ChecksumAddress
    erc20_template: ChecksumAddress
    fixed_rate: ChecksumAddress
    dispenser: ChecksumAddress
    start_block: int  # the factory's deployment: nothing of Ocean's happens before it


def deploy(w3: Web3, deployer_key: str, *, opc_collector: str | None = None) -> Deployment:
    """Ocean's contracts as barge deploys them, with a mock OCEAN (all 1e28 to the deployer).

    Without ``opc_collector``, an ``OPFCommunityFeeCollector`` owned by the
    deployer collects the Ocean Protocol Community fees.
    """
    deployer = Account.from_key(deployer_key).address
    ocean, _ = deploy_contract(w3, deployer_key, "MockOcean", deployer)
    if opc_collector is None:
        collector, _ = deploy_contract(
            w3, deployer_key, "OPFCommunityFeeCollector", deployer, deployer
        )
        opc_collector = collector.address
    opc = Web3.to_checksum_address(opc_collector)
    erc721, _ = deploy_contract(w3, deployer_key, "ERC721Template")
    erc20, _ = deploy_contract(w3, deployer_key, "ERC20Template")
    # The pool template must be non-zero; pools are retired, so any address does.
    router, _ = deploy_contract(
        w3, deployer_key, "FactoryRouter", deployer, ocean.address, opc, opc, []
    )
    factory, factory_receipt = deploy_contract(
        w3, deployer_key, "ERC721Factory", erc721.address, erc20.address, router.address
    )
    transact(w3, deployer_key, router.functions.addFactory(factory.address))
    fixed_rate, _ = deploy_contract(w3, deployer_key, "FixedRateExchange", router.address)
    transact(w3, deployer_key, router.functions.addFixedRateContract(fixed_rate.address))
    dispenser, _ = deploy_contract(w3, deployer_key, "Dispenser", router.address)
    transact(w3, deployer_key, router.functions.addDispenserContract(dispenser.address))
    return Deployment(
        chain_id=w3.eth.chain_id,
        ocean=ocean.address,
        opc_collector=opc,
        router=router.address,
        factory=factory.address,
        erc721_template=erc721.address,
        erc20_template=erc20.address,
        fixed_rate=fixed_rate.address,
        dispenser=dispenser.address,
        start_block=factory_receipt["blockNumber"],
    )


def address_file_entry(d: Deployment) -> dict[str, Any]:
    """One network's entry, as in the ocean-contracts package's ``addresses/address.json``."""
    return {
        "chainId": d.chain_id,
        "Ocean": d.ocean,
        "OPFCommunityFeeCollector": d.opc_collector,
        "startBlock": d.start_block,
        "Router": d.router,
        "FixedPrice": d.fixed_rate,
        "ERC20Template": {"1": d.erc20_template},
        "ERC721Template": {"1": d.erc721_template},
        "Dispenser": d.dispenser,
        "ERC721Factory": d.factory,
    }


def deployment_from_entry(entry: dict[str, Any]) -> Deployment:
    """The inverse of ``address_file_entry``."""
    return Deployment(
        chain_id=int(entry["chainId"]),
        ocean=Web3.to_checksum_address(entry["Ocean"]),
        opc_collector=Web3.to_checksum_address(entry["OPFCommunityFeeCollector"]),
        router=Web3.to_checksum_address(entry["Router"]),
        factory=Web3.to_checksum_address(entry["ERC721Factory"]),
        erc721_template=Web3.to_checksum_address(entry["ERC721Template"]["1"]),
        erc20_template=Web3.to_checksum_address(entry["ERC20Template"]["1"]),
        fixed_rate=Web3.to_checksum_address(entry["FixedPrice"]),
        dispenser=Web3.to_checksum_address(entry["Dispenser"]),
        start_block=int(entry["startBlock"]),
    )


def write_address_file(path: Path, d: Deployment, network: str = "development") -> None:
    """Set ``network``'s entry in the address file at ``path``, keeping its other networks;
    written to a temporary file beside it, then renamed over it."""
    networks: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    networks[network] = address_file_entry(d)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(networks, out, indent=2)
            out.write("\n")
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def read_address_file(path: Path, network: str = "development") -> Deployment:
    entry: dict[str, Any] = json.loads(path.read_text())[network]
    return deployment_from_entry(entry)
