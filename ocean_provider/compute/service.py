"""The compute service the views call: policy, orders, workflow building, job routing.

Every method receives an already-authenticated signer; ownership is enforced
here, so a foreign job looks exactly like a missing one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from ocean_provider.auth.addresses import checksum_address
from ocean_provider.compute import policy
from ocean_provider.compute.interfaces import (
    Asset,
    ComputeBackend,
    DdoResolver,
    OrderVerifier,
    ResultStream,
)
from ocean_provider.compute.requests import AlgorithmInput, DatasetInput, StartRequest
from ocean_provider.compute.workflow import PreparedAlgorithm, PreparedInput, build_workflow
from ocean_provider.errors import (
    ComputeDisabled,
    ComputeRefused,
    EnvironmentNotFound,
    JobNotFound,
    OperatorFailed,
)
from ocean_provider.wire.jobs import OperatorJob

log = logging.getLogger(__name__)
# Environments are asked for by every UI refresh; the engine is asked at most this often
# per chain and worker (their currentJobs may lag by as much).
ENVIRONMENTS_TTL = 2.0


class ComputeService:
    def __init__(
        self,
        backend: ComputeBackend | None,
        ddos: DdoResolver,
        orders: OrderVerifier,
        *,
        chain_ids: list[int],
        fee_tokens: Mapping[int, str],
        metadata_uri: str | None,
        environments_ttl: float = ENVIRONMENTS_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backend = backend
        self._ddos = ddos
        self._orders = orders
        self._chain_ids = chain_ids
        self._fee_tokens = fee_tokens
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
        token = self._fee_tokens.get(chain_id, "0x" + "0" * 40)
        announced = [{**env, "feeToken": env.get("feeToken") or token} for env in envs]
        self._announced[chain_id] = (now + self._environments_ttl, announced)
        return announced

    def environments_by_chain(self) -> dict[str, list[dict[str, Any]]]:
        return {str(chain): self.environments(chain) for chain in self._chain_ids}

    def start(self, signer: str, request: StartRequest) -> list[OperatorJob]:
        backend = self.backend
        dataset = self._ddos.resolve(request.dataset.document_id)
        environment = self._environment(dataset.chain_id, request.environment)
        inputs = [self._prepare_input(signer, dataset, request.dataset, environment, "dataset")]
        for i, extra in enumerate(request.additional_datasets, start=1):
            asset = self._ddos.resolve(extra.document_id)
            inputs.append(self._prepare_input(signer, asset, extra, environment, f"datasets[{i}]"))
        main_service = policy.compute_service(dataset, request.dataset.service_id, "dataset")
        algorithm = self._prepare_algorithm(signer, request, main_service, environment)
        payload = build_workflow(
            environment=request.environment,
            chain_id=dataset.chain_id,
            inputs=inputs,
            algorithm=algorithm,
            metadata_uri=self._metadata_uri,
        )
        jobs = backend.start(signer, payload)
        if not jobs:
            raise OperatorFailed("compute engine accepted the job but returned no status")
        log.info("job %s started for %s", jobs[0].job_id, signer)
        return jobs

    def _environment(self, chain_id: int, env_id: str) -> Mapping[str, Any]:
        for env in self.environments(chain_id):
            if env.get("id") == env_id:
                return env
        raise EnvironmentNotFound(f"compute environment {env_id!r} does not exist")

    def _prepare_input(
        self,
        signer: str,
        asset: Asset,
        item: DatasetInput,
        environment: Mapping[str, Any],
        resource: str,
    ) -> PreparedInput:
        service = asset.service(item.service_id)
        if service is None:
            raise ComputeRefused(f"{resource}.serviceId", "not_found")
        if service.get("type") not in ("compute", "access"):
            raise ComputeRefused(f"{resource}.serviceId", "service_not_access_compute")
        self._orders.verify(
            asset=asset,
            service_id=item.service_id,
            tx_id=item.transfer_tx_id,
            consumer=signer,
            environment=environment,
        )
        return PreparedInput(
            asset=asset,
            service_id=item.service_id,
            tx_id=item.transfer_tx_id,
            files=self._ddos.service_files(asset, item.service_id),
            userdata=item.userdata,
            allow_network=policy.network_allowed(service),
        )

    def _prepare_algorithm(
        self,
        signer: str,
        request: StartRequest,
        dataset_service: Mapping[str, Any],
        environment: Mapping[str, Any],
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
        return self._published_algorithm(signer, algo, dataset_service, environment, custom)

    def _published_algorithm(
        self,
        signer: str,
        algo: AlgorithmInput,
        dataset_service: Mapping[str, Any],
        environment: Mapping[str, Any],
        custom: Mapping[str, Any] | None,
    ) -> PreparedAlgorithm:
        assert algo.document_id and algo.service_id and algo.transfer_tx_id  # schema guarantees
        asset = self._ddos.resolve(algo.document_id)
        section = policy.check_is_algorithm(asset)
        policy.check_published_algorithm_allowed(dataset_service, asset, "dataset")
        service = asset.service(algo.service_id)
        if service is None:
            raise ComputeRefused("algorithm.serviceId", "not_found")
        self._orders.verify(
            asset=asset,
            service_id=algo.service_id,
            tx_id=algo.transfer_tx_id,
            consumer=signer,
            environment=environment,
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
