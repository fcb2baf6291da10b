"""The ocean.js delete form: no nonce sent, the signature covers the address's next one."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from ocean_provider.auth.authenticator import RequestAuthenticator
from ocean_provider.auth.nonces import SqliteNonceStore
from ocean_provider.auth.signing import message_hash
from ocean_provider.errors import SignatureInvalid
from tests.conftest import CONSUMER_KEY, Consumer

MESSAGE_TAIL = "job1did:op:1"


@pytest.mark.parametrize(("stored", "implied"), [(None, "2"), ("0", "1"), ("5", "6")])
def test_implied_nonce_is_the_stored_one_plus_one(
    tmp_path: Path, stored: str | None, implied: str
) -> None:
    consumer = Consumer(CONSUMER_KEY)
    store = SqliteNonceStore(tmp_path / "n.db")
    if stored is not None:
        store.consume(consumer.address, Decimal(stored), message_hash("earlier"))
    auth = RequestAuthenticator(store)
    message = consumer.address + MESSAGE_TAIL
    wrong = consumer.sign(message, str(int(implied) + 1))
    with pytest.raises(SignatureInvalid):
        auth.authenticate(consumer.address, message, wrong, None, implied_nonce=True)
    signature = consumer.sign(message, implied)
    signer = auth.authenticate(consumer.address, message, signature, None, implied_nonce=True)
    assert signer == consumer.address and store.current(signer) == Decimal(implied)
