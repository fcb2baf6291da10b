"""The per-app objects views use, kept in ``app.extensions`` (never at module level)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, request

from ocean_provider.auth.authenticator import RequestAuthenticator
from ocean_provider.compute.interfaces import Documents
from ocean_provider.compute.service import ComputeService
from ocean_provider.config import ProviderSettings
from ocean_provider.consume.service import ConsumeService

EXTENSION = "ocean_provider"


@dataclass
class ProviderContext:
    settings: ProviderSettings
    auth: RequestAuthenticator
    compute: ComputeService
    documents: Documents
    consume: ConsumeService
    root_body: bytes | None = None  # GET /'s reply, serialised on first use

    def base_url(self) -> str:
        return self.settings.provider_url or request.host_url


def context() -> ProviderContext:
    ctx: ProviderContext = current_app.extensions[EXTENSION]
    return ctx
