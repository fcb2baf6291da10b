"""The compute service the views call: policy, orders, workflow building, job routing.

Every method receives an already-authenticated signer; ownership is enforced
here, so a foreign job looks exactly like a missing one.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ocean_provider.auth.addresses import checksum_address
from ocean_provider.auth.order_ledger import OrderLedger
from ocean_provider.compute import policy
from ocean_provider.compute.interfaces import (
    Asset,
    ComputeBackend,
    DdoResolver,
    FeeIssuer,
    OrderVerifier,
    ResultStream,
    VerifiedOrder,
)
from ocean_provider.compute.requests import (
    AlgorithmInput,
    DatasetInput,
    InitializeAlgorithm,
    InitializeRequest,
    StartRequest,
)
from ocean_provider.compute.workflow import PreparedAlgorithm, PreparedInput, build_workflow
from ocean_provider.errors import (
    ComputeDisabled,
    ComputeRefused,
    EnvironmentNotFound,
    JobNotFound,
    OperatorFailed,
    ValidationFailed,
)
from ocean_provider.wire.jobs import OperatorJob

log = logging.getLogger(__name__)
ZERO_ADDRESS = "0x" + "0" * 40
ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
# Environments are asked for by every UI refresh; the engine is asked at most this often
# per chain and worker (their currentJobs may lag by as much).
ENVIRONMENTS_TTL = 2.0


class ComputeService:
    def __init__(
        self,
        backend: ComputeBackend | None,
        ddos: DdoResolver,
        orders: OrderVerifier,
        fees: FeeIssuer,
        ledger: OrderLedger,
        *,
        chain_ids: list[int],
        fee_tokens: Mapping[int, str],
        consumer_addresses: Mapping[int, str],
        metadata_uri: str | None,
        environments_ttl: float = ENVIRONMENTS_TTL,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._backend = backend
        self._ddos = ddos
        self._orders = orders
        self._fees = fees
        self._ledger = ledger
        self._wall_clock = wall_clock
        self._chain_ids = chain_ids
        self._fee_tokens = fee_tokens
        self._consumer_addresses = consumer_addresses
        self._metadata_uri = metadata_uri
        self._environments_ttl = environments_ttl
        self._clock = clock
        self._announced: dict[int, tuple[float, list[dict[str, Any]]]] = {}

    @property
    def backend(self) -> ComputeBackend:
        if self._backend is None:
            raise ComputeDisabled(
                "compute is not enabled on this Provider: set OPERATOR_SERVICE_URL to an engine"
            )
        return self._backend

    def environments(self, chain_id: int) -> list[dict[str, Any]]:
        if chain_id not in self._chain_ids:
            raise EnvironmentNotFound(f"this Provider does not serve chain {chain_id}")
        now = self._clock()
        cached = self._announced.get(chain_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        envs = self.backend.environments(chain_id)
        token = self._fee_tokens.get(chain_id, ZERO_ADDRESS)
        consumer = self._consumer_addresses.get(chain_id, ZERO_ADDRESS)
        announced = [
            {
                **env,
                "feeToken": _set(env.get("feeToken")) or token,
                # the address orders name as consumer: the engine's own, else this Provider's
                "consumerAddress": _set(env.get("consumerAddress")) or consumer,
            }
            for env in envs
        ]
        self._announced[chain_id] = (now + self._environments_ttl, announced)
        return announced

    def environments_by_chain(self) -> dict[str, list[dict[str, Any]]]:
        return {str(chain): self.environments(chain) for chain in self._chain_ids}

    def start(self, signer: str, request: StartRequest) -> list[OperatorJob]:
        self.backend  # noqa: B018 - compute must be enabled before anything is resolved
        dataset = self._ddos.resolve(request.dataset.document_id)
        chain = dataset.chain_id
        environment = self._environment(chain, request.environment)
        orders: dict[str, str] = {}  # tx id -> the resource that named it
        items = [("dataset", dataset, request.dataset)]
        for i, extra in enumerate(request.additional_datasets, start=1):
            items.append((f"datasets[{i}]", self._ddos.resolve(extra.document_id), extra))
        inputs, paid = [], []
        for resource, asset, item in items:
            prepared, order = self._prepare_input(signer, asset, item, environment, resource)
            inputs.append(prepared)
            paid.append(order)
            orders.setdefault(order.tx_id.lower(), resource)
        main_service = policy.compute_service(dataset, request.dataset.service_id, "dataset")
        algorithm = self._prepare_algorithm(signer, request, main_service)
        if algorithm.tx_id:
            orders.setdefault(algorithm.tx_id.lower(), "algorithm")
        self._orders.check_fees(chain, paid, environment)
        payload = build_workflow(
            environment=request.environment,
            chain_id=chain,
            inputs=inputs,
            algorithm=algorithm,
            metadata_uri=self._metadata_uri,
            valid_until=max(order.valid_until for order in paid),
        )
        jobs = self._start_once(signer, chain, orders, payload)
        log.info("job %s started for %s", jobs[0].job_id, signer)
        return jobs

    def _start_once(
        self, signer: str, chain: int, orders: Mapping[str, str], payload: dict[str, Any]
    ) -> list[OperatorJob]:
        """Claim the orders and start the job as one attempt: each order starts one job
        only, and an engine call that fails gives its orders back."""
        tx_ids = list(orders)
        used = self._ledger.claim(chain, tx_ids, signer)
        if used:
            raise ComputeRefused(
                f"{orders[used[0].lower()]}.transferTxId",
                "order_already_used",
                "this order already started a compute job; order again to start another",
            )
        try:
            jobs = self.backend.start(signer, payload)
        except Exception:
            self._ledger.release(chain, tx_ids)
            raise
        if not jobs:
            raise OperatorFailed("compute engine accepted the job but returned no status")
        self._ledger.attach(chain, tx_ids, jobs[0].job_id)
        return jobs

    def initialize(self, request: InitializeRequest) -> dict[str, Any]:
        """Provider fees (or still-valid orders) for each dataset and the algorithm."""
        valid_until = request.compute.valid_until
        if valid_until <= self._wall_clock():
            raise ValidationFailed({"compute.validUntil": ["The validUntil value is not correct."]})
        assets = [self._ddos.resolve(item.document_id) for item in request.datasets]
        environment = self._environment(assets[0].chain_id, request.compute.env)
        consumer = checksum_address(request.consumer_address)
        algo = request.algorithm
        algo_asset = self._ddos.resolve(algo.document_id) if algo.document_id else None
        if algo_asset is not None:
            policy.check_is_algorithm(algo_asset)
        reply: dict[str, Any] = {"datasets": []}
        for i, (asset, item) in enumerate(zip(assets, request.datasets, strict=True)):
            resource = "dataset" if i == 0 else f"datasets[{i}]"
            service = self._input_service(asset, item.service_id, resource)
            if service.get("type") == "compute":
                self._check_algorithm_allowed(service, algo, algo_asset, resource)
            fee = _FeeRequest(asset, item.service_id, item.transfer_tx_id, resource, i == 0)
            reply["datasets"].append(self._fee_item(fee, consumer, environment, valid_until))
        if algo_asset is not None and algo.service_id:
            fee = _FeeRequest(algo_asset, algo.service_id, algo.transfer_tx_id, "algorithm", False)
            reply["algorithm"] = self._fee_item(fee, consumer, environment, valid_until)
        return reply

    def _fee_item(
        self,
        item: _FeeRequest,
        consumer: str,
        environment: Mapping[str, Any],
        valid_until: int,
    ) -> dict[str, Any]:
        """``{"validOrder"}`` when the named order still covers ``valid_until``; else a fee
        to order with (and the order to reuse, if it is valid but its fee ran out)."""
        service = item.asset.service(item.service_id) or {}
        reply: dict[str, Any] = {}
        if item.tx_id:
            try:
                order = self._orders.verify(
                    asset=item.asset,
                    service_id=item.service_id,
                    tx_id=item.tx_id,
                    consumer=consumer,
                    environment=environment if item.resource != "algorithm" else None,
                    resource=item.resource,
                    allow_expired_fee=True,
                )
            except ComputeRefused as refused:
                log.info("initializeCompute: %s is not a valid order: %s", item.tx_id, refused.code)
            else:
                if valid_until <= order.valid_until:
                    return {"validOrder": order.order_tx_id}
                reply["validOrder"] = order.order_tx_id
        datatoken = str(service.get("datatokenAddress", ""))
        fee = self._fees.issue(
            chain_id=item.asset.chain_id,
            datatoken=datatoken,
            service_id=item.service_id,
            environment=environment,
            valid_until=valid_until,
            charge=item.charged,
        )
        return {"datatoken": datatoken, "providerFee": fee, **reply}

    def _environment(self, chain_id: int, env_id: str) -> Mapping[str, Any]:
        for env in self.environments(chain_id):
            if env.get("id") == env_id:
                return env
        raise EnvironmentNotFound(f"compute environment {env_id!r} does not exist")

    @staticmethod
    def _input_service(asset: Asset, service_id: str, resource: str) -> Mapping[str, Any]:
        if resource == "dataset":
            return policy.compute_service(asset, service_id, resource)
        service = asset.service(service_id)
        if service is None:
            raise ComputeRefused(f"{resource}.serviceId", "not_found")
        if service.get("type") not in ("compute", "access"):
            raise ComputeRefused(f"{resource}.serviceId", "service_not_access_compute")
        return service

    @staticmethod
    def _check_algorithm_allowed(
        service: Mapping[str, Any],
        algo: AlgorithmInput | InitializeAlgorithm,
        algo_asset: Asset | None,
        resource: str,
    ) -> None:
        if algo_asset is None:
            policy.check_raw_algorithm_allowed(service, resource)
        else:
            policy.check_published_algorithm_allowed(service, algo_asset, resource)

    def _prepare_input(
        self,
        signer: str,
        asset: Asset,
        item: DatasetInput,
        environment: Mapping[str, Any],
        resource: str,
    ) -> tuple[PreparedInput, VerifiedOrder]:
        service = self._input_service(asset, item.service_id, resource)
        order = self._orders.verify(
            asset=asset,
            service_id=item.service_id,
            tx_id=item.transfer_tx_id,
            consumer=signer,
            environment=environment,
            resource=resource,
        )
        prepared = PreparedInput(
            asset=asset,
            service_id=item.service_id,
            tx_id=item.transfer_tx_id,
            files=self._ddos.service_files(asset, item.service_id),
            userdata=item.userdata,
            allow_network=policy.network_allowed(service),
        )
        return prepared, order

    def _prepare_algorithm(
        self, signer: str, request: StartRequest, dataset_service: Mapping[str, Any]
    ) -> PreparedAlgorithm:
        algo = request.algorithm
        custom = algo.algocustomdata or request.algocustomdata
        if algo.meta is not None:
            policy.check_raw_algorithm_allowed(dataset_service, "dataset")
            return PreparedAlgorithm(
                container=algo.meta.container.model_dump(),
                rawcode=algo.meta.rawcode,
                url=algo.meta.url,
                userdata=algo.userdata,
                customdata=custom,
            )
        assert algo.document_id and algo.service_id and algo.transfer_tx_id  # schema guarantees
        asset = self._ddos.resolve(algo.document_id)
        section = policy.check_is_algorithm(asset)
        policy.check_published_algorithm_allowed(dataset_service, asset, "dataset")
        service = asset.service(algo.service_id)
        if service is None:
            raise ComputeRefused("algorithm.serviceId", "not_found")
        self._orders.verify(  # as the reference: no environment or expiry check here
            asset=asset,
            service_id=algo.service_id,
            tx_id=algo.transfer_tx_id,
            consumer=signer,
            environment=None,
            resource="algorithm",
        )
        return PreparedAlgorithm(
            container=section["container"],
            asset=asset,
            service_id=algo.service_id,
            tx_id=algo.transfer_tx_id,
            service_endpoint=str(service.get("serviceEndpoint", "")),
            files=self._ddos.service_files(asset, algo.service_id),
            userdata=algo.userdata,
            customdata=custom,
        )

    def status(self, signer: str, job_id: str | None, document_id: str | None) -> list[OperatorJob]:
        jobs = _owned(signer, self.backend.status(signer, job_id, document_id))
        if document_id:
            jobs = [job for job in jobs if document_id in job.input_dids]
        if job_id and not jobs:
            raise JobNotFound("no such job for this consumer")
        return jobs

    def stop(self, signer: str, job_id: str | None, document_id: str | None) -> list[OperatorJob]:
        self.status(signer, job_id, document_id)
        return _owned(signer, self.backend.stop(signer, job_id, document_id))

    def delete(self, signer: str, job_id: str | None, document_id: str | None) -> list[OperatorJob]:
        """Delete the signer's jobs; an engine that answers nothing gets the prior status back."""
        before = self.status(signer, job_id, document_id)
        if not before:
            raise JobNotFound("no such job for this consumer")
        after = _owned(signer, self.backend.delete(signer, job_id, document_id))
        return after or before

    def result(
        self, signer: str, job_id: str, index: int, range_header: str | None
    ) -> ResultStream:
        self.status(signer, job_id, None)
        return self.backend.result(signer, job_id, index, range_header)


@dataclass(frozen=True)
class _FeeRequest:
    asset: Asset
    service_id: str
    tx_id: str | None
    resource: str
    charged: bool  # the first dataset carries the environment's price; the rest are free


def _set(address: object) -> str | None:
    """An address an engine announced, or None when it gave none or the zero address."""
    if isinstance(address, str) and ADDRESS.fullmatch(address) and int(address, 16) != 0:
        return address
    return None


def _owned(signer: str, jobs: list[OperatorJob]) -> list[OperatorJob]:
    """Keep the signer's jobs only, whatever the engine returned."""
    owned = []
    for job in jobs:
        try:
            if checksum_address(job.owner) == signer:
                owned.append(job)
        except ValueError:
            continue
    return owned
