"""The compute service the views call: policy, orders, workflow building, job routing.

Every method receives an already-authenticated signer; ownership is enforced
here, so a foreign job looks exactly like a missing one.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ocean_provider.auth.addresses import ADDRESS, checksum_address
from ocean_provider.auth.order_ledger import OrderLedger
from ocean_provider.compute import policy
from ocean_provider.compute.interfaces import (
    AlgorithmChecksums,
    Asset,
    AssetFiles,
    ComputeBackend,
    DdoResolver,
    FeeIssuer,
    OrderVerifier,
    ResultStream,
    VerifiedOrder,
)
from ocean_provider.compute.policy import PublishedAlgorithm
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
    OperatorUnavailable,
    ValidationFailed,
)
from ocean_provider.wire.jobs import ACCEPTS_FILES, OperatorJob

log = logging.getLogger(__name__)
ZERO_ADDRESS = "0x" + "0" * 40
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
        files: AssetFiles | None = None,
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
        self._files = files  # hashes algorithm files; without it, pinned checksums refuse
        self._environments_ttl = environments_ttl
        self._clock = clock
        self._announced: dict[int, tuple[float, list[dict[str, Any]]]] = {}

    @property
    def backend(self) -> ComputeBackend:
        if self._backend is None:
            raise ComputeDisabled(
                "compute is not enabled on this Provider: set OPERATOR_SERVICE_URL to an engine "
                "(or OPERATOR_SERVICES to several)"
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
        dataset = self._resolve(request.dataset.document_id, "dataset.documentId")
        chain = dataset.chain_id
        environment = self._environment(chain, request.environment)
        algorithm = self._algorithm(request.algorithm, signer)
        orders: dict[str, str] = {}  # tx id -> the resource that named it
        inputs, paid = [], []
        for i, item in enumerate([request.dataset, *request.additional_datasets]):
            resource = policy.input_resource(i)
            asset = dataset if i == 0 else self._resolve(item.document_id, f"{resource}.documentId")
            prepared, order = self._prepare_input(
                signer, asset, item, environment, resource, algorithm
            )
            inputs.append(prepared)
            paid.append(order)
            orders.setdefault(order.tx_id.lower(), resource)
        prepared_algorithm = self._prepare_algorithm(signer, request, algorithm)
        if prepared_algorithm.tx_id:
            orders.setdefault(prepared_algorithm.tx_id.lower(), "algorithm")
        self._orders.check_fees(chain, paid, environment)
        payload = build_workflow(
            environment=request.environment,
            chain_id=chain,
            inputs=inputs,
            algorithm=prepared_algorithm,
            metadata_uri=self._metadata_uri,
            valid_until=max(order.valid_until for order in paid),
            with_files=environment.get(ACCEPTS_FILES) is True,
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
        """Provider fees (or still-valid orders) for each dataset and the algorithm, once
        the same policy as a start allows them."""
        valid_until = request.compute.valid_until
        if valid_until <= self._wall_clock():
            raise ValidationFailed({"compute.validUntil": ["The validUntil value is not correct."]})
        assets = [
            self._resolve(item.document_id, f"{policy.input_resource(i)}.documentId")
            for i, item in enumerate(request.datasets)
        ]
        environment = self._environment(assets[0].chain_id, request.compute.env)
        consumer = checksum_address(request.consumer_address)
        algorithm = self._algorithm(request.algorithm, consumer)
        reply: dict[str, Any] = {"datasets": []}
        for i, (asset, item) in enumerate(zip(assets, request.datasets, strict=True)):
            resource = policy.input_resource(i)
            self._checked_input(asset, item.service_id, consumer, resource, algorithm)
            fee = _FeeRequest(asset, item.service_id, item.transfer_tx_id, resource, i == 0)
            reply["datasets"].append(self._fee_item(fee, consumer, environment, valid_until))
        if algorithm is not None:
            tx_id = request.algorithm.transfer_tx_id
            fee = _FeeRequest(algorithm.asset, algorithm.service_id, tx_id, "algorithm", False)
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
                if env.get("reachable") is False:  # its engine is down (several engines)
                    raise OperatorUnavailable(
                        f"compute environment {env_id!r} is unreachable for now; try again later"
                    )
                return env
        raise EnvironmentNotFound(f"compute environment {env_id!r} does not exist")

    def _resolve(self, did: str, resource: str) -> Asset:
        """The DDO; an unknown DID is refused on ``resource``."""
        try:
            return self._ddos.resolve(did)
        except ComputeRefused as refused:
            if refused.code != "did_not_found":
                raise
            raise ComputeRefused(resource, "did_not_found") from None

    def _service_files(self, asset: Asset, service_id: str, resource: str) -> list[dict[str, Any]]:
        """The service's decrypted files (for the engine only); refusals name ``resource``."""
        try:
            return self._ddos.service_files(asset, service_id)
        except ComputeRefused as refused:
            raise ComputeRefused(resource, refused.code) from None

    def _algorithm(
        self, algo: AlgorithmInput | InitializeAlgorithm, consumer: str
    ) -> PublishedAlgorithm | None:
        """The published algorithm after the checks that need no dataset; None for a raw
        one (its container checked)."""
        if algo.meta is not None:
            policy.check_container(algo.meta.container.model_dump(), require_checksum=False)
            return None
        assert algo.document_id and algo.service_id  # the request schemas guarantee both
        asset = self._resolve(algo.document_id, "algorithm")
        container = policy.check_algorithm_asset(asset)
        service = policy.algorithm_service(asset, algo.service_id)
        policy.check_consumable(asset, consumer, "algorithm.credentials")
        service_id = algo.service_id
        return PublishedAlgorithm(
            asset=asset,
            service_id=service_id,
            service=service,
            container=container,
            files=self._service_files(asset, service_id, "algorithm"),
            checksums=functools.cache(lambda: self._checksums(asset, service_id)),
        )

    def _checksums(self, asset: Asset, service_id: str) -> AlgorithmChecksums:
        if self._files is None:
            raise ComputeRefused(
                "algorithm",
                "file_unavailable",
                "this Provider cannot fetch algorithm files to check the checksums a dataset pins",
            )
        return self._files.algorithm_checksums(asset, service_id)

    def _checked_input(
        self,
        asset: Asset,
        service_id: str,
        consumer: str,
        resource: str,
        algorithm: PublishedAlgorithm | None,
    ) -> tuple[Mapping[str, Any], list[dict[str, Any]]]:
        """One input as the reference's InputItemValidator checks it (orders aside): the
        service, who may use the asset, its files, and whether it runs this algorithm."""
        service = policy.find_service(asset, service_id, resource)
        policy.check_consumable(asset, consumer, resource)
        policy.check_input_service(service, resource, main=resource == "dataset")
        files = self._service_files(asset, service_id, f"{resource}.serviceId")
        policy.check_algorithm_allowed(service, algorithm, resource)
        return service, files

    def _prepare_input(
        self,
        signer: str,
        asset: Asset,
        item: DatasetInput,
        environment: Mapping[str, Any],
        resource: str,
        algorithm: PublishedAlgorithm | None,
    ) -> tuple[PreparedInput, VerifiedOrder]:
        service, files = self._checked_input(asset, item.service_id, signer, resource, algorithm)
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
            files=files,
            userdata=item.userdata,
            allow_network=policy.network_allowed(service),
        )
        return prepared, order

    def _prepare_algorithm(
        self, signer: str, request: StartRequest, algorithm: PublishedAlgorithm | None
    ) -> PreparedAlgorithm:
        algo = request.algorithm
        custom = algo.algocustomdata or request.algocustomdata
        if algorithm is None:
            assert algo.meta is not None  # _algorithm returns None for raw algorithms only
            return PreparedAlgorithm(
                container=algo.meta.container.model_dump(),
                rawcode=algo.meta.rawcode,
                url=algo.meta.url,
                userdata=algo.userdata,
                customdata=custom,
            )
        assert algo.transfer_tx_id  # the schema guarantees it for a published algorithm
        self._orders.verify(  # as the reference: no environment or expiry check here
            asset=algorithm.asset,
            service_id=algorithm.service_id,
            tx_id=algo.transfer_tx_id,
            consumer=signer,
            environment=None,
            resource="algorithm",
        )
        return PreparedAlgorithm(
            container=algorithm.container,
            asset=algorithm.asset,
            service_id=algorithm.service_id,
            tx_id=algo.transfer_tx_id,
            service_endpoint=str(algorithm.service.get("serviceEndpoint", "")),
            files=algorithm.files,
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
