"""Ocean's contract artifacts, from the ``ocean-contracts`` package (its ``artifacts`` folder).

That package installs two generic top-level packages, ``artifacts`` and
``addresses``; nothing in this project may be named like them.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def artifact(name: str) -> dict[str, Any]:
    """The Hardhat artifact of contract ``name`` (``abi``, ``bytecode``, ...), read once."""
    try:
        text = (resources.files("artifacts") / f"{name}.json").read_text()
    except (FileNotFoundError, ModuleNotFoundError):
        raise LookupError(
            f"no artifact {name!r}: is the ocean-contracts package installed? (scripts/setup)"
        ) from None
    data: dict[str, Any] = json.loads(text)
    return data


def abi(name: str) -> list[dict[str, Any]]:
    value: list[dict[str, Any]] = artifact(name)["abi"]
    return value


def bytecode(name: str) -> str:
    value: str = artifact(name)["bytecode"]
    return value
