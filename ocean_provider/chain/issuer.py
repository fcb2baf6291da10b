"""Issue signed provider fees for initializeCompute (``provider-api.md`` section 6)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from ocean_provider.auth.signing import MessageSigner
from ocean_provider.chain.fees import ZERO_ADDRESS, ProviderData, ProviderFee, fee_amount, sign_fee
from ocean_provider.chain.reads import ChainReader
from ocean_provider.errors import ChainNotSupported


class ChainFeeIssuer:
    def __init__(
        self,
        reader: ChainReader,
        provider_keys: Mapping[int, str],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._reader = reader
        self._signers = {chain: MessageSigner(key) for chain, key in provider_keys.items()}
        self._clock = clock

    def issue(
        self,
        *,
        chain_id: int,
        datatoken: str,
        service_id: str,
        environment: Mapping[str, Any],
        valid_until: int,
        charge: bool,
    ) -> dict[str, Any]:
        """A ``providerFee`` the datatoken's ``startOrder`` accepts: the environment's
        ``priceMin`` per minute from now to ``valid_until`` when ``charge``, else zero."""
        signer = self._signers.get(chain_id)
        if signer is None:
            raise ChainNotSupported(f"this Provider does not serve chain {chain_id}")
        now = self._clock()
        token = str(environment.get("feeToken") or ZERO_ADDRESS)
        amount = 0
        if charge and token.lower() != ZERO_ADDRESS:
            decimals = self._reader.decimals(chain_id, token)
            amount = fee_amount(environment.get("priceMin"), valid_until - now, decimals)
        data = ProviderData(str(environment.get("id")), now, datatoken, service_id).encode()
        fee: ProviderFee = sign_fee(signer, token, amount, valid_until, data)
        return fee.to_json()
