"""One web3 per configured chain, with timeouts, bounded retries and errors that hide the RPC URL.

Every chain call goes through ``Chains.call``: a transport failure is retried
a bounded number of times and then becomes ``ChainUnavailable`` (503), whose
text names the chain and the step, never the URL (RPC URLs often carry API
keys). A chain this Provider does not serve is ``ChainNotSupported`` (400).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

import requests
import requests.adapters
from web3 import HTTPProvider, Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError

from ocean_provider.errors import ChainNotSupported, ChainUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
POOL_SIZE = 16  # kept-alive connections per chain: one per worker thread is plenty

# Answers that are the chain's verdict, not a transport failure: passed on as they are.
VERDICTS: tuple[type[BaseException], ...] = (ContractLogicError, TransactionNotFound)


class Chains:
    def __init__(
        self,
        rpc: Mapping[int, str],
        *,
        timeout: float,
        retries: int = 2,
        backoff: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._web3 = {chain: _connect(url, timeout) for chain, url in rpc.items()}
        self._retries = retries
        self._backoff = backoff
        self._sleep = sleep
        self.calls = 0  # RPC-level calls made through ``call``, for benchmarks and tests

    @property
    def chain_ids(self) -> list[int]:
        return sorted(self._web3)

    def web3(self, chain_id: int) -> Web3:
        try:
            return self._web3[chain_id]
        except KeyError:
            raise ChainNotSupported(f"this Provider does not serve chain {chain_id}") from None

    def call(self, chain_id: int, step: str, fn: Callable[[Web3], T]) -> T:
        """Run ``fn(web3)``: retried on transport failures, never leaking the RPC URL."""
        w3 = self.web3(chain_id)
        for attempt in range(self._retries + 1):
            self.calls += 1
            try:
                return fn(w3)
            except VERDICTS:
                raise
            except Web3RPCError as exc:  # the node answered with a JSON-RPC error
                log.warning("chain %s: %s failed: RPC error %s", chain_id, step, _rpc_code(exc))
                raise ChainUnavailable(f"chain {chain_id} refused the call ({step})") from None
            except Exception as exc:  # transport: connection refused, timeout, bad gateway
                log.warning(
                    "chain %s: %s failed (attempt %d): %s",
                    chain_id,
                    step,
                    attempt + 1,
                    type(exc).__name__,  # the text may hold the URL
                )
                if attempt < self._retries:
                    self._sleep(self._backoff * (2**attempt))
        raise ChainUnavailable(f"chain {chain_id} did not answer ({step}); try again shortly")


def _connect(url: str, timeout: float) -> Web3:
    # web3's own retries are off: ``Chains.call`` bounds them and keeps the URL out of errors
    session = requests.Session()
    session.trust_env = False  # no proxy variables or .netrc lookups on every call
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=POOL_SIZE)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    provider = HTTPProvider(
        url,
        request_kwargs={"timeout": timeout},
        session=session,
        exception_retry_configuration=None,
    )
    return Web3(provider)


def _rpc_code(exc: Web3RPCError) -> object:
    message = exc.rpc_response.get("error") if exc.rpc_response else None
    return message.get("code") if isinstance(message, Mapping) else "unknown"
