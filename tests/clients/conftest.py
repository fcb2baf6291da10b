"""One dev node for Ocean's own clients (ocean.js, ocean.py), and paying for orders with our
Python client between their initializeCompute and start: the clients make the Provider calls,
the chain transactions are not what they test."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from ocean_provider.client import order, provider_fee_from_json
from ocean_provider.devnet.stack import DevOptions
from tests.devnet.test_stack import Started, interrupt, options, start

# Sleeps long enough for the stop call to find it running.
SLEEPER = "import time\nprint('sleeping')\ntime.sleep(60)\n"


@dataclass(frozen=True)
class Node:
    provider: str
    rpc: str
    dataset: str
    algorithm: str

    def pay(self, key: str, item: Mapping[str, Any]) -> str:
        """Order ``item`` (a dataset or algorithm of initializeCompute's reply) as ``key``."""
        w3 = Web3(Web3.HTTPProvider(self.rpc))
        fee = provider_fee_from_json(item["providerFee"])
        return order(w3, key, item["datatoken"], fee, service_index=0)


@dataclass(frozen=True)
class Driver:
    """A client's script: one call per run, a JSON request on stdin, ``{"result": ...}`` on
    the last line of stdout (the clients print their own logs on the lines before)."""

    command: list[str]
    node: Node
    key: str

    def run(self, call: str, **args: Any) -> subprocess.CompletedProcess[str]:
        request = {"call": call, "provider": self.node.provider, "rpc": self.node.rpc}
        return subprocess.run(
            self.command,
            input=json.dumps({**request, "key": self.key, **args}),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=Path(self.command[-1]).parent,
        )

    def reply(self, call: str, **args: Any) -> dict[str, Any]:
        done = self.run(call, **args)
        assert done.returncode == 0, f"{call} failed:\n{done.stdout}{done.stderr}"
        return dict(json.loads(done.stdout.splitlines()[-1]))

    def __call__(self, call: str, **args: Any) -> Any:
        """The call's result; it must not raise."""
        return self.reply(call, **args)["result"]


@pytest.fixture(scope="package")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    o: DevOptions = options(tmp_path_factory.mktemp("clients") / "state")
    started: Started = start(o)
    try:
        yield Node(
            o.url(o.provider_port),
            o.url(o.chain_port),
            started.did("dataset"),
            started.did("algorithm"),
        )
    finally:
        if started.process.poll() is None:
            interrupt(started, o)
