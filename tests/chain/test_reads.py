"""Chain reads against a scripted JSON-RPC node (unit: no chain)."""

from __future__ import annotations

from typing import Any

import pytest
import requests_mock as rm

from ocean_provider.chain.reads import ChainReader
from ocean_provider.chain.rpc import Chains
from ocean_provider.errors import ChainUnavailable

RPC = "http://rpc.test:8545/secret-key"
TX = "0x" + "ab" * 32


def node(result: Any) -> Any:
    def reply(request: Any, _: Any) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": request.json()["id"], "result": result}

    return reply


def reader() -> ChainReader:
    return ChainReader(Chains({8996: RPC}, timeout=1, backoff=0), receipt_wait=0)


def test_a_receipt_is_read_from_the_nodes_json() -> None:
    receipt = {
        "status": "0x1",
        "blockNumber": "0x10",
        "to": "0x" + "11" * 20,
        "from": "0x" + "22" * 20,
        "logs": [{"address": "0x" + "33" * 20, "topics": ["0x" + "44" * 32], "data": "0x0102"}],
    }
    with rm.Mocker() as mocker:
        mocker.post(RPC, json=node(receipt))
        read = reader().receipt(8996, TX)
    assert read["status"] == 1 and read["blockNumber"] == 16
    assert read["logs"][0]["topics"] == [bytes.fromhex("44" * 32)]
    assert read["logs"][0]["data"] == b"\x01\x02"


@pytest.mark.parametrize(
    "receipt",
    [
        {"status": "yes", "blockNumber": "0x1", "logs": []},
        {"status": "0x1", "logs": []},
        {"status": "0x1", "blockNumber": "0x1", "logs": [{"address": "0x1", "topics": ["zz"]}]},
        {"status": "0x1", "blockNumber": "0x1", "logs": 7},
    ],
)
def test_a_malformed_receipt_is_a_clear_503(receipt: dict[str, Any]) -> None:
    with rm.Mocker() as mocker:
        mocker.post(RPC, json=node(receipt))
        with pytest.raises(ChainUnavailable) as failed:
            reader().receipt(8996, TX)
    assert "secret" not in failed.value.message and "rpc.test" not in failed.value.message


def test_a_node_error_is_a_clear_503() -> None:
    with rm.Mocker() as mocker:
        mocker.post(
            RPC, json={"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": "x"}}
        )
        with pytest.raises(ChainUnavailable):
            reader().receipt(8996, TX)
