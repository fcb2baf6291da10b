"""Profile one worker's path for a signed status call: where the time goes.

Runs the Provider app in this process (Flask's test client in front, so no
gunicorn and no load tool in the figures) against an instant stub engine in a
separate process, sends ``--calls`` signed status requests (pre-signed, one
consumer, increasing nonces): half timed plainly (mean time per call), half
under cProfile, whose top entries it prints by cumulative and by own time.

    .venv/bin/python benchmarks/profile_status.py [--calls 2000] [--top 25]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from eth_account import Account
from werkzeug.test import TestResponse

from ocean_provider.app import create_app
from ocean_provider.auth.messages import job_message
from ocean_provider.auth.signing import sign_message
from ocean_provider.config import load_provider_settings
from ocean_provider.devnet.stub_engine import json_stub

CONSUMER_KEY = "0x5d75837394b078ce97bc289fa8d75e21000573520bfa7784a9d28ccaae602bf8"
PROVIDER_KEY = "0xfd5c1ccea015b6d663618850824154a3b3fb2882c46cefb05b9a93fea8c3d215"
JOB_ID = "0123456789abcdef0123456789abcdef"
STATUS = "/api/services/compute"


def one_job(path: str) -> list[dict[str, Any]]:
    """The engine's answer to a status call: the queried owner's one job."""
    query = parse_qs(urlsplit(path).query)
    job = {
        "jobId": query.get("jobId", [JOB_ID])[0],
        "owner": query["owner"][0],
        "agreementId": "0xtx",
        "status": 40,
        "statusText": "Running algorithm",
        "dateCreated": time.time(),
        "dateFinished": None,
        "results": [],
        "inputDID": ["did:op:" + "a" * 64],
        "algoDID": "raw",
    }
    return [job]


def serve_stub() -> None:
    server = json_stub(one_job)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--stub", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stub:
        serve_stub()
        return 0
    stub = subprocess.Popen([sys.executable, __file__, "--stub"], stdout=subprocess.PIPE, text=True)
    try:
        assert stub.stdout is not None
        port = int(stub.stdout.readline())
        with tempfile.TemporaryDirectory() as tmp:
            return profile(port, Path(tmp), args.calls, args.top)
    finally:
        stub.terminate()
        stub.wait(timeout=10)


def _ok(reply: TestResponse) -> bool:
    if reply.status_code != 200:
        print(f"unexpected {reply.status_code}: {reply.get_data(as_text=True)}")
    return reply.status_code == 200


def profile(port: int, tmp: Path, calls: int, top: int) -> int:
    settings = load_provider_settings(
        {
            "NETWORK_URL": "http://127.0.0.1:8545",
            "PROVIDER_PRIVATE_KEY": PROVIDER_KEY,
            "OPERATOR_SERVICE_URL": f"http://127.0.0.1:{port}",
            "STORAGE_PATH": str(tmp / "nonces.db"),
            "RATE_LIMITS": "off",  # --calls statuses from one address and IP
        },
        config_path=None,
    )
    client = create_app(settings).test_client()
    address = Account.from_key(CONSUMER_KEY).address
    message = job_message(address, JOB_ID, None)
    paths = []
    for nonce in range(1, calls + 11):
        signature = sign_message(f"{message}{nonce}", CONSUMER_KEY)
        query = {"consumerAddress": address, "jobId": JOB_ID, "nonce": nonce}
        paths.append(f"{STATUS}?{urlencode({**query, 'signature': signature})}")
    for path in paths[:10]:  # warm up: connections, caches, imports
        assert client.get(path).status_code == 200
    half = 10 + calls // 2
    started = time.perf_counter()
    for path in paths[10:half]:
        if not _ok(client.get(path)):
            return 1
    plain = (time.perf_counter() - started) / (half - 10)
    profiler = cProfile.Profile()
    profiler.enable()
    for path in paths[half:]:
        if not _ok(client.get(path)):
            return 1
    profiler.disable()
    print(f"signed status through the test client: {plain * 1000:.3f} ms per call")
    stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
