"""``create_engine_app(settings)``: the local engine's wiring. Nothing runs at import."""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, jsonify

from ocean_provider import __version__
from ocean_provider.config import EngineSettings
from ocean_provider.engine.api import EXTENSION, EngineContext
from ocean_provider.engine.api import bp as operator_bp
from ocean_provider.engine.environments import (
    Environment,
    Runtime,
    parse_environments,
    parse_runtimes,
)
from ocean_provider.engine.metrics import EngineMetrics
from ocean_provider.engine.openapi import DESCRIPTION, ENGINE_OPERATIONS, TITLE
from ocean_provider.engine.provision import Provisioner
from ocean_provider.engine.replay import ReplayCache
from ocean_provider.engine.sandbox import sandbox_available
from ocean_provider.engine.sandbox.limits import remove_stale_cgroups
from ocean_provider.engine.store import JobStore
from ocean_provider.engine.worker import Scheduler, WorkerConfig
from ocean_provider.errors import ConfigurationError
from ocean_provider.fetch.fetcher import FetchPolicy, SafeFetcher
from ocean_provider.web.error_handlers import register_error_handlers
from ocean_provider.web.json_provider import BoundedJSONProvider
from ocean_provider.web.metrics import install_metrics
from ocean_provider.web.openapi import register_openapi
from ocean_provider.web.request_log import install_request_log

log = logging.getLogger(__name__)
OPERATOR_PREFIX = "/api/v1/operator"


def check_engine_settings(
    settings: EngineSettings,
) -> tuple[dict[str, Environment], list[Runtime]]:
    """Fail fast on what the engine cannot run with. Opens no file or socket, so the
    gunicorn master can call it before forking (a SQLite handle carried across fork
    and closed in the child drops that process's locks on the database)."""
    missing = sandbox_available()
    if missing is not None:
        raise ConfigurationError(f"the engine cannot sandbox jobs: {missing}")
    return parse_environments(settings.environments), parse_runtimes(settings.runtimes)


def create_engine_app(settings: EngineSettings, *, start_scheduler: bool = True) -> Flask:
    environments, runtimes = check_engine_settings(settings)
    remove_stale_cgroups(settings.storage_dir / "jobs")
    storage = settings.storage_dir
    store = JobStore(
        storage / "engine.db", {env.id: env.storage_expiry for env in environments.values()}
    )
    fetcher = SafeFetcher(
        FetchPolicy(
            allow_private=settings.allow_private_downloads,
            max_bytes=settings.max_input_bytes,
            total_timeout=settings.provision_seconds,
        )
    )
    seen = settings.observability
    metrics = EngineMetrics(store, multiprocess_dir=seen.metrics_dir, token=seen.metrics_token)
    scheduler = Scheduler(
        store,
        environments,
        Provisioner(fetcher, runtimes),
        WorkerConfig(storage / "jobs", settings.provision_seconds, settings.publish_seconds),
        on_outcome=metrics.observe_outcome,
    )
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024 * 1024
    app.json = BoundedJSONProvider(app)  # a deep body is a 400, not a dead worker
    app.json.sort_keys = False
    observer = install_metrics(app, metrics)
    install_request_log(app, json_lines=seen.log_format == "json", observers=(observer,))
    app.extensions[EXTENSION] = EngineContext(
        store=store,
        scheduler=scheduler,
        environments=environments,
        replay=ReplayCache(),
        allowed_providers=settings.allowed_providers,
    )
    app.register_blueprint(operator_bp, url_prefix=OPERATOR_PREFIX)
    app.add_url_rule("/", "info", _info)
    app.add_url_rule(f"{OPERATOR_PREFIX}/health", "health", _health)
    register_openapi(app, ENGINE_OPERATIONS, prefix="/api/v1", title=TITLE, description=DESCRIPTION)
    register_error_handlers(app)
    if start_scheduler:
        scheduler.start()
    log.info("engine ready: %d environment(s), storage %s", len(environments), storage)
    return app


def _info() -> Response:
    return jsonify(
        {"software": "Operator service (ocean-provider local engine)", "version": __version__}
    )


def _health() -> Response:
    ctx: EngineContext = current_app.extensions[EXTENSION]
    return jsonify({"status": "ok", "environments": len(ctx.environments)})
