"""Run the local engine (or any WSGI app, or a folder of files) in this process, on loopback.

For integration tests, benchmarks and the dev stack: the real engine with its
real scheduler and sandbox, served by werkzeug's threaded server in a
background thread, plus an ``OperatorClient`` signed by the given provider key.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from flask import Flask
from werkzeug.exceptions import NotFound
from werkzeug.security import safe_join
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from ocean_provider.config import load_engine_settings
from ocean_provider.engine.api import EXTENSION, EngineContext
from ocean_provider.engine.app import create_engine_app
from ocean_provider.operator.client import OperatorClient


@dataclass
class ServedApp:
    """A WSGI app answering on ``url`` until ``close()``."""

    url: str
    server: BaseWSGIServer
    thread: threading.Thread

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


class _UnloggedRequests(WSGIRequestHandler):
    """No access log: Ocean's protocol puts signatures in query strings."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def serve_app(app: Any, name: str = "wsgi") -> ServedApp:
    """Serve ``app`` on 127.0.0.1 at a free port, one thread per request."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_UnloggedRequests)
    thread = threading.Thread(target=server.serve_forever, name=f"{name}-http", daemon=True)
    thread.start()
    return ServedApp(f"http://127.0.0.1:{server.server_port}", server, thread)


def serve_directory(root: Path) -> ServedApp:
    """Serve the files under ``root`` read-only on loopback (sample datasets); 404 otherwise.

    Each reply is the file read whole, so no open file outlives a client that hangs
    up early (the engine does, at its input size cap)."""
    base = str(root)

    @Request.application
    def files(request: Request) -> Response:
        path = safe_join(base, request.path.lstrip("/"))
        if path is None or not Path(path).is_file():
            raise NotFound()
        return Response(Path(path).read_bytes(), mimetype="application/octet-stream")

    return serve_app(files, "files")


@dataclass
class EmbeddedEngine:
    app: Flask
    served: ServedApp
    client: OperatorClient
    storage: Path

    @property
    def url(self) -> str:
        return self.served.url

    @property
    def context(self) -> EngineContext:
        ctx: EngineContext = self.app.extensions[EXTENSION]
        return ctx

    def close(self) -> None:
        """Stop running jobs and the scheduler, then the HTTP server."""
        self.context.scheduler.shutdown()
        self.served.close()
        self.client.close()


def start_embedded_engine(
    storage: Path,
    environments: Sequence[Mapping[str, Any]],
    provider_key: str,
    **settings: str,
) -> EmbeddedEngine:
    """A real engine that serves the provider holding ``provider_key``.

    ``settings`` are extra engine settings by their variable names
    (e.g. ``PROVISION_SECONDS="60"``). Private download addresses are allowed,
    since the data usually comes from a file server on this machine.
    """
    provider = str(Account.from_key(provider_key).address)
    engine_settings = load_engine_settings(
        {
            "ALLOWED_PROVIDERS": json.dumps([provider]),
            "ENGINE_ENVIRONMENTS": json.dumps({"environments": [dict(e) for e in environments]}),
            "ENGINE_STORAGE": str(storage),
            "ALLOW_PRIVATE_DOWNLOADS": "true",
            **settings,
        },
        config_path=None,
    )
    app = create_engine_app(engine_settings)
    served = serve_app(app, "engine")
    client = OperatorClient(served.url, provider_key, connect_timeout=2, read_timeout=30, backoff=0)
    return EmbeddedEngine(app, served, client, storage)
