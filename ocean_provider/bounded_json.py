"""JSON parsing with a nesting bound, for every parse of data we did not write.

``eth_account`` imports ``py_ecc``, which raises the interpreter's recursion
limit to 100,000. The C JSON decoder recurses once per nesting level and
trusts that limit, so ``[`` x 100,000 overflows the C stack and the worker dies
with SIGSEGV instead of raising ``RecursionError``. The nesting depth is
therefore measured before ``json.loads`` runs, and deep documents are refused
as the ``ValueError`` a malformed document raises. The scan stops at the first
level over the bound, so a hostile document costs no more than a shallow one.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64
# a JSON string (skipped whole, so brackets inside it do not count), or one bracket
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


class JsonTooDeep(ValueError):
    """The document nests deeper than the bound allows."""


def check_depth(text: str, max_depth: int = MAX_DEPTH) -> None:
    """Raise ``JsonTooDeep`` when arrays and objects nest deeper than ``max_depth``."""
    if "[" not in text and "{" not in text:
        return
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > max_depth:
                raise JsonTooDeep(f"JSON nested deeper than {max_depth} levels")
        elif token in "]}":
            depth -= 1


def loads(data: str | bytes | bytearray, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` that refuses deep nesting; every failure is a ``ValueError``."""
    if isinstance(data, bytes | bytearray):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValueError("JSON is not UTF-8") from exc
    else:
        text = data
    check_depth(text, max_depth)
    try:
        return json.loads(text)
    except RecursionError as exc:  # cannot happen under the bound; kept as a ValueError
        raise JsonTooDeep("JSON nested too deeply") from exc
