"""An instant stand-in for an engine's JSON API, for tests and benchmarks of the Provider."""

from __future__ import annotations

import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[str], Any]
PostReply = Callable[[str, Any], Any]  # (path with query, parsed JSON body) -> JSON reply


class _JsonReplies(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the Provider's pooled client expects
    disable_nagle_algorithm = True  # headers and body are two writes
    reply: Reply
    post: PostReply | None = None

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._send(200, type(self).reply(self.path))

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        post = type(self).post
        if post is None:
            self._send(405, {"error": "method not allowed"})
            return
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            self._send(400, {"error": "body is not JSON"})
            return
        self._send(200, post(self.path, body))

    def _send(self, status: int, reply: Any) -> None:
        body = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def json_stub(reply: Reply, post: PostReply | None = None, *, port: int = 0) -> ThreadingHTTPServer:
    """A loopback server (on ``port``, else a free one) answering every GET with
    ``reply(path)`` as JSON and, given ``post``, every POST with ``post(path, body)``
    (405 without it); the caller runs ``serve_forever`` (in a thread, say) and
    ``shutdown``/``server_close``."""
    methods: dict[str, Any] = {"reply": staticmethod(reply)}
    if post is not None:
        methods["post"] = staticmethod(post)
    handler = type("JsonReplies", (_JsonReplies,), methods)
    return ThreadingHTTPServer(("127.0.0.1", port), handler)
