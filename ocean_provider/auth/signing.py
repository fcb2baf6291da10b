"""Ocean's request signatures: keccak256 of the UTF-8 message, then EIP-191 over the hash.

The signature is 65 bytes ``r || s || v`` with v as 0/1 or 27/28. Current
ocean.js drops the leading zero bytes of the hash before signing, so the
signed payload is then shorter than 32 bytes; both forms are accepted.
"""

from __future__ import annotations

from coincurve import PrivateKey, PublicKey
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from ocean_provider.auth.addresses import ADDRESS
from ocean_provider.errors import SignatureInvalid

SIGNATURE_BYTES = 65
# secp256k1 group order; EIP-2 accepts only s <= n/2, so each signature has no twin
CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
EIP191_PREFIX = b"\x19Ethereum Signed Message:\n"


def message_hash(message: str) -> bytes:
    """keccak256 of the message's UTF-8 bytes."""
    return keccak(text=message)


def eip191_hash(payload: bytes) -> bytes:
    """What ``personal_sign`` (EIP-191 version 0x45) signs for ``payload``."""
    return keccak(EIP191_PREFIX + str(len(payload)).encode() + payload)


class MessageSigner:
    """One private key, parsed once, signing Ocean messages (libsecp256k1 via coincurve)."""

    def __init__(self, private_key: str) -> None:
        self._key = PrivateKey(bytes.fromhex(private_key.removeprefix("0x")))
        self.address = to_checksum_address(_address_of(self._key.public_key))

    def sign(self, message: str) -> str:
        """Sign as the reference Provider does: ``0x`` hex of ``r || s || v``, v as 0/1
        (libsecp256k1 signs low-s, as EIP-2 wants)."""
        return "0x" + self.sign_payload(message_hash(message)).hex()

    def sign_payload(self, payload: bytes) -> bytes:
        """``r || s || v`` (v as 0/1) over the EIP-191 hash of ``payload``."""
        return bytes(self._key.sign_recoverable(eip191_hash(payload), hasher=None))


def sign_message(message: str, private_key: str) -> str:
    """Sign with a key given as hex (tests and one-off use; services keep a MessageSigner)."""
    return MessageSigner(private_key).sign(message)


def _signature(signature: str) -> bytes:
    text = signature[2:] if signature[:2].lower() == "0x" else signature
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise SignatureInvalid("not a hex string") from None
    if len(raw) != SIGNATURE_BYTES:
        raise SignatureInvalid(f"expected {SIGNATURE_BYTES} bytes, got {len(raw)}")
    v = raw[64]
    if v in (27, 28):
        v -= 27
    if v not in (0, 1):
        raise SignatureInvalid("v must be 0, 1, 27 or 28")
    if int.from_bytes(raw[32:64], "big") > CURVE_ORDER // 2:
        raise SignatureInvalid("s is in the upper half of the curve order (EIP-2)")
    return raw[:64] + bytes([v])


def payload_signer(payload: bytes, signature: bytes) -> bytes | None:
    """The 20-byte address that signed the EIP-191 hash of ``payload`` with ``r || s || v``
    (v as 0/1), or None (r or s out of range)."""
    try:
        public_key = PublicKey.from_signature_and_message(
            signature, eip191_hash(payload), hasher=None
        )
    except ValueError:
        return None
    return _address_of(public_key)


def _address_of(public_key: PublicKey) -> bytes:
    return keccak(public_key.format(compressed=False)[1:])[-20:]


def verify_signature(claimed_address: str, message: str, signature: str) -> None:
    """Raise ``SignatureInvalid`` unless the claimed address signed ``message``."""
    verify_digest(claimed_address, message_hash(message), signature)


def verify_digest(claimed_address: str, digest: bytes, signature: str) -> None:
    """Raise ``SignatureInvalid`` unless the claimed address signed the message of ``digest``."""
    if not ADDRESS.fullmatch(claimed_address):
        raise SignatureInvalid("consumerAddress is not an Ethereum address")
    expected = bytes.fromhex(claimed_address[2:])
    parsed = _signature(signature)
    candidates = [digest]
    stripped = digest.lstrip(b"\x00")
    if stripped != digest:
        candidates.append(stripped)
    for payload in candidates:
        if payload_signer(payload, parsed) == expected:
            return
    raise SignatureInvalid("it was not made by consumerAddress over this request")
