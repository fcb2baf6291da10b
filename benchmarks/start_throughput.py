"""Benchmark compute starts: signed, order-verified starts per second through gunicorn.

Everything a start touches is real except the engine and (by default) the DDO source:
anvil with Ocean's contracts, one dataset (a datatoken whose DDO a small resolver here
hands to the Provider; with ``--real-ddo``, an asset published as Ocean's clients publish
it, its files and DDO encrypted to the Provider's key, which the Provider resolves as in
production: ``ADDRESS_FILE``, its on-chain NFT index and ``ServiceFiles``), one real
``startOrder`` per start, each paying a provider fee issued by the Provider's own
``ChainFeeIssuer`` (priceMin 0.01 OCEAN a minute for an hour: 0.6 OCEAN, approved once
per consumer), the Provider's real ``ChainOrderVerifier``, SQLite nonce store and order
ledger, and its ``OperatorClient`` to an instant stub engine. The Provider runs as
``ocean-provider serve`` does (``cli._gunicorn``: 2 workers x 4 threads, INFO logs and an
access log to a file).

1. Setup (progress on stderr): anvil on its own port, the contracts, the asset, ETH,
   datatokens and OCEAN for each consumer (one per connection, so nonces never collide),
   then ``--orders`` orders (plus a few for the warm-up): signed here, sent raw in
   JSON-RPC batches with automining paused, then mined in a few full blocks.
2. A counting JSON-RPC proxy sits between the Provider and anvil (batches count each
   call); ``--direct`` leaves it out (no counts) to show what it costs.
3. Warm-up (not recorded): two starts per connection, so each worker has read what it
   caches for good (the datatoken's ``isDeployed`` binding, OCEAN's decimals) and, with
   ``--real-ddo``, indexed the chain and resolved the DDO (which it checks against the
   index again at most once a second).
4. ``--rounds`` timed rounds: ``--connections`` keep-alive connections, each a consumer
   sending its pre-signed starts (increasing nonces), each naming an order never used
   before, so its receipt is not cached anywhere: the main figure. Every reply must be
   200, else the run is void (exit status 1). Each gunicorn worker keeps the
   connections it accepted, often unevenly (the table shows each worker's cores);
   ``--requests-per-connection 1`` connects per request, as behind a reverse proxy.
5. Replays: some used orders again, freshly signed: each must be refused (400
   ``order_already_used``); shows what a refusal costs.

Prints the DDO source, starts/s (median of rounds, min-max), p50/p99 latency, RPC calls
per start by method, the Provider's CPU time per start and the CPU cores each process
used. All share this machine's cores: the ``others`` column is everything else that ran
meanwhile (other processes, the kernel); a round where it is well above zero measured a
busy machine. Every process started is stopped at the end, also on Ctrl-C or an error.

    .venv/bin/python benchmarks/start_throughput.py [--orders 2000] [--connections 16] \\
        [--rounds 3] [--requests-per-connection 0] [--real-ddo] [--direct] \\
        [--py-spy profile.svg] [--log-dir logs/]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import requests
from eth_abi.abi import encode
from eth_account import Account
from eth_typing import ABIFunction
from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_types
from eth_utils.crypto import keccak
from flask import Flask
from http_throughput import (
    CLEARED_SETTINGS,
    Server,
    cpu_seconds,
    measured_code,
    run_in_tempdir,
    served,
    stop_group,
)
from web3 import Web3

from ocean_provider.auth.messages import start_message
from ocean_provider.auth.signing import MessageSigner
from ocean_provider.chain.artifacts import abi
from ocean_provider.chain.issuer import ChainFeeIssuer
from ocean_provider.chain.reads import ChainReader
from ocean_provider.chain.rpc import Chains
from ocean_provider.client.orders import NO_CONSUME_MARKET_FEE
from ocean_provider.compute.interfaces import Asset
from ocean_provider.ddo.crypto import ProviderCipher
from ocean_provider.devnet.anvil import ACCOUNT_KEYS, DEV_CHAIN_ID, Anvil, find_anvil
from ocean_provider.devnet.assets import (
    MAX_UINT256,
    ProviderFee,
    approve,
    cipher_encrypt,
    dataset_ddo,
    mint,
    provider_fee_args,
    publish_asset,
    publish_datatoken,
    transfer_ocean,
    url_file,
)
from ocean_provider.devnet.contracts import Deployment, deploy, write_address_file
from ocean_provider.devnet.stub_engine import json_stub
from ocean_provider.errors import ComputeRefused

DEPLOYER, PUBLISHER, PROVIDER_KEY = ACCOUNT_KEYS[0], ACCOUNT_KEYS[1], ACCOUNT_KEYS[5]
CHAIN = DEV_CHAIN_ID
OWN_DID = "did:op:" + "5" * 64  # the benchmark's own DDO (default)
DATA_URL = "https://example.com/data.csv"
SERVICE_ENDPOINT = "http://provider.test"
ENV_ID = "bench-env"
PRICE_PER_MINUTE = "0.01"  # OCEAN; a fee valid for an hour is 0.6 OCEAN
FEE_SECONDS = 3600
ONE = 10**18  # one datatoken, one OCEAN
COMPUTE = "/api/services/compute"
OPERATOR = "/api/v1/operator"
WARMUP_PER_CONNECTION = 2
REPLAYS_PER_CONNECTION = 5
REFERENCE_STARTS_PER_S = 20  # the reference Provider on this kind of machine (issue #10)
SEND_BATCH = 250  # raw transactions per JSON-RPC batch
ORDER_GAS_MARGIN = 1.5
MINED_SECONDS = 120
ALGORITHM = {
    "meta": {
        "rawcode": "print(1)",
        "container": {"entrypoint": "python $ALGO", "image": "python", "tag": "3.11"},
    }
}


def progress(message: str) -> None:
    print(f"[start-bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def environment(fee_token: str | None = None) -> dict[str, Any]:
    """The stub engine's one environment; with ``fee_token``, as the Provider announces it."""
    env: dict[str, Any] = {
        "id": ENV_ID,
        "cpuType": "x86_64",
        "nCPU": 1,
        "cpuNumber": 1,
        "nGPU": 0,
        "gpuType": "",
        "ramGB": 1,
        "diskGB": 2,
        "priceMin": PRICE_PER_MINUTE,
        "desc": "benchmark",
        "maxJobs": 1000,
        "currentJobs": 0,
        "consumerAddress": str(Account.from_key(PROVIDER_KEY).address),
        "maxJobDuration": FEE_SECONDS,
        "storageExpiry": 3600,
        "free": False,
    }
    return {**env, "feeToken": fee_token} if fee_token else env


@dataclass(frozen=True)
class Dataset:
    """What every start names: the DID, its compute service, and that service's index in
    the DDO (the ``serviceIndex`` each order pays for)."""

    did: str
    service_id: str
    service_index: int
    ddo: dict[str, Any] | None  # for the benchmark's own resolver; None: the Provider's

    @property
    def source(self) -> str:
        if self.ddo is None:
            return (
                "the chain, as in production (ADDRESS_FILE; the NFT index and on-chain "
                "resolver; ServiceFiles decrypting the files)"
            )
        return "the benchmark's own resolver (no DDO resolution)"


def own_dataset(nft: str, datatoken: str) -> Dataset:
    """The benchmark's own DDO, laid out as tests/chain's: an access service, then the
    compute service the orders name (index 1)."""
    compute = {
        "id": "compute-1",
        "type": "compute",
        "datatokenAddress": datatoken,
        "serviceEndpoint": SERVICE_ENDPOINT,
        "timeout": FEE_SECONDS,
        "compute": {"allowRawAlgorithm": True, "allowNetworkAccess": False},
    }
    access = {"id": "access-0", "type": "access", "datatokenAddress": datatoken}
    ddo = {
        "id": OWN_DID,
        "chainId": CHAIN,
        "nft": {"address": nft, "state": 0},  # active, as a resolved DDO says
        "metadata": {"type": "dataset", "name": "start benchmark"},
        "services": [access, compute],
    }
    return Dataset(OWN_DID, "compute-1", 1, ddo)


def publish_dataset(w3: Web3, deployment: Deployment, real_ddo: bool) -> tuple[Dataset, str]:
    """The dataset and its datatoken: a bare datatoken with the benchmark's own DDO, or
    (``real_ddo``) an asset published as Ocean's clients publish it, its files and DDO
    encrypted to the Provider's key, for the Provider to resolve from the chain."""
    if not real_ddo:
        published = publish_datatoken(w3, deployment, PUBLISHER)
        return own_dataset(published.nft, published.datatoken), published.datatoken
    template = dataset_ddo(
        name="start benchmark",
        files=[url_file(DATA_URL)],
        service_endpoint=SERVICE_ENDPOINT,
        allow_raw_algorithm=True,
    )
    encrypt = cipher_encrypt(ProviderCipher(PROVIDER_KEY))
    asset = publish_asset(w3, deployment, PUBLISHER, template, encrypt=encrypt)
    (service,) = asset.ddo["services"]  # dataset_ddo's one compute service
    return Dataset(asset.did, str(service["id"]), 0, None), asset.datatoken


# --- the served processes (children: --serve stub|proxy|provider) --------------------------


def run_stub(bind: str) -> None:
    """An instant engine: the environment, and a new job for every POST /compute."""
    envs = [environment()]

    def get(path: str) -> Any:
        return envs if path.startswith(f"{OPERATOR}/environments") else []

    def post(path: str, body: Any) -> Any:
        if not path.startswith(f"{OPERATOR}/compute") or not isinstance(body, dict):
            return []
        job = {"jobId": uuid.uuid4().hex, "owner": body.get("owner", ""), "status": 1}
        return [{**job, "statusText": "Warming up", "dateCreated": time.time()}]

    json_stub(get, post, port=_port(bind)).serve_forever()


class _CountingProxy(ThreadingHTTPServer):
    def __init__(self, port: int, upstream: str) -> None:
        super().__init__(("127.0.0.1", port), _Forward)
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()


class _Forward(BaseHTTPRequestHandler):
    """POST: count the JSON-RPC methods (each of a batch), pass the body to anvil on this
    connection's own keep-alive connection, and anvil's reply back. GET: the counts."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.proxy = cast(_CountingProxy, self.server)
        self.anvil = http.client.HTTPConnection(*self.proxy.upstream, timeout=30)

    def finish(self) -> None:
        super().finish()
        self.anvil.close()

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        with self.proxy.lock:
            counts = dict(self.proxy.counts)
        self._reply(200, json.dumps(counts).encode())

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            calls = json.loads(body)
        except ValueError:
            calls = {}
        methods = [c.get("method") for c in (calls if isinstance(calls, list) else [calls])]
        with self.proxy.lock:
            self.proxy.counts.update(str(m) for m in methods)
        self._reply(*self._forward(body))

    def _forward(self, body: bytes) -> tuple[int, bytes]:
        for attempt in (1, 2):  # once more on a fresh connection if anvil closed ours
            try:
                self.anvil.request("POST", "/", body, {"Content-Type": "application/json"})
                reply = self.anvil.getresponse()
                return reply.status, reply.read()
            except (http.client.HTTPException, OSError):
                self.anvil.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def run_proxy(bind: str, upstream: str) -> None:
    _CountingProxy(_port(bind), upstream).serve_forever()


class PublishedAsset:
    """The benchmark's DDO source: the one asset it published."""

    def __init__(self, asset: Asset) -> None:
        self._asset = asset

    def resolve(self, did: str) -> Asset:
        if did != self._asset.did:
            raise ComputeRefused("documentId", "did_not_found")
        return self._asset

    def service_files(self, asset: Asset, service_id: str) -> list[dict[str, Any]]:
        return [url_file(DATA_URL)]


def run_provider(bind: str, config: Path, workers: int) -> None:
    """The Provider as ``ocean-provider serve`` runs it, with our DDO source unless the
    config carries no DDO (``--real-ddo``: the production wiring)."""
    from ocean_provider.app import create_app
    from ocean_provider.cli import _gunicorn
    from ocean_provider.config import load_provider_settings
    from ocean_provider.web.log_format import configure_logging

    spec = json.loads(config.read_text())
    settings = load_provider_settings(spec["environ"], config_path=None)  # fail in the master
    own = None if spec["ddo"] is None else PublishedAsset(Asset(spec["did"], CHAIN, spec["ddo"]))

    def factory() -> Flask:
        configure_logging(settings.log_level, settings.observability.log_format)
        return create_app(settings) if own is None else create_app(settings, ddos=own)

    _gunicorn(factory, bind, workers, timeout=120)


def _port(bind: str) -> int:
    return int(bind.rpartition(":")[2])


# --- the chain: asset, consumers, orders ----------------------------------------------------


@dataclass(frozen=True)
class Consumer:
    """One connection's identity: its key, and strictly increasing request nonces."""

    key: str
    address: str
    signer: MessageSigner
    nonces: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @classmethod
    def named(cls, name: str) -> Consumer:
        key = "0x" + keccak(text=f"start_throughput {name}").hex()
        return cls(key, str(Account.from_key(key).address), MessageSigner(key))

    def start_body(self, dataset: Dataset, tx_id: str) -> bytes:
        nonce = str(next(self.nonces))
        did = dataset.did
        request = {
            "consumerAddress": self.address,
            "nonce": nonce,
            "signature": self.signer.sign(start_message(self.address, did) + nonce),
            "environment": ENV_ID,
            "dataset": {"documentId": did, "serviceId": dataset.service_id, "transferTxId": tx_id},
            "algorithm": ALGORITHM,
        }
        return json.dumps(request).encode()


@dataclass
class Market:
    url: str
    w3: Web3
    deployment: Deployment
    datatoken: str
    dataset: Dataset
    issuer: ChainFeeIssuer
    session: requests.Session = field(default_factory=requests.Session)

    def rpc(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        """One JSON-RPC batch; raises on any error reply."""
        body = [
            {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
            for i, (method, params) in enumerate(calls)
        ]
        replies = {r["id"]: r for r in self.session.post(self.url, json=body, timeout=120).json()}
        for i, (method, _) in enumerate(calls):
            if "error" in replies[i]:
                raise RuntimeError(f"{method} failed: {replies[i]['error']}")
        return [replies[i]["result"] for i in range(len(calls))]


def open_market(
    url: str, consumers: list[Consumer], orders_each: int, real_ddo: bool = False
) -> Market:
    """Ocean's contracts, the dataset, and consumers holding ETH, datatokens and OCEAN
    (OCEAN approved to the datatoken once, for every fee it will pull)."""
    w3 = Web3(Web3.HTTPProvider(url))
    deployment = deploy(w3, DEPLOYER)
    dataset, datatoken = publish_dataset(w3, deployment, real_ddo)
    reader = ChainReader(Chains({CHAIN: url}, timeout=10))
    market = Market(
        url=url,
        w3=w3,
        deployment=deployment,
        datatoken=datatoken,
        dataset=dataset,
        issuer=ChainFeeIssuer(reader, {CHAIN: PROVIDER_KEY}),
    )
    progress(f"deployed; {dataset.did}, datatoken {datatoken}; funding {len(consumers)} consumers")
    market.rpc([("anvil_setBalance", [c.address, hex(1000 * ONE)]) for c in consumers])
    for consumer in consumers:
        mint(w3, datatoken, PUBLISHER, consumer.address, (orders_each + 10) * ONE)
        transfer_ocean(w3, deployment, DEPLOYER, consumer.address, orders_each * ONE)
        approve(w3, deployment.ocean, consumer.key, datatoken, MAX_UINT256)
    return market


def place_orders(market: Market, consumers: list[Consumer], orders_each: int) -> list[list[str]]:
    """``orders_each`` startOrder transactions per consumer, each with a fresh fee from the
    Provider's issuer, signed here, sent raw in batches with automining paused, then mined
    in a few full blocks; their hashes, per consumer."""
    started = time.monotonic()
    start_order = StartOrder.of(market, consumers[0])
    nonces = market.rpc([("eth_getTransactionCount", [c.address, "pending"]) for c in consumers])
    raw: list[str] = []
    for k, (i, consumer) in itertools.product(range(orders_each), enumerate(consumers)):
        raw.append(start_order.signed(consumer, int(nonces[i], 16) + k))
    progress(f"signed {len(raw)} orders in {time.monotonic() - started:.1f} s; sending")
    market.rpc([("evm_setAutomine", [False])])
    try:
        hashes: list[str] = []
        for start in range(0, len(raw), SEND_BATCH):
            batch = raw[start : start + SEND_BATCH]
            hashes += market.rpc([("eth_sendRawTransaction", [tx]) for tx in batch])
        wait_mined(market, hashes)
    finally:
        market.rpc([("evm_setAutomine", [True])])
    progress(f"{len(hashes)} orders mined, {time.monotonic() - started:.1f} s in all")
    return [hashes[i :: len(consumers)] for i in range(len(consumers))]


@dataclass(frozen=True)
class StartOrder:
    """Signs ``startOrder`` transactions without a node (web3's encoder takes ~2 ms each)."""

    market: Market
    selector: bytes
    types: list[str]
    environment: dict[str, Any]  # as the Provider announces it: the fee is issued for it
    gas: int
    max_fee: int

    @classmethod
    def of(cls, market: Market, payer: Consumer) -> StartOrder:
        """Gas: ``payer``'s estimate for one order, with a margin."""
        (item,) = [i for i in abi("ERC20Template") if i.get("name") == "startOrder"]
        function = cast(ABIFunction, item)
        selector, types = function_abi_to_4byte_selector(function), get_abi_input_types(function)
        announced = environment(market.deployment.ocean)
        probe = cls(market, selector, types, announced, 0, 0)
        call = {"from": payer.address, "to": market.datatoken, "data": probe.calldata(payer)}
        gas, price = market.rpc([("eth_estimateGas", [call]), ("eth_gasPrice", [])])
        gas_limit = int(int(gas, 16) * ORDER_GAS_MARGIN)
        return cls(market, selector, types, announced, gas_limit, 2 * int(price, 16))

    def calldata(self, consumer: Consumer) -> str:
        """An order for ``consumer`` with a fresh fee, as the Provider's issuer signs it."""
        fee = self.market.issuer.issue(
            chain_id=CHAIN,
            datatoken=self.market.datatoken,
            service_id=self.market.dataset.service_id,
            environment=self.environment,
            valid_until=int(time.time()) + FEE_SECONDS,
            charge=True,
        )
        index = self.market.dataset.service_index
        args = (consumer.address, index, provider_fee_args(cast(ProviderFee, fee)))
        return "0x" + (self.selector + encode(self.types, [*args, NO_CONSUME_MARKET_FEE])).hex()

    def signed(self, consumer: Consumer, nonce: int) -> str:
        tx = {
            "type": 2,
            "chainId": CHAIN,
            "nonce": nonce,
            "to": self.market.datatoken,
            "data": self.calldata(consumer),
            "value": 0,
            "gas": self.gas,
            "maxFeePerGas": self.max_fee,
            "maxPriorityFeePerGas": min(self.max_fee, 10**9),
        }
        return str(Account.sign_transaction(tx, consumer.key).raw_transaction.to_0x_hex())


def wait_mined(market: Market, hashes: list[str]) -> None:
    """Mine blocks until every transaction has a receipt; raise if one reverted or time
    runs out."""
    waiting, deadline = list(hashes), time.monotonic() + MINED_SECONDS
    while waiting:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(waiting)} orders not mined in {MINED_SECONDS} s")
        market.rpc([("evm_mine", [])])
        found: list[Any] = []
        for start in range(0, len(waiting), SEND_BATCH):
            batch = waiting[start : start + SEND_BATCH]
            found += market.rpc([("eth_getTransactionReceipt", [h]) for h in batch])
        failed = [r["transactionHash"] for r in found if r and int(r["status"], 16) != 1]
        if failed:
            raise RuntimeError(f"{len(failed)} orders reverted, e.g. {failed[0]}")
        waiting = [h for h, r in zip(waiting, found, strict=True) if r is None]


# --- load -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    seconds: float
    status: int  # 0: no reply (the code names the exception)
    code: str = ""  # the error's code in a non-200 reply


@dataclass
class Pass:
    label: str
    seconds: float
    replies: list[Reply]
    rpc: Counter[str] | None  # JSON-RPC calls by method; None without the proxy
    cpu: dict[str, float]  # process group -> CPU seconds during the pass
    worker_cpu: list[float]  # each Provider worker's share of cpu["provider"]

    @property
    def rate(self) -> float:
        return len(self.replies) / self.seconds

    def percentile_ms(self, q: float) -> float:
        return percentile_ms([r.seconds for r in self.replies], q)

    def statuses(self) -> dict[str, int]:
        return dict(Counter(f"{r.status} {r.code}".strip() for r in self.replies))


def percentile_ms(seconds: list[float], q: float) -> float:
    ordered = sorted(seconds)
    return 1000 * ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def per_request(rpc: Counter[str] | None, requests_made: int) -> str:
    """``eth_getTransactionReceipt 1.00 (672), eth_call 0.01 (4)``: calls per request (and
    in all), by method."""
    if rpc is None:
        return "not counted (--direct)"
    if not rpc:
        return "none"
    return ", ".join(f"{m} {c / requests_made:.2f} ({c})" for m, c in rpc.most_common())


def send_starts(
    url: str, bodies: list[list[bytes]], per_connection: int = 0
) -> tuple[float, list[Reply]]:
    """Client i sends ``bodies[i]`` one after another on a keep-alive connection, a new
    one after every ``per_connection`` requests if not 0 (its connect time counts in the
    next request's); all clients start together. Wall seconds from the start to the last
    reply."""
    parts = urlsplit(url)
    barrier = threading.Barrier(len(bodies) + 1)
    replies: list[list[Reply]] = [[] for _ in bodies]
    headers = {"Content-Type": "application/json"}

    def client(i: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
        conn.connect()
        barrier.wait()
        for n, body in enumerate(bodies[i]):
            if per_connection and n and n % per_connection == 0:
                conn.close()  # the next request connects again
            started = time.perf_counter()
            try:
                conn.request("POST", COMPUTE, body, headers)
                response = conn.getresponse()
                data = response.read()
            except (http.client.HTTPException, OSError) as exc:
                conn.close()
                replies[i].append(Reply(time.perf_counter() - started, 0, type(exc).__name__))
                continue
            seconds = time.perf_counter() - started
            code = "" if response.status == 200 else _error_code(data)
            replies[i].append(Reply(seconds, response.status, code))
        conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=30)
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, [r for per in replies for r in per]


def machine_cpu_seconds() -> float:
    """CPU time this machine has spent busy (all processes, kernel included)."""
    fields = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _error_code(data: bytes) -> str:
    try:
        return str(json.loads(data).get("code", "?"))
    except (ValueError, AttributeError):
        return "?"


@dataclass
class Bench:
    provider: Server
    proxy: Server | None
    groups: dict[str, list[int]]  # process group -> pids, for CPU time
    workers: list[int]  # the Provider's workers (each keeps the connections it accepted)
    per_connection: int  # requests per client connection; 0: one for the whole pass

    def counts(self) -> Counter[str] | None:
        if self.proxy is None:
            return None
        return Counter(requests.get(self.proxy.url + "/counts", timeout=10).json())

    def run(self, label: str, bodies: list[list[bytes]]) -> Pass:
        rpc_before = self.counts()
        before = {name: cpu_seconds(pids) for name, pids in self.groups.items()}
        per_worker = [cpu_seconds([pid]) for pid in self.workers]
        client, machine = time.process_time(), machine_cpu_seconds()
        seconds, replies = send_starts(self.provider.url, bodies, self.per_connection)
        cpu = {name: cpu_seconds(self.groups[name]) - s for name, s in before.items()}
        cpu["client"] = time.process_time() - client
        cpu["others"] = machine_cpu_seconds() - machine - sum(cpu.values())
        per_worker = [
            cpu_seconds([pid]) - s for pid, s in zip(self.workers, per_worker, strict=True)
        ]
        rpc_after = self.counts()
        rpc = rpc_after - rpc_before if rpc_after is not None and rpc_before is not None else None
        result = Pass(label, seconds, replies, rpc, cpu, per_worker)
        progress(
            f"{label}: {len(replies)} in {seconds:.2f} s: {result.rate:,.0f}/s, "
            f"p50 {result.percentile_ms(0.5):.1f} ms, p99 {result.percentile_ms(0.99):.1f} ms, "
            f"{result.statuses()}, RPC per request: {per_request(rpc, len(replies))}"
        )
        return result


# --- report ---------------------------------------------------------------------------------


def report(
    rounds: list[Pass], warmup: Pass, replays: Pass, args: argparse.Namespace, dataset: Dataset
) -> bool:
    print(f"\n{measured_code()}")
    print(setup_line(args))
    print(f"DDO source: {dataset.source}; {dataset.did}, service {dataset.service_id!r}")
    report_rounds(rounds)
    starts = sum(len(r.replies) for r in rounds)
    timed = None if args.direct else sum((r.rpc or Counter() for r in rounds), Counter[str]())
    print(f"RPC calls per start (timed rounds): {per_request(timed, starts)}")
    if not args.direct:
        print(f"RPC calls in the warm-up ({len(warmup.replies)} starts): {dict(warmup.rpc or {})}")
    print(
        "Cached per worker for good, read in the warm-up: the datatoken's isDeployed binding "
        "and OCEAN's decimals (an eth_call in the rounds is a worker the warm-up missed). "
        "Not cached: each order's receipt (every order is used once)."
    )
    if dataset.ddo is None:
        print(
            "The DDO: indexed and resolved in the warm-up, then checked against the index at "
            "most once a second per worker (eth_blockNumber + eth_getLogs in one batch); "
            "the service's files are decrypted once per worker (cached by ciphertext)."
        )
    print(
        f"Fees: priceMin {PRICE_PER_MINUTE} OCEAN/min, validUntil 1 h ahead: each order pays "
        "0.6 OCEAN (allowance approved once per consumer); the Provider checks the fee paid."
    )
    cpu = {name: sum(r.cpu[name] for r in rounds) for name in rounds[0].cpu}
    wall = sum(r.seconds for r in rounds)
    cores = ", ".join(f"{name} {seconds / wall:.2f}" for name, seconds in cpu.items())
    print(
        f"Provider CPU per start: {1000 * cpu['provider'] / starts:.2f} ms; "
        f"CPU cores used in the rounds: {cores} (others: the rest of this machine's "
        "processes and the kernel, which share its cores)"
    )
    refused = replays.statuses()
    print(
        f"Replays of used orders: {len(replays.replies)} at {replays.rate:,.0f}/s, "
        f"p50 {replays.percentile_ms(0.5):.1f} ms, {refused}; RPC calls per refusal: "
        f"{per_request(replays.rpc, len(replays.replies))} (a receipt is cached only in the "
        "worker that verified it)"
    )
    started = [r for p in [warmup, *rounds] for r in p.replies]
    return all(r.status == 200 for r in started) and set(refused) == {"400 order_already_used"}


def setup_line(args: argparse.Namespace) -> str:
    clients = f"{args.connections} keep-alive connections, one consumer each"
    if args.requests_per_connection:
        clients += f", each replaced after {args.requests_per_connection} requests"
    parts = [
        f"Compute starts: signed POST {COMPUTE}, each naming its own startOrder (first use)",
        clients,
        f"Provider: gunicorn {args.workers} workers x 4 threads (as `ocean-provider serve`), "
        "SQLite nonces and ledger, instant stub engine",
        "NETWORK_URL: " + ("anvil itself" if args.direct else "a counting proxy in front of anvil"),
        f"{os.cpu_count()} CPUs",
    ]
    if args.py_spy:
        parts.append("py-spy sampling one worker")
    return "; ".join(parts)


def verdict(rounds: list[Pass], target: float) -> str:
    if any(r.status != 200 for p in rounds for r in p.replies):
        return "void (not every start succeeded)"
    return "met" if statistics.median(r.rate for r in rounds) >= target else "NOT met"


def provider_cores(result: Pass) -> str:
    """``1.43 (0.76+0.67)``: cores the Provider used, and each worker's part (a worker
    that accepted few of the connections cannot be busy)."""
    workers = "+".join(f"{s / result.seconds:.2f}" for s in result.worker_cpu)
    return f"{result.cpu['provider'] / result.seconds:.2f} ({workers})"


def report_rounds(rounds: list[Pass]) -> None:
    print(
        f"{'round':>5} {'starts':>7} {'starts/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'Provider cores (workers)':>24} {'others':>6}  replies"
    )
    for i, result in enumerate(rounds, start=1):
        print(
            f"{i:5d} {len(result.replies):7d} {result.rate:9,.0f} "
            f"{result.percentile_ms(0.5):7.1f} {result.percentile_ms(0.99):7.1f} "
            f"{provider_cores(result):>24} "
            f"{result.cpu['others'] / result.seconds:6.2f}  {result.statuses()}"
        )
    rates = [r.rate for r in rounds]
    median = statistics.median(rates)
    target = 10 * REFERENCE_STARTS_PER_S
    print(
        f"starts/s: median {median:,.0f} (min-max {min(rates):,.0f}-{max(rates):,.0f}); "
        f"p50 {statistics.median(r.percentile_ms(0.5) for r in rounds):.1f} ms, "
        f"p99 {statistics.median(r.percentile_ms(0.99) for r in rounds):.1f} ms (medians of "
        f"rounds); target {target}/s, 10x the reference's ~{REFERENCE_STARTS_PER_S}: "
        f"{verdict(rounds, target)}"
    )


# --- main -----------------------------------------------------------------------------------


def child_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_SETTINGS}
    env["HOME"] = str(root)
    return env


def start_servers(
    stack: ExitStack, root: Path, anvil: Anvil, market: Market, args: argparse.Namespace
) -> Bench:
    me = [sys.executable, str(Path(__file__).resolve())]
    env = child_env(root)
    health = f"{OPERATOR}/environments?chainId={CHAIN}"
    stub = stack.enter_context(served("stub", [*me, "--serve", "stub"], env, root, health))
    proxy = None
    if not args.direct:
        argv = [*me, "--serve", "proxy", "--upstream", anvil.url]
        proxy = stack.enter_context(served("proxy", argv, env, root, "/counts"))
    config = root / "provider.json"
    environ = {
        "NETWORK_URL": proxy.url if proxy else anvil.url,
        "PROVIDER_PRIVATE_KEY": PROVIDER_KEY,
        "OPERATOR_SERVICE_URL": stub.url,
        "STORAGE_PATH": str(root / "provider" / "provider.db"),
        "PROVIDER_FEE_TOKEN": market.deployment.ocean,
        "RATE_LIMITS": "off",  # every consumer starts from loopback: one client IP
    }
    dataset = market.dataset
    if dataset.ddo is None:  # the Provider resolves it from the chain, as in production
        environ["ADDRESS_FILE"] = str(root / "address.json")
        write_address_file(root / "address.json", market.deployment)
    config.write_text(json.dumps({"environ": environ, "did": dataset.did, "ddo": dataset.ddo}))
    argv = [*me, "--serve", "provider", "--workers", str(args.workers), "--config", str(config)]
    provider = stack.enter_context(served("provider", argv, env, root, "/"))
    wait_for_workers(provider, args.workers)
    groups = {"provider": provider.pids(), "anvil": [anvil.pid or 0], "stub": stub.pids()}
    if proxy is not None:
        groups["proxy"] = proxy.pids()
    return Bench(provider, proxy, groups, provider.workers(), args.requests_per_connection)


def wait_for_workers(server: Server, count: int) -> None:
    """Until gunicorn has forked all its workers (it answers as soon as one is up)."""
    deadline = time.monotonic() + 30
    while len(server.workers()) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name} has {len(server.workers())} of {count} workers")
        time.sleep(0.05)
    time.sleep(1)  # each worker imports and builds the app after the fork


def py_spy(stack: ExitStack, bench: Bench, out: Path) -> None:
    """Sample the first worker until the rounds end (flame graph .svg, speedscope .json,
    else collapsed stacks)."""
    kind = {".svg": "flamegraph", ".json": "speedscope"}.get(out.suffix, "raw")
    worker = bench.provider.workers()[0]
    argv = ["py-spy", "record", "--pid", str(worker), "--rate", "200", "--nonblocking"]
    binary = Path(sys.executable).with_name("py-spy")
    argv[0] = str(binary) if binary.exists() else "py-spy"
    process = subprocess.Popen(
        [*argv, "--format", kind, "--output", str(out)],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )

    def stop() -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                stop_group(process)

    stack.callback(stop)
    progress(f"py-spy records worker {worker} into {out}")


def signed_starts(
    consumers: list[Consumer], dataset: Dataset, orders: list[list[str]]
) -> list[list[bytes]]:
    """Each connection's start requests: its consumer's, one per order, nonces increasing."""
    pairs = zip(consumers, orders, strict=True)
    return [[c.start_body(dataset, tx) for tx in o] for c, o in pairs]


def run_parts(stack: ExitStack, root: Path, args: argparse.Namespace) -> bool:
    consumers = [Consumer.named(f"consumer {i}") for i in range(args.connections)]
    orders_each = math.ceil(args.orders / args.connections) + WARMUP_PER_CONNECTION
    anvil = stack.enter_context(Anvil(binary=find_anvil()))
    progress(f"anvil up at {anvil.url} (pid {anvil.pid}); deploying Ocean's contracts")
    market = open_market(anvil.url, consumers, orders_each, args.real_ddo)
    stack.callback(market.session.close)
    progress(f"placing {orders_each} orders for each of {len(consumers)} consumers")
    orders = place_orders(market, consumers, orders_each)
    bench = start_servers(stack, root, anvil, market, args)
    warm = [o[:WARMUP_PER_CONNECTION] for o in orders]
    warmup = bench.run("warm-up", signed_starts(consumers, market.dataset, warm))
    if any(r.status != 200 for r in warmup.replies):
        lines = bench.provider.log.read_text().splitlines()
        log = [line for line in lines if '"POST ' not in line][-40:]  # no access log lines
        raise RuntimeError(
            f"warm-up starts failed: {warmup.statuses()}; Provider log:\n" + "\n".join(log)
        )
    timed = [o[WARMUP_PER_CONNECTION:] for o in orders]
    rounds = []
    with ExitStack() as spy:
        if args.py_spy:
            py_spy(spy, bench, args.py_spy.resolve())
        for n in range(args.rounds):
            fresh = [o[n :: args.rounds] for o in timed]
            rounds.append(
                bench.run(
                    f"round {n + 1}/{args.rounds}",
                    signed_starts(consumers, market.dataset, fresh),
                )
            )
    used = [o[:REPLAYS_PER_CONNECTION] for o in timed]
    replays = bench.run("replays", signed_starts(consumers, market.dataset, used))
    return report(rounds, warmup, replays, args, market.dataset)


def benchmark(args: argparse.Namespace) -> int:
    return run_in_tempdir(
        "start-bench-",
        lambda stack, root: run_parts(stack, root, args),
        args.log_dir,
        stopping="stopping servers and anvil",
        invalid="some starts failed or a replay was not refused",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--orders", type=int, default=2000, help="timed starts, one order each")
    add("--connections", type=int, default=16, help="concurrent keep-alive connections")
    add("--rounds", type=int, default=3, help="timed rounds (the orders split among them)")
    add("--workers", type=int, default=2, help="Provider gunicorn workers")
    add(
        "--requests-per-connection",
        type=int,
        default=0,
        help="reconnect after this many requests (0: keep each connection for a whole round)",
    )
    add(
        "--real-ddo",
        action="store_true",
        help="publish the dataset on chain and let the Provider resolve it as in production",
    )
    add("--direct", action="store_true", help="Provider talks to anvil itself (no RPC counts)")
    add("--py-spy", type=Path, help="record one Provider worker in the rounds into this file")
    add("--log-dir", type=Path, help="keep the servers' logs here")
    add("--serve", choices=["stub", "proxy", "provider"], help=argparse.SUPPRESS)
    add("--bind", help=argparse.SUPPRESS)
    add("--upstream", help=argparse.SUPPRESS)
    add("--config", type=Path, help=argparse.SUPPRESS)
    return parser


def _interrupted(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.serve == "stub":
        run_stub(args.bind)
    elif args.serve == "proxy":
        run_proxy(args.bind, args.upstream)
    elif args.serve == "provider":
        run_provider(args.bind, args.config, args.workers)
    else:
        signal.signal(signal.SIGTERM, _interrupted)  # stop everything on SIGTERM too
        try:
            return benchmark(args)
        except KeyboardInterrupt:
            progress("interrupted; servers and anvil stopped")
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
