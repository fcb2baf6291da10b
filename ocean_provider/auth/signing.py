"""Ocean's request signatures: keccak256 of the UTF-8 message, then EIP-191 over the hash.

The signature is 65 bytes ``r || s || v`` with v as 0/1 or 27/28. Current
ocean.js drops the leading zero bytes of the hash before signing, so the
signed payload is then shorter than 32 bytes; both forms are accepted.
"""

from __future__ import annotations

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from ocean_provider.errors import SignatureInvalid

SIGNATURE_BYTES = 65
# secp256k1 group order; EIP-2 accepts only s <= n/2, so each signature has no twin
CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def message_hash(message: str) -> bytes:
    """keccak256 of the message's UTF-8 bytes."""
    return keccak(text=message)


def sign_message(message: str, private_key: str) -> str:
    """Sign as the reference Provider does: ``0x`` hex, v as ``00``/``01``."""
    signed = Account.sign_message(
        encode_defunct(primitive=message_hash(message)), private_key=private_key
    )
    raw = bytes(signed.signature)
    return "0x" + (raw[:64] + bytes([raw[64] - 27])).hex()


def _signature_bytes(signature: str) -> bytes:
    text = signature[2:] if signature[:2].lower() == "0x" else signature
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise SignatureInvalid("not a hex string") from None
    if len(raw) != SIGNATURE_BYTES:
        raise SignatureInvalid(f"expected {SIGNATURE_BYTES} bytes, got {len(raw)}")
    v = raw[64]
    if v in (0, 1):
        v += 27
    if v not in (27, 28):
        raise SignatureInvalid("v must be 0, 1, 27 or 28")
    if int.from_bytes(raw[32:64], "big") > CURVE_ORDER // 2:
        raise SignatureInvalid("s is in the upper half of the curve order (EIP-2)")
    return raw[:64] + bytes([v])


def _recover(payload: bytes, signature: bytes) -> str | None:
    try:
        return str(Account.recover_message(encode_defunct(primitive=payload), signature=signature))
    except Exception:  # malformed r/s: eth-keys raises several types
        return None


def verify_signature(claimed_address: str, message: str, signature: str) -> None:
    """Raise ``SignatureInvalid`` unless the claimed address signed ``message``."""
    verify_digest(claimed_address, message_hash(message), signature)


def verify_digest(claimed_address: str, digest: bytes, signature: str) -> None:
    """Raise ``SignatureInvalid`` unless the claimed address signed the message of ``digest``."""
    try:
        expected = to_checksum_address(claimed_address)
    except ValueError:
        raise SignatureInvalid("consumerAddress is not an Ethereum address") from None
    raw = _signature_bytes(signature)
    candidates = [digest]
    stripped = digest.lstrip(b"\x00")
    if stripped != digest:
        candidates.append(stripped)
    for payload in candidates:
        if _recover(payload, raw) == expected:
            return
    raise SignatureInvalid("it was not made by consumerAddress over this request")
