"""ECIES to the provider's key (eciespy), and the metadata flags Ocean's contracts store.

A DDO's ``services[].files`` and the metadata a publisher stores with
``setMetaData`` are encrypted to the Provider's public key for that chain.
``setMetaData`` also stores ``flags``: bit 1 (value 1) the document is lzma
compressed, bit 2 (value 2) it is ECIES encrypted (compressed first, then
encrypted; undone in the opposite order), and ``metaDataHash``, the sha256 of
the plain document.
"""

from __future__ import annotations

import hashlib
import lzma

import ecies
from coincurve import PrivateKey

FLAG_LZMA = 1
FLAG_ECIES = 2
MAX_DOCUMENT_BYTES = 8 << 20  # a decompressed document larger than this is refused


class CryptoFailed(Exception):
    """Decryption or decompression failed; the text is safe to show."""


class ProviderCipher:
    """One chain's provider key, parsed once."""

    def __init__(self, private_key: str) -> None:
        self._key = PrivateKey(bytes.fromhex(private_key.removeprefix("0x")))
        self.public_key_hex = self._key.public_key.format(compressed=False).hex()

    def encrypt(self, plain: bytes) -> bytes:
        return bytes(ecies.encrypt(self.public_key_hex, plain))

    def decrypt(self, cipher: bytes) -> bytes:
        try:
            return bytes(ecies.decrypt(self._key.secret, cipher))
        except Exception:  # any malformed ciphertext: wrong key, cut short, tampered
            raise CryptoFailed("Failed to decrypt.") from None


def decompress(data: bytes) -> bytes:
    """lzma (xz or alone) decompressed, bounded so a small bomb cannot fill memory."""
    decompressor = lzma.LZMADecompressor()
    try:
        plain = decompressor.decompress(data, max_length=MAX_DOCUMENT_BYTES + 1)
    except lzma.LZMAError:
        raise CryptoFailed("Failed to decompress") from None
    if len(plain) > MAX_DOCUMENT_BYTES or not decompressor.eof:
        raise CryptoFailed("Failed to decompress: the document is too large or cut short")
    return plain


def open_document(cipher: ProviderCipher, stored: bytes, flags: int) -> bytes:
    """The plain document stored with ``setMetaData``: decrypted, then decompressed."""
    data = cipher.decrypt(stored) if flags & FLAG_ECIES else stored
    return decompress(data) if flags & FLAG_LZMA else data


def seal_document(cipher: ProviderCipher, plain: bytes, flags: int) -> bytes:
    """What a publisher stores with ``setMetaData`` for ``flags`` (dev and tests)."""
    data = lzma.compress(plain) if flags & FLAG_LZMA else plain
    return cipher.encrypt(data) if flags & FLAG_ECIES else data


def document_hash(plain: bytes) -> bytes:
    return hashlib.sha256(plain).digest()
