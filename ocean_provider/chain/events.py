"""Ocean's order events, decoded from raw receipt logs with the emitter checked.

Each event's layout comes from the ERC20Template ABI (``ocean-contracts``);
a log is decoded only if it was emitted by the expected contract and carries
the event's topic, so a look-alike contract's events never count.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError
from eth_utils.crypto import keccak

from ocean_provider.auth.addresses import checksum_address
from ocean_provider.chain.artifacts import abi

DATATOKEN_ABI = "ERC20Template"


@dataclass(frozen=True)
class EventSpec:
    name: str
    topic: bytes
    indexed: tuple[tuple[str, str], ...]  # (name, type) in topic order
    data: tuple[tuple[str, str], ...]  # (name, type) in data order

    def decode(self, log: Mapping[str, Any]) -> dict[str, Any] | None:
        """The event's fields, or None if ``log`` is not this event or is malformed."""
        topics = [bytes(t) for t in log.get("topics", [])]
        if not topics or topics[0] != self.topic or len(topics) != 1 + len(self.indexed):
            return None
        try:
            values = decode([t for _, t in self.data], bytes(log["data"]))
            fields = {name: value for (name, _), value in zip(self.data, values, strict=True)}
            for (name, kind), topic in zip(self.indexed, topics[1:], strict=True):
                fields[name] = decode([kind], topic)[0]
        except (DecodingError, ValueError, TypeError, OverflowError):
            return None
        for name, value in fields.items():
            if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
                fields[name] = checksum_address(value)  # cached: the same few recur
        return fields


@cache
def event(name: str, contract: str = DATATOKEN_ABI) -> EventSpec:
    """The spec of an event of ``contract`` (by default the datatoken's: ``OrderStarted``,
    ``ProviderFee``, ``OrderReused``; ``ERC721Template``: ``MetadataCreated``, ...)."""
    for item in abi(contract):
        if item.get("type") == "event" and item.get("name") == name:
            inputs = item["inputs"]
            signature = f"{name}({','.join(i['type'] for i in inputs)})"
            return EventSpec(
                name=name,
                topic=keccak(text=signature),
                indexed=tuple((i["name"], i["type"]) for i in inputs if i["indexed"]),
                data=tuple((i["name"], i["type"]) for i in inputs if not i["indexed"]),
            )
    raise LookupError(f"{contract} has no event {name}")


def events_from(
    logs: list[Mapping[str, Any]], name: str, emitter: str, contract: str = DATATOKEN_ABI
) -> Iterator[dict[str, Any]]:
    """Decoded ``name`` events of ``contract`` among ``logs`` emitted by ``emitter``, in order."""
    spec = event(name, contract)
    wanted = emitter.lower()
    for log in logs:
        if str(log.get("address", "")).lower() != wanted:
            continue
        fields = spec.decode(log)
        if fields is not None:
            yield fields
