"""WSGI entry points for gunicorn: ``gunicorn 'ocean_provider.wsgi:provider_app()'``.

Each function reads settings (environment + config.ini) and builds the app
when called, never at import.
"""

from __future__ import annotations

from flask import Flask

from ocean_provider.config import load_provider_settings
from ocean_provider.web.log_format import configure_logging


def provider_app() -> Flask:
    from ocean_provider.app import create_app

    settings = load_provider_settings()
    configure_logging(settings.log_level, settings.observability.log_format)
    return create_app(settings)


def engine_app() -> Flask:
    from ocean_provider.config import load_engine_settings
    from ocean_provider.engine.app import create_engine_app

    settings = load_engine_settings()
    configure_logging(settings.log_level, settings.observability.log_format)
    return create_engine_app(settings)
