"""WSGI entry points for gunicorn: ``gunicorn 'ocean_provider.wsgi:provider_app()'``.

Each function reads settings (environment + config.ini) and builds the app
when called, never at import.
"""

from __future__ import annotations

import logging

from flask import Flask

from ocean_provider.config import load_provider_settings


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    # urllib3 logs each request line, query string (and so signatures) included, at DEBUG
    logging.getLogger("urllib3").setLevel(max(logging.getLevelName(level), logging.INFO))


def provider_app() -> Flask:
    from ocean_provider.app import create_app

    settings = load_provider_settings()
    configure_logging(settings.log_level)
    return create_app(settings)


def engine_app() -> Flask:
    from ocean_provider.config import load_engine_settings
    from ocean_provider.engine.app import create_engine_app

    settings = load_engine_settings()
    configure_logging(settings.log_level)
    return create_engine_app(settings)
