"""An engine that answers status for whoever asks."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests_mock as rm

from tests.api.helpers import ENGINE_COMPUTE, engine_job


@pytest.fixture
def owner_jobs(engine: rm.Mocker) -> rm.Mocker:
    """An engine that answers each owner's status with one job of theirs."""

    def reply(request: Any, context: Any) -> list[dict[str, Any]]:
        owner = parse_qs(urlsplit(request.url).query)["owner"][0]
        return [engine_job(owner)]

    engine.get(ENGINE_COMPUTE, json=reply)
    return engine
