"""Signature format pinned by test vectors (reference Provider docs) and client variants."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from ocean_provider.auth.messages import job_message, result_message, start_message
from ocean_provider.auth.signing import message_hash, sign_message, verify_signature
from ocean_provider.errors import SignatureInvalid
from tests.conftest import CONSUMER_KEY, DATASET_DID

ADDRESS = "0xA78deb2Fa79463945C247991075E2a0e98Ba7A09"

VECTORS = [
    (
        start_message(ADDRESS, DATASET_DID) + "1",
        "3d6b3da2efe262437918a9c13a968a695826d29a9777c56855143b9cab8a5a20",
        "0xdc9f77c5d7b310a54afdcbf64f00f83550d34c1420193434cb55b30463e088406c0a2d474ca36662594d0"
        "c6031ea45c6f7d3b51186e3668ca9205f029cc6c4c61b",
    ),
    (
        result_message(ADDRESS, "abc123", 0) + "2",
        "dd48ab62896541b8b28474ff9f86cfc1d0e96db7a73e51065d6746492c91320f",
        "0x1d69fbfd65d9193d08ef3be0d02f3dad10cf77fc714c1660c2c1dab704a40207534ae27f7a8c76cd538d8"
        "b4c9442b5429e2a9d1db0813b2dc678048864142e0b1b",
    ),
]


@pytest.mark.parametrize(("message", "digest", "signature"), VECTORS)
def test_reference_vectors(message: str, digest: str, signature: str) -> None:
    assert Account.from_key(CONSUMER_KEY).address == ADDRESS
    assert message_hash(message).hex() == digest
    verify_signature(ADDRESS, message, signature)
    verify_signature(ADDRESS.lower(), message, signature)
    # Our own signer reproduces the vector, with v as 00/01 like the reference Provider.
    ours = sign_message(message, CONSUMER_KEY)
    assert ours[:-2] == signature[:-2]
    assert ours[-2:] == f"{int(signature[-2:], 16) - 27:02x}"
    verify_signature(ADDRESS, message, ours)


def test_job_message_leaves_missing_parts_empty() -> None:
    assert job_message("0xA", None, "did") == "0xAdid"
    assert job_message("0xA", "job", None) == "0xAjob"


def test_ocean_js_form_with_leading_zero_bytes_dropped() -> None:
    # Find a message whose hash starts with a zero byte, sign it the way current ocean.js does.
    message = next(
        m for m in (f"{ADDRESS}{DATASET_DID}{n}" for n in range(10_000)) if message_hash(m)[0] == 0
    )
    stripped = message_hash(message).lstrip(b"\x00")
    signed = Account.sign_message(encode_defunct(primitive=stripped), private_key=CONSUMER_KEY)
    verify_signature(ADDRESS, message, "0x" + bytes(signed.signature).hex())


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        ("0xzz", "not a hex string"),
        ("0x" + "11" * 64, "expected 65 bytes"),
        ("0x" + "11" * 64 + "05", "v must be"),
        (VECTORS[1][2], "not made by consumerAddress"),
    ],
)
def test_bad_signatures(signature: str, reason: str) -> None:
    with pytest.raises(SignatureInvalid) as caught:
        verify_signature(ADDRESS, VECTORS[0][0], signature)
    assert reason in caught.value.errors["signature"][0]


def test_signature_of_another_address_is_refused() -> None:
    with pytest.raises(SignatureInvalid):
        verify_signature("0x" + "2" * 40, VECTORS[0][0], VECTORS[0][2])


def test_high_s_twin_of_a_valid_signature_is_refused() -> None:
    """EIP-2: (r, n - s, the other v) recovers the same address; only the low-s form is accepted."""
    from ocean_provider.auth.signing import CURVE_ORDER

    message, _, signature = VECTORS[0]
    raw = bytes.fromhex(signature[2:])
    s = int.from_bytes(raw[32:64], "big")
    twin = raw[:32] + (CURVE_ORDER - s).to_bytes(32, "big") + bytes([55 - raw[64]])  # 27 <-> 28
    recovered = Account.recover_message(
        encode_defunct(primitive=message_hash(message)), signature=twin
    )
    assert recovered == ADDRESS  # the twin is a real signature of the same message
    with pytest.raises(SignatureInvalid) as caught:
        verify_signature(ADDRESS, message, "0x" + twin.hex())
    assert "EIP-2" in caught.value.errors["signature"][0]
