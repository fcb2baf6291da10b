"""Environments are fetched from the engine at most once per TTL and chain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ocean_provider.auth.order_ledger import SqliteOrderLedger
from ocean_provider.compute.service import ComputeService
from tests.conftest import CHAIN_ID, FakeDdoResolver, FakeFeeIssuer, FakeOrderVerifier


class CountingBackend:
    def __init__(self) -> None:
        self.calls = 0

    def environments(self, chain_id: int) -> list[dict[str, Any]]:
        self.calls += 1
        return [{"id": "env", "currentJobs": self.calls}]


def test_environments_are_cached_for_the_ttl(tmp_path: Path) -> None:
    backend = CountingBackend()
    now = [100.0]
    service = ComputeService(
        backend,  # type: ignore[arg-type]  # only environments() is used here
        FakeDdoResolver({}),
        FakeOrderVerifier(),
        FakeFeeIssuer(),
        SqliteOrderLedger(tmp_path / "orders.db"),
        chain_ids=[CHAIN_ID],
        fee_tokens={CHAIN_ID: "0x" + "f" * 40},
        consumer_addresses={CHAIN_ID: "0x" + "e" * 40},
        metadata_uri=None,
        environments_ttl=2.0,
        clock=lambda: now[0],
    )
    first = service.environments(CHAIN_ID)
    now[0] += 1.9
    assert service.environments(CHAIN_ID) == first and backend.calls == 1
    now[0] += 0.2
    fresh = service.environments(CHAIN_ID)
    assert backend.calls == 2 and fresh[0]["currentJobs"] == 2
    assert fresh[0]["feeToken"] == "0x" + "f" * 40
