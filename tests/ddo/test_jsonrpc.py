"""The index's JSON-RPC against a scripted node: batches, per-call errors, refused ranges."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests_mock as rm

from ocean_provider.chain.jsonrpc import RpcError, rpc_batch
from ocean_provider.chain.rpc import Chains
from ocean_provider.ddo.index import Factory, NftIndex
from ocean_provider.errors import ChainUnavailable

RPC = "http://rpc.test"
CHAIN = 5
Handler = Callable[[list[Any]], Any]


class ScriptedNode:
    """Answers each JSON-RPC method with its handler; records every call and HTTP request."""

    def __init__(self, mocker: rm.Mocker, handlers: dict[str, Handler], batches: bool = True):
        self.handlers = handlers
        self.batches = batches
        self.calls: list[tuple[str, list[Any]]] = []
        self.requests = 0
        mocker.post(RPC, json=self._answer)

    def _answer(self, request: Any, context: Any) -> Any:
        self.requests += 1
        body = request.json()
        if isinstance(body, list):
            if not self.batches:
                return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "no"}}
            return [self._one(item) for item in body]
        return self._one(body)

    def _one(self, item: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((item["method"], item["params"]))
        try:
            result = self.handlers[item["method"]](item["params"])
        except LookupError as refusal:
            return {
                "jsonrpc": "2.0",
                "id": item["id"],
                "error": {"code": -32005, "message": str(refusal)},
            }
        return {"jsonrpc": "2.0", "id": item["id"], "result": result}


@pytest.fixture
def mocker() -> Iterator[rm.Mocker]:
    with rm.Mocker() as mock:
        yield mock


def chains() -> Chains:
    return Chains({CHAIN: RPC}, timeout=1, retries=0, sleep=lambda _: None)


def test_a_batch_is_one_request_and_each_call_keeps_its_error(mocker: rm.Mocker) -> None:
    def refuse(_: list[Any]) -> Any:
        raise LookupError("execution reverted")

    node = ScriptedNode(mocker, {"eth_blockNumber": lambda _: "0x10", "eth_call": refuse})

    replies = rpc_batch(chains(), CHAIN, "test", [("eth_blockNumber", []), ("eth_call", [{}])])

    assert replies[0] == "0x10"
    assert replies[1] == RpcError(-32005, "execution reverted")
    assert node.requests == 1


def test_a_node_that_refuses_batches_gets_the_calls_one_by_one(mocker: rm.Mocker) -> None:
    node = ScriptedNode(mocker, {"eth_blockNumber": lambda _: "0x10"}, batches=False)

    replies = rpc_batch(chains(), CHAIN, "test", [("eth_blockNumber", [])] * 2)

    assert replies == ["0x10", "0x10"]
    assert node.requests == 3


def index_on(node: ScriptedNode, tmp_path: Path, **options: Any) -> NftIndex:
    factory = Factory("0x" + "fa" * 20, start_block=0)
    return NftIndex(tmp_path / "index.db", chains(), {CHAIN: factory}, **options)


def blocks(params: list[Any]) -> int:
    query = params[0]
    return int(query["toBlock"], 16) - int(query["fromBlock"], 16) + 1


def test_a_refused_range_is_halved_until_the_node_takes_it(
    mocker: rm.Mocker, tmp_path: Path
) -> None:
    def logs(params: list[Any]) -> list[Any]:
        if blocks(params) > 25:
            raise LookupError("query returned more than 10000 results")
        return []

    node = ScriptedNode(
        mocker,
        {
            "eth_blockNumber": lambda _: hex(99),
            "eth_getBlockByNumber": lambda _: {"hash": "0xaa"},
            "eth_getLogs": logs,
        },
    )

    assert index_on(node, tmp_path, blocks_per_call=100).catch_up(CHAIN) == 99
    spans = [blocks(params) for method, params in node.calls if method == "eth_getLogs"]
    assert spans == [100, 50, 25, 25, 25, 25]


def test_a_malformed_reply_is_the_chain_unavailable(mocker: rm.Mocker, tmp_path: Path) -> None:
    node = ScriptedNode(
        mocker,
        {
            "eth_blockNumber": lambda _: hex(9),
            "eth_getBlockByNumber": lambda _: {"hash": "0xaa"},
            "eth_getLogs": lambda _: [{"address": "0x00", "topics": "not a list"}],
        },
    )

    with pytest.raises(ChainUnavailable) as caught:
        index_on(node, tmp_path).catch_up(CHAIN)

    assert "malformed" in caught.value.message
    assert RPC not in caught.value.message
