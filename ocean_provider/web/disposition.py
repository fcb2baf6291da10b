"""The file name a ``Content-Disposition`` header gives, made safe to pass on: an engine's
result or a file server's download keeps its name, never a path or a control character."""

from __future__ import annotations

from werkzeug.http import parse_options_header

MAX_NAME = 255


def disposition_name(value: str | None) -> str | None:
    """The ``filename`` (``filename*`` decoded) of a ``Content-Disposition`` value, with
    path separators and unprintable characters as ``_``; None without one."""
    if not value:
        return None
    _, options = parse_options_header(value)
    name = options.get("filename")
    if not name:
        return None
    safe = "".join("_" if ch in "/\\" or not ch.isprintable() else ch for ch in name)
    return safe[:MAX_NAME] or None
