"""Flask's JSON provider with the nesting bound (``bounded_json``) on every body it parses."""

from __future__ import annotations

from typing import Any

from flask.json.provider import DefaultJSONProvider

from ocean_provider import bounded_json


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider with the nesting bound on every request body it parses."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return bounded_json.loads(s)
