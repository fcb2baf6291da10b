"""A typed consumer client for a Provider's compute flow, for scripts and other services:
``ProviderClient`` (nonce, initializeCompute, start, status, stop, delete, results) and
``order`` (the on-chain ``startOrder`` with the Provider's fee).

    client = ProviderClient(provider_url, consumer_key)
    fees = client.initialize([ServiceRef(did, "compute")], algorithm, env, valid_until)
    item = fees.datasets[0]
    tx = item.valid_order or order(w3, consumer_key, item.datatoken, item.provider_fee, ...)
    job = client.wait(client.start(Ordered(did, "compute", tx), algorithm, env).job_id)
    output = client.result(job.job_id, job.result_index("output.txt"))
"""

from __future__ import annotations

from ocean_provider.client.errors import (
    ClientError,
    OrderReverted,
    ProviderRefused,
    ProviderReplyInvalid,
)
from ocean_provider.client.models import (
    FeeItem,
    Initialized,
    Job,
    Ordered,
    RawAlgorithm,
    ResultFile,
    ServiceRef,
    provider_fee_from_json,
)
from ocean_provider.client.orders import order, provider_fee_args
from ocean_provider.client.provider import ProviderClient

__all__ = [
    "ClientError",
    "FeeItem",
    "Initialized",
    "Job",
    "OrderReverted",
    "Ordered",
    "ProviderClient",
    "ProviderRefused",
    "ProviderReplyInvalid",
    "RawAlgorithm",
    "ResultFile",
    "ServiceRef",
    "order",
    "provider_fee_args",
    "provider_fee_from_json",
]
