"""The local engine through its Operator-Service API: real jobs in real bubblewrap."""

from __future__ import annotations

import contextlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from requests import PreparedRequest

from ocean_provider.devnet.embedded import EmbeddedEngine, start_embedded_engine
from ocean_provider.errors import (
    JobNotFound,
    OperatorFailed,
    OperatorRejected,
    RangeNotSatisfiable,
    ResultNotFound,
)
from ocean_provider.operator.client import OperatorClient
from ocean_provider.wire.request_signature import HEADER
from tests.conftest import OTHER_KEY, PROVIDER_KEY
from tests.engine.conftest import environment, start_engine
from tests.engine.jobs import DID, OWNER, read_result, submit, wait, workflow

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("data_url")]
DATA = "DATA_URL"  # replaced by the data_url fixture with the file server's numbers.csv

COUNT_LINES = """
import json, os, pathlib
dids = json.loads(os.environ["DIDS"])
data = pathlib.Path("/data/inputs") / dids[0].replace("/", "_") / "0"
numbers = [int(x) for x in data.read_text().split()]
custom = json.loads(pathlib.Path("/data/inputs/algoCustomData.json").read_text())
out = pathlib.Path("/data/outputs")
(out / "sum.txt").write_text(str(sum(numbers)))
(out / "deep").mkdir()
(out / "deep" / "big.txt").write_text(str(len([n for n in numbers if n > custom["threshold"]])))
print("processed", len(numbers), "numbers")
"""


def test_job_runs_and_publishes_results(running_engine: EmbeddedEngine, file_server: str) -> None:
    client = running_engine.client
    job_id = submit(client, COUNT_LINES, f"{file_server}/numbers.csv")
    job = wait(client, job_id)
    assert (job.status, job.status_text) == (70, "Job completed"), read_result(
        client, job, "configurationLog"
    )
    assert [(r.index, r.filename, r.type) for r in job.results] == [
        (0, "deep/big.txt", "output"),
        (1, "sum.txt", "output"),
        (2, "algorithm.log", "algorithmLog"),
        (3, "configure.log", "configurationLog"),
    ]
    assert read_result(client, job, "sum.txt") == b"5050"
    assert read_result(client, job, "deep/big.txt") == b"50"
    assert b"processed 100 numbers" in read_result(client, job, "algorithmLog")
    ranged = client.result(OWNER, job_id, 1, "bytes=1-2")
    assert ranged.status == 206 and b"".join(ranged.chunks()) == b"05"


def test_nonzero_exit_is_41(running_engine: EmbeddedEngine) -> None:
    job = wait(running_engine.client, submit(running_engine.client, "raise SystemExit(1)", DATA))
    assert job.status == 41 and "exit code 1" in job.status_text


def test_endless_loop_times_out_42(tmp_path: Path) -> None:
    engine = start_engine(tmp_path / "e", [environment(maxJobDuration=2)])
    try:
        job = wait(engine.client, submit(engine.client, "while True: pass", DATA), timeout=30)
        assert job.status == 42
    finally:
        engine.close()


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("x = bytearray(2 * 1024**3)\nx[::4096] = b'1' * len(x[::4096])", "memory"),
        ("import os\nwhile True:\n    try: os.fork()\n    except OSError: pass", ""),
        ("f = open('/data/outputs/fill', 'wb')\nwhile True: f.write(b'0' * 65536)", "output"),
    ],
    ids=["memory-hog", "fork-bomb", "disk-filler"],
)
def test_limits_stop_abusive_algorithms(
    running_engine: EmbeddedEngine, code: str, words: str
) -> None:
    job = wait(running_engine.client, submit(running_engine.client, code, DATA), timeout=60)
    assert job.status in (41, 42), job.status_text
    assert words in job.status_text.lower()


ESCAPES = """
import socket, pathlib
def attempt(name, action):
    try:
        action()
        print(name, "ALLOWED")
    except Exception as exc:
        print(name, "BLOCKED", type(exc).__name__)
attempt("socket", lambda: socket.create_connection(("127.0.0.1", PORT), timeout=2))
attempt("shadow", lambda: open("/etc/shadow").read())
attempt("engine-db", lambda: open("ENGINE_DB").read())
attempt("root", lambda: next(p for p in pathlib.Path("/root").iterdir() if p.name != ".pyenv"))
attempt("write-inputs", lambda: pathlib.Path("/data/inputs/x").write_text("x"))
attempt("write-outputs", lambda: pathlib.Path("/data/outputs/ok").write_text("x"))
"""


def test_sandbox_blocks_escapes(running_engine: EmbeddedEngine, file_server: str) -> None:
    port = int(file_server.rsplit(":", 1)[1])
    db = running_engine.storage / "engine.db"
    code = ESCAPES.replace("PORT", str(port)).replace("ENGINE_DB", str(db))
    job = wait(running_engine.client, submit(running_engine.client, code, DATA))
    log = read_result(running_engine.client, job, "algorithmLog").decode()
    for name in ("socket", "shadow", "engine-db", "root", "write-inputs"):
        assert f"{name} BLOCKED" in log, log
    assert "write-outputs ALLOWED" in log
    assert job.status == 70


def test_stop_mid_run(running_engine: EmbeddedEngine) -> None:
    client = running_engine.client
    job_id = submit(client, "import time; print('started', flush=True); time.sleep(60)", DATA)
    wait(client, job_id, until={40})
    client.stop(OWNER, job_id, None)
    job = wait(client, job_id, timeout=10)
    assert (job.status, job.status_text) == (7, "Job stopped")


def test_unknown_image_and_missing_data_fail_in_provisioning(
    running_engine: EmbeddedEngine, file_server: str
) -> None:
    client = running_engine.client
    job = wait(client, submit(client, "print(1)", f"{file_server}/numbers.csv", image="ruby"))
    assert job.status == 32 and "no local runtime" in job.status_text
    job = wait(client, submit(client, "print(1)", f"{file_server}/missing.csv"))
    assert job.status == 31 and "HTTP 404" in job.status_text
    assert b"FAILED" in read_result(client, job, "configurationLog")
    # its sandbox was set up during the download, but never let go: no algorithm log
    assert [r.type for r in job.results] == ["configurationLog"]


def test_stop_by_document_stops_only_jobs_on_that_document(
    running_engine: EmbeddedEngine,
) -> None:
    client = running_engine.client
    job_id = submit(client, "import time; time.sleep(60)", DATA)
    wait(client, job_id, until={40})
    assert client.stop(OWNER, None, "did:op:" + "e" * 64) == []
    assert client.status(OWNER, job_id)[0].status == 40
    (stopping,) = client.stop(OWNER, None, DID)
    assert stopping.job_id == job_id
    assert wait(client, job_id, timeout=10).status == 7


def test_delete_removes_job_and_files(running_engine: EmbeddedEngine) -> None:
    client = running_engine.client
    job_id = submit(client, "open('/data/outputs/o', 'w').write('1')", DATA)
    wait(client, job_id)
    (deleted,) = client.delete(OWNER, job_id, None)
    assert deleted.status == 8
    assert not (running_engine.storage / "jobs" / job_id).exists()
    with pytest.raises(JobNotFound):
        client.status(OWNER, job_id)


def test_foreign_and_unknown_jobs_are_404(running_engine: EmbeddedEngine) -> None:
    client = running_engine.client
    job_id = submit(client, "print(1)", DATA)
    stranger = "0x" + "5" * 40
    for call in (
        lambda: client.status(stranger, job_id),
        lambda: client.stop(stranger, job_id, None),
        lambda: client.delete(stranger, job_id, None),
        lambda: client.status(OWNER, "nope"),
    ):
        with pytest.raises(JobNotFound):
            call()
    wait(client, job_id)
    with pytest.raises(ResultNotFound):
        client.result(stranger, job_id, 0, None)
    with pytest.raises(ResultNotFound):
        client.result(OWNER, job_id, 99, None)


def test_only_allowed_providers_with_fresh_nonces(running_engine: EmbeddedEngine) -> None:
    intruder = OperatorClient(running_engine.url, OTHER_KEY, connect_timeout=2, read_timeout=5)
    with pytest.raises(OperatorFailed, match="credentials"):
        intruder.status(OWNER)
    body = {
        **workflow("print(1)", DATA),
        "owner": OWNER,
        "providerAddress": "0xe08A1dAe983BC701D05E492DB80e0144f8f4b909",
        "providerSignature": "0x" + "00" * 65,
        "nonce": 1,
    }
    reply = requests.post(f"{running_engine.url}/api/v1/operator/compute", json=body, timeout=5)
    assert reply.status_code == 400 and reply.json()["code"].startswith("signature")
    signed = _signed(running_engine.client, "GET", {"owner": OWNER})  # sent twice
    first, again = (_send(signed) for _ in range(2))
    assert first.status_code == 200, first.text
    assert (again.status_code, again.json()["code"]) == (400, "nonce_not_fresh")


def test_wrong_provider_key_is_named(running_engine: EmbeddedEngine) -> None:
    """providerAddress is allowed, the key that signed is not its key."""
    forger = OperatorClient(running_engine.url, OTHER_KEY, connect_timeout=2, read_timeout=5)
    forger.provider_address = running_engine.client.provider_address
    reply = _send(_signed(forger, "GET", {"owner": OWNER}))
    assert (reply.status_code, reply.json()["code"]) == (400, "signature_invalid")
    assert "providerSignature was not made by providerAddress" in reply.json()["error"]
    assert "consumerAddress" not in reply.text


def test_a_signed_request_is_good_for_its_own_route_only(running_engine: EmbeddedEngine) -> None:
    """A status signature and its header, replayed as DELETE, PUT or POST: all refused,
    and the refusals do not spend the nonce."""
    client = running_engine.client
    job_id = submit(client, "print(1)", DATA)
    status = _signed(client, "GET", {"owner": OWNER, "jobId": job_id})
    url, headers = status.url, status.headers
    for method in ("DELETE", "PUT"):
        replay = requests.request(method, url, headers=headers, timeout=5)
        assert (replay.status_code, replay.json()["code"]) == (400, "signature_invalid"), method
    fields = dict(parse_qsl(urlsplit(url).query))
    post = requests.post(
        url.split("?")[0], json={**workflow("print(2)", DATA), **fields}, headers=headers
    )
    assert (post.status_code, post.json()["code"]) == (400, "signature_invalid")
    for extra in ("&documentId=did:op:x", "&jobId=other"):  # a query changed after signing
        tampered = requests.get(url + extra, headers=headers, timeout=5)
        assert tampered.status_code == 400 and tampered.json()["code"] == "signature_invalid"
    unsigned = requests.get(url, timeout=5)  # Ocean's protocol alone: the header is required
    assert (unsigned.status_code, unsigned.json()["code"]) == (400, "signature_invalid")
    assert "X-Provider-Request-Signature" in unsigned.json()["error"]
    assert _send(status).status_code == 200  # the genuine request still works, once
    assert client.status(OWNER, job_id)[0].job_id == job_id


def test_deep_json_post_is_400_and_the_engine_lives(running_engine: EmbeddedEngine) -> None:
    url = f"{running_engine.url}/api/v1/operator/compute"
    deep = "[" * 100_000 + "]" * 100_000
    for body in (deep, '{"owner": ' + deep + "}"):
        reply = requests.post(
            url, data=body, headers={"Content-Type": "application/json"}, timeout=10
        )
        assert reply.status_code == 400
    assert running_engine.client.status(OWNER) is not None


NAMES = ["semi;colon.txt", 'x";filename=evil.html', "a b.txt", "café.txt"]
WRITE_NAMES = f"""
import pathlib
for name in {NAMES!r}:
    (pathlib.Path("/data/outputs") / name).write_text(name)
"""


def test_result_names_survive_and_bad_ranges_are_416(running_engine: EmbeddedEngine) -> None:
    client = running_engine.client
    job = wait(client, submit(client, WRITE_NAMES, DATA))
    assert job.status == 70, job.status_text
    outputs = {r.filename: r.index for r in job.results if r.type == "output"}
    assert set(outputs) == set(NAMES)
    for name, index in outputs.items():
        download = client.result(OWNER, job.job_id, index, None)
        assert (download.filename, b"".join(download.chunks())) == (name, name.encode())
        # opaque, whatever the name says (schema fuzzer: the engine sent text/plain for .txt)
        assert download.headers["Content-Type"] == "application/octet-stream"
    size = len(b"a b.txt")
    with pytest.raises(RangeNotSatisfiable) as raised:
        client.result(OWNER, job.job_id, outputs["a b.txt"], "bytes=100-200")
    assert (raised.value.status, raised.value.size) == (416, size)


def _signed(client: OperatorClient, method: str, params: dict[str, str]) -> PreparedRequest:
    """A request signed as the client signs it (both signatures), not sent."""
    signed = {**params, **client._signed(params["owner"], params.get("jobId"))}
    prepared = requests.Request(method, f"{client._base}/compute", params=signed).prepare()
    nonce = str(signed["nonce"])
    prepared.headers[HEADER] = client._request_signature(prepared, nonce)
    return prepared


def _send(prepared: PreparedRequest) -> requests.Response:
    with requests.Session() as session:
        return session.send(prepared.copy(), timeout=5)


def test_one_agreement_one_active_job(running_engine: EmbeddedEngine) -> None:
    client = running_engine.client
    payload = workflow("import time; time.sleep(5)", DATA)
    client.start(OWNER, payload)
    with pytest.raises(OperatorRejected, match="already used"):
        client.start(OWNER, payload)


def test_results_are_deleted_after_storage_expiry(tmp_path: Path, file_server: str) -> None:
    engine = start_engine(tmp_path / "e", [environment(storageExpiry=1)])
    try:
        client = engine.client
        job = wait(client, submit(client, "open('/data/outputs/o', 'w').write('1')", DATA))
        failed = wait(client, submit(client, "print(1)", f"{file_server}/missing.csv"))
        assert (job.status, failed.status) == (70, 31) and job.results
        for finished in (job, failed):  # the status says when the files go
            assert finished.date_finished is not None
            assert finished.expire_timestamp == pytest.approx(finished.date_finished + 1, abs=0.01)
        jobs_dir = engine.storage / "jobs"
        assert (jobs_dir / job.job_id).exists() and (jobs_dir / failed.job_id).exists()
        for finished in (job, failed):  # decrypted file objects are not kept
            record = engine.context.store.get(finished.job_id)
            assert record is not None
            assert record.workflow["stages"][0]["input"][0]["files"] == []
        deadline = time.monotonic() + 20  # expiry is checked every few seconds
        while (jobs_dir / job.job_id).exists() or (jobs_dir / failed.job_id).exists():
            assert time.monotonic() < deadline, "files outlived storageExpiry"
            time.sleep(0.2)
        (kept,) = client.status(OWNER, job.job_id)
        assert kept.status == 70 and kept.results == []  # the record stays; files are gone
        assert kept.expire_timestamp is None
        with pytest.raises(ResultNotFound):
            client.result(OWNER, job.job_id, 0, None)
    finally:
        engine.close()


def test_two_provider_processes_sharing_a_key(running_engine: EmbeddedEngine) -> None:
    """Process B signs with a nonce below one process A already used: B re-signs."""
    first = running_engine.client
    second = OperatorClient(running_engine.url, PROVIDER_KEY, connect_timeout=2, read_timeout=10)
    stale = iter([1])
    fresh = second._nonces.next
    second._nonces.next = lambda: next(stale, None) or fresh()  # type: ignore[method-assign]
    try:
        first.status(OWNER)
        job_id = second.start(OWNER, workflow("print(1)", DATA))[0].job_id
        assert wait(second, job_id).status == 70
    finally:
        second.close()


LINKS = """
import os, pathlib
out = pathlib.Path("/data/outputs")
os.symlink("/etc/shadow", out / "shadow")
os.symlink("ENGINE_DB", out / "db")
os.symlink("/etc", out / "etc-dir")
os.symlink("/etc/shadow", "/data/logs/algorithm.log")
(out / "name\\nwith\\rbreaks.txt").write_text("ok")
print("linked")
"""


def test_links_left_by_a_job_are_never_followed(running_engine: EmbeddedEngine) -> None:
    client = running_engine.client
    code = LINKS.replace("ENGINE_DB", str(running_engine.storage / "engine.db"))
    job = wait(client, submit(client, code, DATA))
    assert job.status == 70, job.status_text
    names = [r.filename for r in job.results]
    assert names == ["name\nwith\rbreaks.txt", "algorithm.log", "configure.log"]
    assert read_result(client, job, "algorithmLog") == b"linked\n"
    download = client.result(OWNER, job.job_id, 0, None)
    assert b"".join(download.chunks()) == b"ok"
    assert download.filename == "name_with_breaks.txt"

    # a result swapped for a link after publishing is refused, not followed
    stored = running_engine.storage / "jobs" / job.job_id / "admin" / "algorithm.log"
    stored.unlink()
    stored.symlink_to("/etc/shadow")
    with pytest.raises(ResultNotFound):
        client.result(OWNER, job.job_id, 1, None)


UNLINKED_FILLER = """
import os
chunk = b"0" * (1 << 20)
held = []
for n in range(64):
    f = open(f"/data/outputs/f{n}", "wb")
    os.unlink(f"/data/outputs/f{n}")
    for _ in range(4):
        f.write(chunk)
    held.append(f)
import time; time.sleep(30)
"""


def test_deleted_open_files_count_against_the_output_limit(tmp_path: Path) -> None:
    engine = start_engine(tmp_path / "e", [environment(maxOutputMB=16)])
    try:
        job = wait(engine.client, submit(engine.client, UNLINKED_FILLER, DATA), timeout=30)
        assert (job.status, job.status_text) == (
            41,
            "Algorithm failed: output limit 16 MiB exceeded",
        )
    finally:
        engine.close()


class _Trickle(BaseHTTPRequestHandler):
    """A dataset that arrives one byte every 50 ms (a slow or hostile origin)."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        with contextlib.suppress(OSError):
            for _ in range(400):
                self.wfile.write(b"1")
                self.wfile.flush()
                time.sleep(0.05)

    def log_message(self, *args: object) -> None:
        pass


def test_stop_during_provisioning_cancels_the_download(running_engine: EmbeddedEngine) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = running_engine.client
        url = f"http://127.0.0.1:{server.server_address[1]}/data.csv"
        job_id = submit(client, "print(1)", url)
        wait(client, job_id, until={20})
        time.sleep(0.3)  # the download is under way
        started = time.monotonic()
        client.stop(OWNER, job_id, None)
        job = wait(client, job_id, timeout=10)
        assert (job.status, job.status_text) == (7, "Job stopped")
        assert time.monotonic() - started < 3
    finally:
        server.shutdown()
        server.server_close()


def test_a_jobs_inputs_share_one_size_budget(tmp_path: Path) -> None:
    engine = start_embedded_engine(
        tmp_path / "e", [environment()], PROVIDER_KEY, MAX_INPUT_BYTES="400"
    )
    try:
        payload = workflow("print(1)", DATA)  # numbers.csv is 292 bytes: one fits, two do not
        item = payload["workflow"]["stages"][0]["input"][0]
        item["files"] = item["files"] * 2
        (job,) = engine.client.start(OWNER, payload)
        job = wait(engine.client, job.job_id)
        assert job.status == 31
        assert "inputs exceed the engine's input size limit" in job.status_text
    finally:
        engine.close()
