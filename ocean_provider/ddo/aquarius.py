"""DDOs from Aquarius (``DDO_SOURCE=aquarius``), as ``GET /api/aquarius/assets/ddo/<did>``.

One pooled session. Each request has a connect and read timeout and an
overall deadline, and its body is read up to a size cap. Answers are cached
for ``ttl`` seconds, since one compute start reads the same DDOs several
times; Aquarius cannot say when a DDO changes, so the cache stays short.

A 404 is ``did_not_found``. A DDO must be the one asked for: its NFT address
and chain id must hash to the DID (a revoked or deprecated asset, which
Aquarius serves without ``id``, ``chainId`` or services, is recognised by its
``nft.address`` on one of this Provider's chains). Anything else Aquarius
answers, or its silence, is ``AquariusUnavailable`` (503): the Provider fails
closed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import requests

from ocean_provider.compute.interfaces import Asset
from ocean_provider.ddo.crypto import MAX_DOCUMENT_BYTES
from ocean_provider.ddo.dids import DID_PATTERN, did_for, unknown_did
from ocean_provider.errors import AquariusUnavailable

if TYPE_CHECKING:  # the Protocol lives with the factory, which imports this module
    from ocean_provider.ddo.resolvers import ServiceFileSource

log = logging.getLogger(__name__)

DDO_PATH = "/api/aquarius/assets/ddo/"
CACHED_DDOS = 4096
CHUNK_BYTES = 64 * 1024


class AquariusDdoResolver:
    def __init__(
        self,
        url: str,
        files: ServiceFileSource,
        *,
        chain_ids: Iterable[int],
        timeout: float = 10.0,
        ttl: float = 2.0,
        max_bytes: int = MAX_DOCUMENT_BYTES,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base = url.rstrip("/")
        self._files = files
        self._chain_ids = sorted(chain_ids)
        self._timeout = timeout
        self._ttl = ttl
        self._max_bytes = max_bytes
        self._session = session or requests.Session()
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[float, Asset]] = OrderedDict()

    def resolve(self, did: str) -> Asset:
        if DID_PATTERN.fullmatch(did) is None:
            raise unknown_did(did, "is not an Ocean DID (did:op: and 64 hex digits)")
        now = self._clock()
        with self._lock:
            cached = self._cache.get(did)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        ddo = self._fetch(did)
        asset = Asset(did, self._chain_of(did, ddo), ddo)
        with self._lock:
            self._cache[did] = (now, asset)
            self._cache.move_to_end(did)
            if len(self._cache) > CACHED_DDOS:
                self._cache.popitem(last=False)
        return asset

    def service_files(self, asset: Asset, service_id: str) -> list[dict[str, Any]]:
        return self._files.service_files(asset, service_id)

    def close(self) -> None:
        self._session.close()

    def _fetch(self, did: str) -> dict[str, Any]:
        deadline = self._clock() + self._timeout
        try:
            with self._session.get(
                self._base + DDO_PATH + did, timeout=self._timeout, stream=True
            ) as response:
                if response.status_code == 404:
                    raise unknown_did(did, "is unknown to Aquarius")
                if response.status_code != 200:
                    log.warning("Aquarius answered %s for a DDO", response.status_code)
                    raise AquariusUnavailable(f"Aquarius answered {response.status_code}")
                body = self._read(response, deadline)
        except requests.RequestException as exc:
            log.warning("Aquarius did not answer: %s", type(exc).__name__)  # the text has the URL
            raise AquariusUnavailable("Aquarius did not answer; try again shortly") from None
        try:
            ddo = json.loads(body)
        except ValueError:
            raise AquariusUnavailable("Aquarius answered with something that is not JSON") from None
        if not isinstance(ddo, dict) or ddo.get("id", did) != did:
            raise AquariusUnavailable("Aquarius answered with another document than the DDO")
        return ddo

    def _read(self, response: requests.Response, deadline: float) -> bytes:
        chunks, size = [], 0
        for chunk in response.iter_content(CHUNK_BYTES):
            size += len(chunk)
            if size > self._max_bytes:
                raise AquariusUnavailable(f"Aquarius sent a DDO over {self._max_bytes} bytes")
            if self._clock() > deadline:
                raise AquariusUnavailable("Aquarius took too long to send the DDO")
            chunks.append(chunk)
        return b"".join(chunks)

    def _chain_of(self, did: str, ddo: Mapping[str, Any]) -> int:
        """The chain the DDO's NFT address and chain id (or, without one, one of this
        Provider's chains) hash to ``did`` with."""
        nft = ddo.get("nft")
        address = ddo.get("nftAddress") or (
            nft.get("address") if isinstance(nft, Mapping) else None
        )
        chain = ddo.get("chainId")
        candidates = [chain] if isinstance(chain, int) and not isinstance(chain, bool) else []
        for candidate in candidates or ([] if "chainId" in ddo else self._chain_ids):
            try:
                if did_for(str(address), candidate) == did:
                    return candidate
            except ValueError:  # not an address
                break
        raise AquariusUnavailable(
            "Aquarius answered with a DDO whose NFT and chain are not the DID's"
        )
