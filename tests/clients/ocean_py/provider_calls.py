"""One ocean.py 3.1.2 ``DataServiceProvider`` call against a Provider: a JSON request on stdin,
the call's result as JSON on the last line of stdout (ocean.py prints there too). Runs in
ocean.py's own venv, driven step by step by tests/clients/test_ocean_py.py.

On Python 3.11 and later, ocean.py's ``enforce_types`` raises ``TypeError: typing.Any cannot
be used with isinstance()`` for any method with an ``Any`` parameter (status, stop, delete,
result); there the undecorated function (``__wrapped__``) is called instead. On 3.10 every
method is called as ocean.py ships it.
"""

import json
import sys

from eth_account import Account
from ocean_lib.assets.ddo import DDO
from ocean_lib.data_provider.data_service_provider import DataServiceProvider as DSP
from ocean_lib.models.compute_input import ComputeInput
from ocean_lib.services.service import Service
from ocean_lib.structures.algorithm_metadata import AlgorithmMetadata

UNWRAP = sys.version_info >= (3, 11)


def method(name):
    found = getattr(DSP, name)
    return found.__wrapped__ if UNWRAP and hasattr(found, "__wrapped__") else found


def compute_input(r, asset, kind):
    service = Service(asset["serviceId"], kind, r["provider"], None, None, None)
    return ComputeInput(DDO(did=asset["documentId"]), service, asset.get("transferTxId"))


def main():
    r = json.load(sys.stdin)
    wallet = Account.from_key(r["key"])
    service = Service("compute", "compute", r["provider"], None, None, None)
    name, provider = r["call"], r["provider"]
    if name == "get_c2d_environments":
        return method(name)(provider, 8996)
    if name == "sign_message":  # ocean.py's nonce step: GET /nonce, then sign with nonce + 1
        nonce, signature = method(name)(wallet, f"{wallet.address}{r['did']}", provider)
        return {"nonce": nonce, "signature": signature}
    if name == "initialize_compute":
        reply = method(name)(
            r["datasets"], r["algorithm"], provider, wallet.address, r["env"], r["validUntil"]
        )
        return reply.json()
    if name == "start_compute_job":
        dataset = compute_input(r, r["dataset"], "compute")
        algorithm = r["algorithm"]
        if "meta" in algorithm:
            extra = {"algorithm_meta": AlgorithmMetadata(algorithm["meta"])}
        else:
            extra = {"algorithm": compute_input(r, algorithm, "access")}
        return method(name)(service, wallet, dataset, r["env"], **extra)
    if name == "compute_job_result":
        content = method(name)(r["jobId"], r["index"], service, wallet)
        return json.loads(content)
    if name in ("compute_job_status", "stop_compute_job", "delete_compute_job"):
        return method(name)(r["did"], r["jobId"], service, wallet)
    raise SystemExit(f"unknown call {name}")


if __name__ == "__main__":
    result = main()
    print()
    print(json.dumps({"result": result, "unwrapped": UNWRAP}))
