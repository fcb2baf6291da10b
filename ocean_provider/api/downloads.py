"""Result downloads: which byte range to ask the engine for, and the reply's headers.

A result is whatever an algorithm wrote, so it is always served as an opaque attachment
(``application/octet-stream``, ``nosniff``): a browser never renders an output named
``.html``. File names are quoted as RFC 6266 says, the way werkzeug's ``send_file`` does.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

from flask import Response, stream_with_context
from werkzeug.http import dump_options_header, parse_range_header

from ocean_provider.compute.interfaces import ResultStream

# RFC 5987 attr-char: left as is in ``filename*``
ATTR_CHARS = "!#$&+-.^_`|~"
EXPOSED = "Content-Disposition, Content-Range"


def requested_range(header: str | None) -> str | None:
    """The Range to forward, in canonical form, or None for the whole file.

    As HTTP allows, a Range that does not parse, counts another unit than bytes, or asks
    for several parts (which would need a multipart reply) is ignored.
    """
    parsed = parse_range_header(header)
    if parsed is None or parsed.units != "bytes" or len(parsed.ranges) != 1:
        return None
    return parsed.to_header()


def attachment(name: str) -> str:
    """``Content-Disposition`` for ``name``; non-ASCII names also go in ``filename*``."""
    name = "".join(ch if ch.isprintable() else "_" for ch in name)
    try:
        name.encode("ascii")
    except UnicodeEncodeError:
        simple = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
        encoded = f"UTF-8''{quote(name, safe=ATTR_CHARS)}"
        return dump_options_header("attachment", {"filename": simple, "filename*": encoded})
    return dump_options_header("attachment", {"filename": name})


def download_response(stream: ResultStream, fallback_name: str) -> Response:
    """Stream the engine's reply (200 or 206) as an attachment, whatever its type."""
    response = Response(
        stream_with_context(stream.chunks()), status=stream.status, direct_passthrough=True
    )
    for name, value in stream.headers.items():
        if name.lower() != "content-type":
            response.headers[name] = value
    response.headers["Content-Type"] = "application/octet-stream"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Disposition"] = attachment(stream.filename or fallback_name)
    response.headers["Access-Control-Expose-Headers"] = EXPOSED
    return response
