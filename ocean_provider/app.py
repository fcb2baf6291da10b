"""``create_app(settings)``: wiring only. Nothing here runs at import time."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask_cors import CORS

from ocean_provider.api.compute import bp as compute_bp
from ocean_provider.api.consume import bp as consume_bp
from ocean_provider.api.context import EXTENSION, ProviderContext
from ocean_provider.api.documents import bp as documents_bp
from ocean_provider.api.info import nonces as nonces_bp
from ocean_provider.api.info import root as root_bp
from ocean_provider.api.metrics import ProviderMetrics
from ocean_provider.api.openapi import DESCRIPTION, PROVIDER_OPERATIONS, TITLE
from ocean_provider.auth.authenticator import RequestAuthenticator
from ocean_provider.auth.nonces import NonceStore, RedisNonceStore, SqliteNonceStore
from ocean_provider.auth.order_ledger import OrderLedger, RedisOrderLedger, SqliteOrderLedger
from ocean_provider.chain.issuer import ChainFeeIssuer
from ocean_provider.chain.orders import ChainOrderVerifier
from ocean_provider.chain.reads import ChainReader
from ocean_provider.chain.rpc import Chains
from ocean_provider.compute.engines import EngineRouter
from ocean_provider.compute.interfaces import (
    ComputeBackend,
    DdoResolver,
    Documents,
    FeeIssuer,
    OrderVerifier,
    UnavailableDdoResolver,
)
from ocean_provider.compute.service import ComputeService
from ocean_provider.config import ProviderSettings
from ocean_provider.consume.service import ConsumeService
from ocean_provider.ddo.crypto import ProviderCipher
from ocean_provider.ddo.documents import ChainDocuments
from ocean_provider.ddo.files import ServiceFiles
from ocean_provider.ddo.resolvers import resolver_from_settings
from ocean_provider.errors import ConfigurationError
from ocean_provider.operator.client import OperatorClient
from ocean_provider.web.error_handlers import register_error_handlers
from ocean_provider.web.json_provider import BoundedJSONProvider
from ocean_provider.web.metrics import install_metrics
from ocean_provider.web.openapi import register_openapi
from ocean_provider.web.rate_limits import RateLimits
from ocean_provider.web.request_log import (
    REQUEST_ID_HEADER,
    current_request_id,
    install_request_log,
    note_signer,
)

log = logging.getLogger(__name__)
SERVICES_PREFIX = "/api/services"
REDIS_TIMEOUT = 3.0  # seconds; a Redis that does not answer is a 503, not a hung worker


def create_app(
    settings: ProviderSettings,
    *,
    backend: ComputeBackend | None = None,
    ddos: DdoResolver | None = None,
    orders: OrderVerifier | None = None,
    fees: FeeIssuer | None = None,
    nonces: NonceStore | None = None,
    ledger: OrderLedger | None = None,
    documents: Documents | None = None,
) -> Flask:
    """Build the Provider app; tests pass fakes for the chain-facing parts."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json = BoundedJSONProvider(app)
    app.json.sort_keys = False
    CORS(app, expose_headers=[REQUEST_ID_HEADER])
    metrics = _observe(app, settings)
    reader = _chain_reader(settings)  # one per app: its caches serve every chain part
    orders = orders or ChainOrderVerifier(reader, settings.provider_addresses)
    fees = fees or ChainFeeIssuer(reader, settings.provider_keys)
    ciphers = {chain: ProviderCipher(key) for chain, key in settings.provider_keys.items()}
    documents = documents or _chain_documents(settings, reader, ciphers)
    files = ServiceFiles(
        ciphers,
        ipfs_gateway=settings.ipfs_gateway,
        arweave_gateway=settings.arweave_gateway,
        max_checksum_bytes=settings.max_checksum_bytes,
        allow_private=settings.allow_private_downloads,
        timeout=settings.request_timeout,
    )
    ddos = ddos or _ddo_resolver(settings, reader.chains, ciphers, files)
    redis_client = _redis(settings)
    rate_limits = _rate_limits(app, settings)
    compute = ComputeService(
        backend if backend is not None else _compute_backend(settings, metrics),
        ddos,
        orders,
        fees,
        ledger or _order_ledger(settings, redis_client),
        files=files,
        chain_ids=settings.chain_ids,
        fee_tokens=settings.provider_fee_token,
        consumer_addresses=settings.provider_addresses,
        metadata_uri=settings.aquarius_url,
    )
    app.extensions[EXTENSION] = ProviderContext(
        settings=settings,
        auth=RequestAuthenticator(
            nonces or _nonce_store(settings, redis_client), rate_limits, on_signer=note_signer
        ),
        compute=compute,
        documents=documents,
        consume=ConsumeService(
            ddos,
            orders,
            compute,
            timeout=settings.request_timeout,
            max_checksum_bytes=settings.max_checksum_bytes,
            allow_private=settings.allow_private_downloads,
        ),
    )
    app.register_blueprint(root_bp)
    app.register_blueprint(compute_bp, url_prefix=SERVICES_PREFIX)
    app.register_blueprint(nonces_bp, url_prefix=SERVICES_PREFIX)
    app.register_blueprint(documents_bp, url_prefix=SERVICES_PREFIX)
    app.register_blueprint(consume_bp, url_prefix=SERVICES_PREFIX)
    register_openapi(app, PROVIDER_OPERATIONS, prefix="/api", title=TITLE, description=DESCRIPTION)
    register_error_handlers(app)
    return app


def _observe(app: Flask, settings: ProviderSettings) -> ProviderMetrics:
    """``/metrics``, the request id and the request line (README "Metrics and logs")."""
    seen = settings.observability
    metrics = ProviderMetrics(multiprocess_dir=seen.metrics_dir, token=seen.metrics_token)
    observer = install_metrics(app, metrics)
    install_request_log(app, json_lines=seen.log_format == "json", observers=(observer,))
    return metrics


def _compute_backend(
    settings: ProviderSettings, metrics: ProviderMetrics | None = None
) -> ComputeBackend | None:
    """One engine's client (``OPERATOR_SERVICE_URL``), a router over several
    (``OPERATOR_SERVICES``), or None: compute disabled."""
    if settings.operator_services:
        return EngineRouter(
            {
                e.name: _operator_client(settings, e.url, e.key, metrics)
                for e in settings.operator_services
            }
        )
    if settings.operator_service_url is None:
        log.warning(
            "OPERATOR_SERVICE_URL is not set: compute endpoints answer 404 compute_disabled. "
            "Point it at an engine, e.g. `ocean-provider engine` on http://127.0.0.1:8050"
        )
        return None
    url, key = settings.operator_service_url, settings.universal_key
    return _operator_client(settings, url, key, metrics)


def _operator_client(
    settings: ProviderSettings, url: str, key: str, metrics: ProviderMetrics | None
) -> OperatorClient:
    return OperatorClient(
        url,
        key,
        connect_timeout=settings.operator_connect_timeout,
        read_timeout=settings.request_timeout,
        observer=metrics.observe_engine_call if metrics is not None else None,
        request_id=current_request_id,
    )


def _chain_reader(settings: ProviderSettings) -> ChainReader:
    chains = Chains(settings.chain_rpc, timeout=settings.request_timeout)
    return ChainReader(
        chains, confirmations=settings.order_confirmations, receipt_wait=settings.order_wait
    )


def _chain_documents(
    settings: ProviderSettings, reader: ChainReader, ciphers: Mapping[int, ProviderCipher]
) -> ChainDocuments:
    return ChainDocuments(
        reader,
        ciphers=ciphers,
        factories={chain: c.factory for chain, c in settings.contracts.items()},
        decrypters=settings.authorized_decrypters,
    )


def _ddo_resolver(
    settings: ProviderSettings,
    chains: Chains,
    ciphers: Mapping[int, ProviderCipher],
    files: ServiceFiles,
) -> DdoResolver:
    """The configured DDO source; without one, a resolver that refuses starts clearly."""
    try:
        return resolver_from_settings(settings, chains, ciphers, files)
    except ConfigurationError as exc:
        log.warning("%s: compute jobs cannot start until it is set", exc)
        return UnavailableDdoResolver(str(exc))


def _redis(settings: ProviderSettings) -> Any:
    if not settings.redis_connection:
        return None
    import redis

    return redis.Redis.from_url(
        settings.redis_connection,
        socket_connect_timeout=REDIS_TIMEOUT,
        socket_timeout=REDIS_TIMEOUT,
    )


def _rate_limits(app: Flask, settings: ProviderSettings) -> RateLimits | None:
    """Per client IP before each view, per signer in authentication; none when off."""
    if settings.rate_limits is None:
        return None
    limits = RateLimits(settings.rate_limits, settings.redis_connection)
    limits.init_app(app)
    return limits


def _nonce_store(settings: ProviderSettings, redis_client: Any) -> NonceStore:
    if redis_client is not None:
        return RedisNonceStore(redis_client)
    return SqliteNonceStore(settings.storage_path)


def _order_ledger(settings: ProviderSettings, redis_client: Any) -> OrderLedger:
    """Kept where the nonces are: shared by every worker and host of this Provider."""
    if redis_client is not None:
        return RedisOrderLedger(redis_client)
    return SqliteOrderLedger(settings.storage_path)
