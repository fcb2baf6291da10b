"""Provider fees: the ``providerData`` JSON, the amount, and the signature the contract checks.

ERC20Template's ``startOrder`` accepts a fee only if ``providerFeeAddress``
signed (EIP-191 over 32 bytes)::

    keccak256(abi.encodePacked(bytes providerData, address providerFeeAddress,
                               address providerFeeToken, uint256 amount, uint256 validUntil))

The contract does not check ``validUntil``: expiry is the Provider's job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from ocean_provider.auth.signing import MessageSigner, payload_signer

ZERO_ADDRESS = "0x" + "0" * 40


@dataclass(frozen=True)
class ProviderData:
    """What a fee was issued for: ``{"environment", "timestamp", "dt", "id"}`` as compact JSON."""

    environment: str | None
    timestamp: float
    datatoken: str
    service_id: str

    def encode(self) -> bytes:
        body = {
            "environment": self.environment,
            "timestamp": self.timestamp,
            "dt": self.datatoken,
            "id": self.service_id,
        }
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> ProviderData | None:
        """Parse ``providerData`` from a ``ProviderFee`` event; None if it is not ours."""
        try:
            body = json.loads(raw.decode())
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None
        if not isinstance(body, dict):
            return None
        environment, timestamp = body.get("environment"), body.get("timestamp")
        datatoken, service_id = body.get("dt"), body.get("id")
        if not isinstance(datatoken, str) or not isinstance(service_id, str):
            return None
        if environment is not None and not isinstance(environment, str):
            return None
        if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
            timestamp = 0.0
        return cls(environment, float(timestamp), datatoken, service_id)

    def names(self, datatoken: str, service_id: str) -> bool:
        """Whether the fee was issued for this datatoken and service (case-insensitive)."""
        return (
            self.datatoken.lower() == datatoken.lower()
            and self.service_id.lower() == service_id.lower()
        )


def fee_amount(price_per_minute: object, seconds: float, decimals: int) -> int:
    """``seconds * price/60`` whole tokens in the token's smallest unit, rounded down.

    The window is counted in whole seconds (days included: the reference's
    ``timedelta.seconds`` dropped them); a price that is not a number is free.
    """
    if isinstance(price_per_minute, bool):
        return 0
    try:
        price = Decimal(str(price_per_minute))
    except InvalidOperation:
        return 0
    if not price.is_finite() or price <= 0 or seconds <= 0:
        return 0
    units = price * int(seconds) * (Decimal(10) ** decimals) / 60
    return int(units.to_integral_value(rounding=ROUND_DOWN))


def fee_digest(data: bytes, provider: str, token: str, amount: int, valid_until: int) -> bytes:
    """The contract's message: keccak256 of the packed fields."""
    packed = (
        data
        + bytes.fromhex(provider[2:])
        + bytes.fromhex(token[2:])
        + amount.to_bytes(32, "big")
        + valid_until.to_bytes(32, "big")
    )
    return keccak(packed)


@dataclass(frozen=True)
class ProviderFee:
    address: str
    token: str
    amount: int
    v: int  # 27 or 28, as ecrecover wants
    r: bytes
    s: bytes
    valid_until: int
    data: bytes

    def to_json(self) -> dict[str, Any]:
        """The ``providerFee`` object of initializeCompute, as the reference writes it."""
        return {
            "providerFeeAddress": self.address,
            "providerFeeToken": self.token,
            "providerFeeAmount": str(self.amount),
            "providerData": "0x" + self.data.hex(),
            "v": self.v,
            "r": "0x" + self.r.hex(),
            "s": "0x" + self.s.hex(),
            "validUntil": self.valid_until,
        }

    def signer(self) -> str | None:
        """Who signed the fee (checksummed), or None if the signature is not one."""
        if self.v not in (27, 28) or len(self.r) != 32 or len(self.s) != 32:
            return None
        digest = fee_digest(self.data, self.address, self.token, self.amount, self.valid_until)
        signer = payload_signer(digest, self.r + self.s + bytes([self.v - 27]))
        return to_checksum_address(signer) if signer is not None else None


def sign_fee(
    signer: MessageSigner, token: str, amount: int, valid_until: int, data: bytes
) -> ProviderFee:
    token = to_checksum_address(token)
    digest = fee_digest(data, signer.address, token, amount, valid_until)
    raw = signer.sign_payload(digest)
    return ProviderFee(
        address=signer.address,
        token=token,
        amount=amount,
        v=raw[64] + 27,
        r=raw[:32],
        s=raw[32:64],
        valid_until=valid_until,
        data=data,
    )
