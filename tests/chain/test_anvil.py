"""anvil as a process: found, started on loopback, stopped without a trace, state kept."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import requests
from eth_account import Account

from ocean_provider.devnet import anvil as anvil_module
from ocean_provider.devnet.anvil import (
    ACCOUNT_KEYS,
    Anvil,
    AnvilFailedToStart,
    AnvilNotFound,
    find_anvil,
)
from tests.devchain import DevChain


def rpc(url: str, method: str, *params: object) -> object:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    return requests.post(url, json=body, timeout=5).json()["result"]


def test_anvil_bin_names_the_binary(tmp_path: Path) -> None:
    binary = tmp_path / "anvil"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert find_anvil({"ANVIL_BIN": str(binary)}) == binary


def test_anvil_bin_not_executable_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AnvilNotFound, match="ANVIL_BIN"):
        find_anvil({"ANVIL_BIN": str(tmp_path / "missing")})


def test_no_anvil_anywhere_says_to_run_setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(anvil_module, "NPM_ANVIL", tmp_path / "absent")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AnvilNotFound, match="scripts/setup"):
        find_anvil({})


@pytest.mark.integration
def test_stop_leaves_no_process() -> None:
    with Anvil() as chain:
        pid = chain.pid
        assert pid is not None
        assert rpc(chain.url, "eth_chainId") == hex(8996)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone and reaped: not even a zombie holds the PID
    with pytest.raises(requests.ConnectionError):
        requests.post(chain.url, json={}, timeout=1)
    chain.stop()  # again: nothing to do


@pytest.mark.integration
def test_default_keys_are_anvils_accounts(devchain: DevChain) -> None:
    accounts = devchain.w3.eth.accounts
    assert [Account.from_key(k).address for k in ACCOUNT_KEYS] == list(
        accounts[: len(ACCOUNT_KEYS)]
    )


@pytest.mark.integration
def test_state_file_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "chain.json"
    with Anvil(state=state) as chain:
        rpc(chain.url, "anvil_mine", 3)
    assert state.is_file()
    with Anvil(state=state) as chain:
        assert rpc(chain.url, "eth_blockNumber") == "0x3"


@pytest.mark.integration
def test_a_taken_port_fails_with_anvils_own_words() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(AnvilFailedToStart, match="(?i)address already in use"):
            Anvil(port=port, startup_timeout=5).start()
