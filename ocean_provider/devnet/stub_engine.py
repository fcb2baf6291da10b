"""An instant stand-in for an engine's JSON API, for tests and benchmarks of the Provider."""

from __future__ import annotations

import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[str], Any]


class _JsonReplies(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the Provider's pooled client expects
    disable_nagle_algorithm = True  # headers and body are two writes
    reply: Reply

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = json.dumps(type(self).reply(self.path)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def json_stub(reply: Reply) -> ThreadingHTTPServer:
    """A loopback server answering every GET with ``reply(path)`` as JSON; the caller
    runs ``serve_forever`` (in a thread, say) and ``shutdown``/``server_close``."""
    handler = type("JsonReplies", (_JsonReplies,), {"reply": staticmethod(reply)})
    return ThreadingHTTPServer(("127.0.0.1", 0), handler)
