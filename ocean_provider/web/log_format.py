"""How both apps' log lines look: ``LOG_FORMAT=text`` for people, ``json`` for collectors.

A JSON line is one object: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, the
record's ``fields`` (the request line's route, status, ...), the ``request_id`` of the request
being served, if any, and ``exc`` (a traceback) when there is one. gunicorn's own lines use
the same formatter (``gunicorn_log_config``).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from flask import g, has_request_context

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FIELDS = "fields"  # the LogRecord attribute (``extra={FIELDS: {...}}``) a JSON line merges


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside values are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context() and "request_id" in g:
            line["request_id"] = g.request_id
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


def _utc(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def configure_logging(level: str, log_format: str) -> None:
    """The root logger of a process: ``level`` and one handler on stderr in ``log_format``."""
    handler = logging.StreamHandler()
    json_lines = log_format == "json"
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # urllib3 logs each request line, query string (and so signatures) included, at DEBUG
    logging.getLogger("urllib3").setLevel(max(logging.getLevelName(level), logging.INFO))


def gunicorn_log_config() -> dict[str, Any]:
    """gunicorn's ``logconfig_dict`` for JSON: its error log through ``JsonFormatter``
    (it updates gunicorn's defaults; no propagation, so no line is written twice)."""
    formatter = {"()": f"{__name__}.JsonFormatter"}
    return {
        "formatters": {"generic": formatter},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
        },
    }
