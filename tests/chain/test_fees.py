"""Provider-fee maths, providerData and the fee signature (unit: no chain)."""

from __future__ import annotations

import json

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from web3 import Web3

from ocean_provider.auth.signing import MessageSigner
from ocean_provider.chain.fees import ProviderData, fee_amount, fee_digest, sign_fee
from tests.conftest import OTHER_KEY, PROVIDER_KEY

TOKEN = "0x" + "ab" * 20
DT = "0x" + "cd" * 20


@pytest.mark.parametrize(
    ("price", "seconds", "decimals", "expected"),
    [
        (60, 3600, 18, 3600 * 10**18),  # the reference's own unit test
        (1, 60, 18, 10**18),
        (1, 2 * 86400 + 60, 18, (2 * 1440 + 1) * 10**18),  # whole days count
        ("0.5", 120, 6, 10**6),
        (1, 1, 0, 0),  # rounded down: 1/60 of a unit
        (1, 90, 0, 1),
        (0, 3600, 18, 0),
        (-1, 3600, 18, 0),
        (1, -5, 18, 0),  # a window already passed costs nothing (no wrap-around)
        ("abc", 60, 18, 0),
        (None, 60, 18, 0),
        (True, 60, 18, 0),
        ("NaN", 60, 18, 0),
        ("Infinity", 60, 18, 0),
    ],
)
def test_fee_amount(price: object, seconds: float, decimals: int, expected: int) -> None:
    assert fee_amount(price, seconds, decimals) == expected


def test_fee_amount_is_exact_for_large_windows() -> None:
    year = 365 * 86400
    assert fee_amount("0.1", year, 18) == year * 10**18 // 600


def test_provider_data_is_compact_json_in_the_reference_order() -> None:
    data = ProviderData("env-1", 1700000000.5, DT, "compute-1").encode()
    text = data.decode()
    assert " " not in text
    assert list(json.loads(text)) == ["environment", "timestamp", "dt", "id"]
    assert ProviderData.decode(data) == ProviderData("env-1", 1700000000.5, DT, "compute-1")


@pytest.mark.parametrize(
    "raw",
    [b"", b"\xff", b"[]", b"{}", b'{"dt": 1, "id": "x"}', b'{"dt": "a", "id": 2}', b"[" * 5000],
)
def test_foreign_provider_data_is_not_ours(raw: bytes) -> None:
    assert ProviderData.decode(raw) is None


def test_provider_data_names_datatoken_and_service_ignoring_case() -> None:
    data = ProviderData(None, 0, DT.upper().replace("0X", "0x"), "Compute-1")
    assert data.names(DT, "compute-1")
    assert not data.names(TOKEN, "compute-1")
    assert not data.names(DT, "compute-2")


def test_fee_digest_matches_solidity_keccak() -> None:
    provider = Account.from_key(PROVIDER_KEY).address
    expected = Web3.solidity_keccak(
        ["bytes", "address", "address", "uint256", "uint256"],
        [b"data", provider, Web3.to_checksum_address(TOKEN), 5 * 10**18, 1700000000],
    )
    assert fee_digest(b"data", provider, TOKEN, 5 * 10**18, 1700000000) == bytes(expected)


def test_signed_fee_is_what_eth_account_recovers_and_names_its_signer() -> None:
    signer = MessageSigner(PROVIDER_KEY)
    fee = sign_fee(signer, TOKEN, 7, 1700000000, b"payload")
    assert fee.v in (27, 28) and len(fee.r) == 32 and len(fee.s) == 32
    digest = fee_digest(b"payload", fee.address, fee.token, 7, 1700000000)
    recovered = Account.recover_message(encode_defunct(primitive=digest), vrs=(fee.v, fee.r, fee.s))
    assert recovered == signer.address == fee.signer()
    reply = fee.to_json()
    assert reply["providerFeeAmount"] == "7" and reply["providerData"] == "0x" + b"payload".hex()
    assert reply["r"].startswith("0x") and len(reply["r"]) == 66


def test_a_changed_field_changes_the_signer() -> None:
    fee = sign_fee(MessageSigner(PROVIDER_KEY), TOKEN, 7, 1700000000, b"payload")
    other = MessageSigner(OTHER_KEY).address
    tampered = [
        fee.__class__(**{**fee.__dict__, "amount": 8}),
        fee.__class__(**{**fee.__dict__, "valid_until": 1700000001}),
        fee.__class__(**{**fee.__dict__, "data": b"payloae"}),
    ]
    for changed in tampered:
        assert changed.signer() not in (fee.address, None) or changed.signer() is None
        assert changed.signer() != other
    assert fee.__class__(**{**fee.__dict__, "v": 29}).signer() is None
