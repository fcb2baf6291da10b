"""anvil, the local chain for tests and the dev stack: find the binary, run it on loopback.

``scripts/setup`` installs anvil from npm (package.json); the ELF inside the
platform package is run directly, not npm's node wrapper, so there is one
process to stop.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO

import requests

from ocean_provider.devnet.ports import free_port

DEV_CHAIN_ID = 8996  # the chain id Ocean's tools (barge, ocean.py) call "development"

# anvil's default accounts, from the public "test test ... junk" mnemonic: 10,000 ETH each.
# Anyone can spend from them on any chain; they are for local chains only.
ACCOUNT_KEYS: tuple[str, ...] = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
)

_REPO_ROOT = Path(__file__).resolve().parents[2]
NPM_ANVIL = _REPO_ROOT / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"


class AnvilNotFound(RuntimeError):
    """No anvil binary: not installed, or ``$ANVIL_BIN`` names nothing runnable."""


class AnvilFailedToStart(RuntimeError):
    """anvil exited, or did not answer ``eth_chainId`` in time."""


def find_anvil(environ: Mapping[str, str] | None = None) -> Path:
    """``$ANVIL_BIN``, else the binary ``scripts/setup`` installs, else ``anvil`` on the PATH."""
    environ = os.environ if environ is None else environ
    named = environ.get("ANVIL_BIN")
    if named:
        if not os.access(named, os.X_OK):
            raise AnvilNotFound(f"ANVIL_BIN={named} is not an executable file")
        return Path(named)
    if os.access(NPM_ANVIL, os.X_OK):
        return NPM_ANVIL
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    raise AnvilNotFound(
        f"anvil not found (not at {NPM_ANVIL}, not on the PATH, ANVIL_BIN not set): "
        "run scripts/setup, which installs it from npm"
    )


class Anvil:
    """An anvil process on 127.0.0.1, instant mining, quiet.

    With ``state``, the chain starts from that file if it exists and is written
    back to it when anvil stops (``stop()`` sends SIGTERM, which anvil handles).
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        chain_id: int = DEV_CHAIN_ID,
        state: Path | None = None,
        binary: Path | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        self.port = free_port() if port is None else port
        self.chain_id = chain_id
        self.state = state
        self.binary = binary
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def command(self) -> list[str]:
        binary = self.binary or find_anvil()
        argv = [str(binary), "--host", "127.0.0.1", "--port", str(self.port)]
        argv += ["--chain-id", str(self.chain_id), "--silent"]
        if self.state is not None:
            argv += ["--state", str(self.state)]
        return argv

    def start(self) -> Anvil:
        """Start anvil and return once it answers ``eth_chainId`` with our chain id."""
        if self._process is not None:
            raise RuntimeError("anvil is already running")
        argv = self.command()
        self._stderr = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            process_group=0,  # a terminal's Ctrl-C reaches only us; stop() ends anvil
        )
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (anvil dumps ``state`` then exits), SIGKILL after ``timeout``; then reap."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_until_up(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise AnvilFailedToStart(
                    f"anvil exited with {self._process.returncode}: {self._stderr_tail()}"
                )
            if self._answered_chain_id() == self.chain_id and self._process.poll() is None:
                return
            time.sleep(0.02)
        raise AnvilFailedToStart(
            f"anvil did not answer on {self.url} within {self.startup_timeout} s: "
            f"{self._stderr_tail()}"
        )

    def _answered_chain_id(self) -> int | None:
        body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        try:
            reply = requests.post(self.url, json=body, timeout=0.5)
            return int(reply.json()["result"], 16)
        except (requests.RequestException, ValueError, KeyError, TypeError):
            return None

    def _stderr_tail(self, limit: int = 2000) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace").strip()
        return text[-limit:] or "(no output)"
