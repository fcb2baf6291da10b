"""Raw JSON-RPC for reads web3's formatters would make slow: batches, logs and receipts as
plain values (a receipt's formatting checksums every address and wraps every field).

Every call goes through ``Chains.call``: bounded retries, no RPC URL in any error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from web3 import Web3
from web3.providers.base import JSONBaseProvider
from web3.types import RPCEndpoint

from ocean_provider.chain.rpc import Chains

RpcCall = tuple[str, list[Any]]


@dataclass(frozen=True)
class RpcError:
    """The node's error reply to one call (a revert, a refused block range)."""

    code: object
    message: str


def rpc_batch(chains: Chains, chain_id: int, step: str, calls: Sequence[RpcCall]) -> list[Any]:
    """Send ``calls`` as one JSON-RPC batch through ``Chains.call`` (bounded retries, no URL
    in errors): each call's raw result, or an ``RpcError``. A node that refuses batches
    gets the calls one by one."""
    return chains.call(chain_id, step, lambda w3: _send(w3, calls))


def _send(w3: Web3, calls: Sequence[RpcCall]) -> list[Any]:
    provider = w3.provider
    if not isinstance(provider, JSONBaseProvider):
        raise TypeError("raw reads need a JSON-RPC provider")
    endpoints = [(RPCEndpoint(method), params) for method, params in calls]
    replies: Any = provider.make_batch_request(endpoints) if len(endpoints) > 1 else None
    if not isinstance(replies, list):  # a single call, or the batch refused as a whole
        replies = [provider.make_request(method, params) for method, params in endpoints]
    if len(replies) != len(calls):
        raise ValueError("the JSON-RPC batch reply does not match its calls")
    return [_result(reply) for reply in replies]


def _result(reply: Mapping[str, Any]) -> Any:
    error = reply.get("error")
    if error is None:
        return reply.get("result")
    if isinstance(error, Mapping):
        return RpcError(error.get("code"), str(error.get("message", ""))[:200])
    return RpcError(None, str(error)[:200])


class MalformedReply(ValueError):
    """The node's reply does not have the shape JSON-RPC gives it."""


def hex_int(value: Any) -> int:
    try:
        return int(value, 16)
    except (TypeError, ValueError):
        raise MalformedReply(f"expected a hex quantity, got {type(value).__name__}") from None


def hex_bytes(value: Any) -> bytes:
    try:
        return bytes.fromhex(value.removeprefix("0x"))
    except (AttributeError, TypeError, ValueError):
        raise MalformedReply(f"expected hex data, got {type(value).__name__}") from None


def parse_logs(reply: Any) -> list[dict[str, Any]]:
    """``eth_getLogs``' reply as plain values, in chain order; removed (reorged) logs left out.
    Each log: ``address`` (lowercase), ``topics`` and ``data`` (bytes), ``block``, ``index``
    and ``tx``: what ``EventSpec.decode`` and the index read."""
    try:
        logs = [
            {
                "address": str(item["address"]).lower(),
                "topics": [hex_bytes(topic) for topic in item["topics"]],
                "data": hex_bytes(item["data"]),
                "block": hex_int(item["blockNumber"]),
                "index": hex_int(item["logIndex"]),
                "tx": str(item["transactionHash"]),
            }
            for item in reply
            if not item.get("removed")
        ]
    except (AttributeError, KeyError, TypeError) as exc:
        raise MalformedReply(f"eth_getLogs reply: {type(exc).__name__}") from None
    return sorted(logs, key=lambda entry: (entry["block"], entry["index"]))
