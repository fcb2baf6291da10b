"""``ocean-provider dev``: a whole local Ocean node from one command.

anvil with Ocean's contracts, funded consumers and the samples (``samples``: two CSV
datasets served on loopback, each with a compute service, and a Python algorithm they trust),
the local engine and the Provider under gunicorn. What it keeps lives under one folder
(``StateDir``): a second start loads the chain anvil dumped when it stopped and reuses what
was published there; ``reset`` wipes the folder first. Each server runs in its own process
group; Ctrl-C (or SIGTERM) stops them in reverse order, SIGKILL after a timeout, so no
process or bound port outlives it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TextIO

import requests
from eth_account import Account
from web3 import Web3

from ocean_provider.devnet.anvil import (
    ACCOUNT_KEYS,
    DEV_CHAIN_ID,
    Anvil,
    AnvilFailedToStart,
    AnvilNotFound,
)
from ocean_provider.devnet.samples import (
    DATASET_FILE,
    DEV_ENVIRONMENT,
    Sample,
    SamplePublisher,
    consumer_lines,
    contracts,
    samples,
    write_files,
)
from ocean_provider.engine.app import OPERATOR_PREFIX

STOP_SECONDS = 10.0  # a server's grace after SIGTERM, before SIGKILL
START_SECONDS = 60.0
ENVIRONMENTS_PATH = OPERATOR_PREFIX + "/environments"
PUBLISHER_KEY = ACCOUNT_KEYS[0]  # deploys the contracts and publishes the samples
CONSUMER_KEYS = ACCOUNT_KEYS[1:4]


class DevStackFailed(RuntimeError):
    """The dev stack cannot start or keep running; the message says what to do."""


class PortInUse(DevStackFailed):
    """A port the stack needs is taken."""


@dataclass(frozen=True)
class DevOptions:
    state_dir: Path
    reset: bool = False
    provider_port: int = 8030
    engine_port: int = 8050
    chain_port: int = 8545
    files_port: int = 8060

    def url(self, port: int) -> str:
        return f"http://127.0.0.1:{port}"


class StateDir:
    """Everything one dev node keeps, under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.chain_state = root / "chain-state.json"  # anvil's dump
        self.address_file = root / "address.json"
        self.provider_key_file = root / "provider.key"
        self.provider_storage = root / "provider"  # nonces, orders, the DDO index
        self.engine_storage = root / "engine"
        self.files = root / "files"
        self.logs = root / "logs"
        self.published = root / "dev.json"

    def prepare(self, reset: bool) -> None:
        if reset and self.root.exists():
            shutil.rmtree(self.root)
        for folder in (self.root, self.files, self.logs, self.provider_storage):
            folder.mkdir(parents=True, exist_ok=True)
        write_files(self.files)

    def empty_provider_storage(self) -> None:
        shutil.rmtree(self.provider_storage)
        self.provider_storage.mkdir()

    def provider_key(self) -> str:
        """The Provider's key, made on the first start (readable by the owner only)."""
        if not self.provider_key_file.exists():
            key = Account.create().key.to_0x_hex()
            fd = os.open(self.provider_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(key + "\n")
        return self.provider_key_file.read_text().strip()


def check_ports(options: DevOptions) -> None:
    """Fail before anything starts if a port is taken, naming it and the option to change."""
    wanted = [
        (options.provider_port, "the Provider's", "--provider-port"),
        (options.engine_port, "the engine's", "--engine-port"),
        (options.chain_port, "the chain's", "--chain-port"),
        (options.files_port, "the sample files'", "--files-port"),
    ]
    seen: set[int] = set()
    for port, owner, flag in wanted:
        if port in seen:
            raise PortInUse(f"port {port} is given twice; pass a different {flag}")
        seen.add(port)
        if not _port_free(port):
            raise PortInUse(
                f"port {port} is already in use ({owner}); stop what uses it or pass {flag}"
            )


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Server:
    """A child process in its own process group (a terminal's Ctrl-C reaches only us),
    its output appended to ``log``."""

    def __init__(
        self, name: str, argv: list[str], *, env: Mapping[str, str], cwd: Path, log: Path
    ) -> None:
        self.name, self.log = name, log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                argv,
                cwd=cwd,
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                process_group=0,
            )

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise DevStackFailed(f"the {self.name} exited with {code}; see {self.log}")

    def wait_until_up(self, url: str, deadline: float) -> None:
        """Until ``url`` answers 200."""
        while True:
            self.check_alive()
            try:
                if requests.get(url, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise DevStackFailed(f"the {self.name} did not answer {url}; see {self.log}")
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM the group, SIGKILL it after ``STOP_SECONDS``; reap the leader."""
        self._signal_group(signal.SIGTERM)
        try:
            self.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.process.wait()
        self._signal_group(signal.SIGKILL)  # whatever the leader left behind

    def _signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass


def run(options: DevOptions, out: TextIO = sys.stdout) -> int:
    """Start the stack, print where everything is, serve until interrupted; the exit code."""
    check_ports(options)
    state = StateDir(options.state_dir.resolve())
    state.prepare(options.reset)
    with _interrupts_raise(), ExitStack() as running:  # the servers stop, then handlers return
        try:
            started = time.monotonic()
            servers = _start(options, state, running, out)
            elapsed = time.monotonic() - started
            print(f"==> ready in {elapsed:.1f} s; Ctrl-C stops everything", file=out, flush=True)
            while True:
                for server in servers:
                    server.check_alive()
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("\n==> stopping", file=out, flush=True)
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # cut the clean-up short
    print("==> stopped", file=out, flush=True)
    return 0


@contextmanager
def _interrupts_raise() -> Iterator[None]:
    """SIGTERM stops the stack as Ctrl-C does; the previous handlers come back after."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _start(options: DevOptions, state: StateDir, running: ExitStack, out: TextIO) -> list[Server]:
    """Start everything, each stop registered on ``running`` as soon as it started."""
    deadline = time.monotonic() + START_SECONDS
    provider_key = state.provider_key()
    files_url = options.url(options.files_port)
    files = _server(running, state, "files server", _files_command(state, options), {})
    engine_env = _engine_env(state, provider_key)
    engine = _server(running, state, "engine", _engine_command(options), engine_env)
    anvil = Anvil(port=options.chain_port, state=state.chain_state).start()
    running.callback(anvil.stop)
    w3, say = Web3(Web3.HTTPProvider(anvil.url)), _printer(out)
    consumers = [Account.from_key(key).address for key in CONSUMER_KEYS]
    deployment, reused = contracts(w3, state.address_file, PUBLISHER_KEY, consumers, say)
    if not reused:  # what the Provider indexed and recorded belonged to the chain that is gone
        state.empty_provider_storage()
    provider_url = options.url(options.provider_port)
    provider_env = _provider_env(state, provider_key, anvil.url, options)
    provider = _server(running, state, "Provider", _provider_command(options), provider_env)
    files.wait_until_up(f"{files_url}/{DATASET_FILE}", deadline)
    engine.wait_until_up(options.url(options.engine_port) + ENVIRONMENTS_PATH, deadline)
    provider.wait_until_up(provider_url, deadline)
    publisher = SamplePublisher(
        w3, deployment, PUBLISHER_KEY, consumers, provider_url=provider_url, files_url=files_url
    )
    sample = samples(publisher, state.published, reuse=reused, say=say)
    _print_summary(out, options, state, sample, provider_key)
    return [files, engine, provider]


def _server(
    running: ExitStack, state: StateDir, name: str, argv: list[str], env: Mapping[str, str]
) -> Server:
    log = state.logs / (name.split()[0].lower() + ".log")
    server = Server(name, argv, env=env, cwd=state.root, log=log)
    running.callback(server.stop)
    return server


def _files_command(state: StateDir, options: DevOptions) -> list[str]:
    serve = [sys.executable, "-m", "http.server", str(options.files_port), "--bind", "127.0.0.1"]
    return serve + ["--directory", str(state.files)]


def _engine_command(options: DevOptions) -> list[str]:
    bind = f"127.0.0.1:{options.engine_port}"
    return [sys.executable, "-m", "ocean_provider.cli", "engine", "--bind", bind]


def _provider_command(options: DevOptions) -> list[str]:
    bind = f"127.0.0.1:{options.provider_port}"
    return [sys.executable, "-m", "ocean_provider.cli", "serve", "--workers", "2", "--bind", bind]


# The servers run in the state folder, where no config.ini is: these are their settings.
def _engine_env(state: StateDir, provider_key: str) -> dict[str, str]:
    return {
        "ALLOWED_PROVIDERS": json.dumps([Account.from_key(provider_key).address]),
        "ENGINE_ENVIRONMENTS": json.dumps({"environments": [DEV_ENVIRONMENT]}),
        "ENGINE_STORAGE": str(state.engine_storage),
        "ALLOW_PRIVATE_DOWNLOADS": "true",  # the sample files are served on loopback
    }


def _provider_env(
    state: StateDir, provider_key: str, chain_url: str, options: DevOptions
) -> dict[str, str]:
    return {
        "NETWORK_URL": chain_url,
        "CHAIN_ID": str(DEV_CHAIN_ID),
        "PROVIDER_PRIVATE_KEY": provider_key,
        "ADDRESS_FILE": str(state.address_file),
        "OPERATOR_SERVICE_URL": options.url(options.engine_port),
        "PROVIDER_URL": options.url(options.provider_port),
        "STORAGE_PATH": str(state.provider_storage / "provider.db"),
        "ALLOW_PRIVATE_DOWNLOADS": "true",
    }


def _printer(out: TextIO) -> Callable[[str], None]:
    def say(line: str) -> None:
        print(f"==> {line}", file=out, flush=True)

    return say


def _print_summary(
    out: TextIO, options: DevOptions, state: StateDir, sample: Sample, provider_key: str
) -> None:
    provider_address = Account.from_key(provider_key).address
    provider, engine = sample.provider_url, options.url(options.engine_port)
    lines = [
        "",
        f"Provider        {provider}  (address {provider_address})",
        f"API docs        {provider}/api/docs/  (try a route in the browser)",
        f"metrics         {provider}/metrics  and  {engine}/metrics",
        f"engine          {engine}",
        f"chain RPC       {options.url(options.chain_port)}  (chain id {DEV_CHAIN_ID})",
        f"address file    {state.address_file}",
        *sample.summary_lines(),
        f"compute env     {DEV_ENVIRONMENT['id']}",
        f"state folder    {state.root}  (logs in {state.logs})",
        "",
        *consumer_lines(CONSUMER_KEYS),
    ]
    print("\n".join(lines) + "\n", file=out, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocean-provider dev", description=__doc__)
    parser.add_argument(
        "--state-dir", type=Path, default=Path(".local/dev"), help="(default: .local/dev)"
    )
    parser.add_argument("--reset", action="store_true", help="wipe the state folder first")
    for name, port in (("provider", 8030), ("engine", 8050), ("chain", 8545), ("files", 8060)):
        parser.add_argument(f"--{name}-port", type=int, default=port, help=f"(default: {port})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    ports = (args.provider_port, args.engine_port, args.chain_port, args.files_port)
    options = DevOptions(args.state_dir, args.reset, *ports)
    try:
        return run(options)
    except (DevStackFailed, AnvilNotFound, AnvilFailedToStart) as exc:
        print(f"ocean-provider dev: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
