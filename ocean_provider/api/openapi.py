"""The Provider's routes for its OpenAPI document: the request models each view parses, its
reply, and the error codes it can answer (``web.openapi`` builds the document).

Keyed by Flask endpoint; ``tests/api/test_openapi.py`` checks that every route clients look up
is here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from pydantic import Field

from ocean_provider.api.replies import (
    EnvironmentsReply,
    FileInfoReply,
    InitializeReply,
    JobStatusList,
    NonceReply,
    ProviderInfo,
)
from ocean_provider.compute.document_requests import ChainId, DecryptRequest
from ocean_provider.compute.requests import (
    DeleteRequest,
    EnvironmentsRequest,
    InitializeRequest,
    JobRequest,
    NonceRequest,
    ResultRequest,
    StartRequest,
)
from ocean_provider.consume.requests import DownloadRequest, FileInfoRequest
from ocean_provider.web.openapi import METRICS_OPERATION, Operation
from ocean_provider.wire.fields import Schema

TITLE = "Ocean Provider"
DESCRIPTION = (
    "Compute-to-Data Provider for Ocean Protocol. Errors are JSON `{error, code}` with a "
    "stable code (a request of the wrong shape adds `errors`, field -> messages); each "
    "reply below lists the codes a route can answer. Signed routes: see the README's "
    '"Wire decisions" for the message each one signs.'
)

SHAPE = ("invalid_request",)
SIGNED = ("invalid_request", "signature_missing", "signature_invalid", "nonce_too_low")
SIGNED_ONCE = (*SIGNED, "signature_reused")
ENGINE = {
    404: ("compute_disabled",),
    502: ("operator_error",),
    503: ("operator_unavailable",),
}
CHAIN = {400: ("chain_not_supported",), 503: ("chain_unavailable",)}
NONCES = {503: ("nonce_store_unavailable",)}
BODY = {413: ("payload_too_large",)}
ASSET = (
    "did_not_found",
    "metadata_hash_mismatch",
    "files_malformed",
    "files_datatoken_mismatch",
    "files_nft_mismatch",
    "unsupported_file_type",
    "compute_services_not_in_same_provider",
    "asset_not_consumable",
    "asset_malformed",
    "not_found",
    "main_service_compute",
    "service_not_access_compute",
    "credential_not_in_allow_list",
    "credential_in_deny_list",
    "credentials_malformed",
)
ALGORITHM = (
    "no_raw_algo_allowed",
    "not_trusted_algo",
    "not_trusted_algo_publisher",
    "no_publisherTrustedAlgorithms",
    "algorithm_file_checksum_mismatch",
    "algorithm_container_checksum_mismatch",
    "not_algo",
    "file_unavailable",
    "missing_entrypoint_image_checksum",
    "checksum_prefix",
)
ORDER = (
    "order_not_found",
    "order_pending",
    "order_failed",
    "order_not_confirmed",
    "datatoken_not_of_asset",
    "datatoken_unknown",
    "order_wrong_datatoken",
    "order_wrong_service",
    "order_amount_too_low",
    "order_wrong_consumer",
    "order_expired",
    "provider_fee_missing",
    "provider_fee_wrong_provider",
    "provider_fee_invalid_signature",
    "provider_fee_wrong_environment",
    "provider_fee_expired",
    "fees_not_paid",
    "order_already_used",
)
DOCUMENT = (
    "checksum_mismatch",
    "factory_unknown",
    "nft_not_from_factory",
    "invalid_metadata_state",
    "transaction_not_found",
    "transaction_pending",
    "transaction_unconfirmed",
    "transaction_failed",
    "metadata_event_not_found",
    "decrypt_failed",
    "decompress_failed",
)


class EncryptQuery(Schema):
    """``POST /encrypt``'s query; the body is the document (``application/octet-stream``)."""

    chain_id: ChainId = Field(alias="chainId")


def _with(*groups: Mapping[int, tuple[str, ...]]) -> dict[int, tuple[str, ...]]:
    merged: dict[int, tuple[str, ...]] = {}
    for group in groups:
        for status, codes in group.items():
            merged[status] = tuple(dict.fromkeys((*merged.get(status, ()), *codes)))
    return merged


_ROUTES: dict[str, Operation] = {
    "root.version": Operation(
        "This Provider: version, chains, addresses and the service endpoints",
        reply=ProviderInfo,
        tags=("info",),
    ),
    "nonces.nonce": Operation(
        "The last nonce this address used (sign with a larger one)",
        reply=NonceReply,
        query=NonceRequest,
        errors=_with({400: SHAPE, 405: ("method_not_allowed",)}, NONCES),
        tags=("info",),
    ),
    "services.computeEnvironments": Operation(
        "Compute environments: a list with chainId, else an object keyed by chain id",
        reply=EnvironmentsReply,
        query=EnvironmentsRequest,
        errors=_with({400: (*SHAPE, "environment_not_found")}, ENGINE),
        tags=("compute",),
    ),
    "services.initializeCompute": Operation(
        "Provider fees (or still-valid orders) for a job's datasets and algorithm",
        reply=InitializeReply,
        body=InitializeRequest,
        errors=_with(
            {400: (*SHAPE, "environment_not_found", *ASSET, *ALGORITHM, *ORDER)},
            {501: ("ddo_source_missing",)},
            ENGINE,
            CHAIN,
            BODY,
        ),
        tags=("compute",),
    ),
    "services.computeStart": Operation(
        "Start a job: signed over consumerAddress + dataset.documentId + nonce",
        reply=JobStatusList,
        body=StartRequest,
        errors=_with(
            {
                400: (
                    *SIGNED_ONCE,
                    "environment_not_found",
                    "operator_rejected",
                    *ASSET,
                    *ALGORITHM,
                    *ORDER,
                )
            },
            {501: ("ddo_source_missing",)},
            ENGINE,
            CHAIN,
            NONCES,
            BODY,
        ),
        tags=("compute",),
    ),
    "services.computeStatus": Operation(
        "Jobs' status: signed, or unsigned with owner and jobId (README STATUS_ACCESS)",
        reply=JobStatusList,
        query=JobRequest,
        errors=_with(
            {400: SIGNED_ONCE, 404: ("job_not_found",), 405: ("method_not_allowed",)},
            ENGINE,
            NONCES,
        ),
        tags=("compute",),
    ),
    "services.computeStop": Operation(
        "Stop the signer's jobs (one with jobId)",
        reply=JobStatusList,
        query=JobRequest,
        errors=_with({400: SIGNED_ONCE, 404: ("job_not_found",)}, ENGINE, NONCES),
        tags=("compute",),
    ),
    "services.computeDelete": Operation(
        "Delete one of the signer's jobs and its results",
        reply=JobStatusList,
        query=DeleteRequest,
        errors=_with({400: SIGNED_ONCE, 404: ("job_not_found",)}, ENGINE, NONCES),
        tags=("compute",),
    ),
    "services.computeResult": Operation(
        "Download one result file (streamed; one bytes Range is forwarded)",
        query=ResultRequest,
        reply_media="application/octet-stream",
        errors=_with(
            {
                400: SIGNED_ONCE,
                404: ("job_not_found", "result_not_found"),
                405: ("method_not_allowed",),
                416: ("range_not_satisfiable",),
            },
            ENGINE,
            NONCES,
        ),
        tags=("compute",),
    ),
    "documents.encrypt": Operation(
        "ECIES-encrypt the body to this Provider's key: 201 with 0x-hex text",
        query=EncryptQuery,
        body_media="application/octet-stream",
        status=201,
        reply_media="text/plain",
        errors=_with({400: (*SHAPE, "chain_not_supported")}, BODY),
        tags=("documents",),
    ),
    "documents.decrypt": Operation(
        "Decrypt an asset's DDO: signed over (transactionId or dataNftAddress) + "
        "decrypterAddress + chainId + nonce; 201 with the document",
        body=DecryptRequest,
        status=201,
        reply_media="text/plain",
        errors=_with(
            {
                400: (*SIGNED_ONCE, *DOCUMENT),
                403: (
                    "decrypter_not_authorized",
                    "asset_end_of_life",
                    "asset_deprecated",
                    "asset_revoked",
                ),
            },
            CHAIN,
            NONCES,
            BODY,
        ),
        tags=("documents",),
    ),
    "consume.fileinfo": Operation(
        "Describe a service's files (or one url file object): type, size, validity",
        reply=FileInfoReply,
        body=FileInfoRequest,
        errors=_with(
            {400: (*SHAPE, *ASSET)}, {502: ("file_unavailable",)}, {501: ("ddo_source_missing",)}
        ),
        tags=("consume",),
    ),
    "consume.download": Operation(
        "Download a file of an asset's service: signed over documentId + nonce",
        query=DownloadRequest,
        reply_media="application/octet-stream",
        errors=_with(
            {
                400: (
                    *SIGNED_ONCE,
                    *ASSET,
                    *ORDER,
                    "not_access_service",
                    "file_index_out_of_range",
                ),
                405: ("method_not_allowed",),
                416: ("range_not_satisfiable",),
            },
            {501: ("ddo_source_missing",), 502: ("file_unavailable",)},
            CHAIN,
            NONCES,
        ),
        tags=("consume",),
    ),
}

# Every route but GET / (the health check) and /metrics may answer 429 (README "Rate limits")
LIMITED = {429: ("rate_limited",)}
PROVIDER_OPERATIONS: dict[str, Operation] = {
    **{
        name: op if name == "root.version" else replace(op, errors=_with(op.errors, LIMITED))
        for name, op in _ROUTES.items()
    },
    "metrics": METRICS_OPERATION,
}
