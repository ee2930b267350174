"""Secrets at rest: AES-256-GCM under a key derived from YWM_SECRET_KEY."""

from __future__ import annotations

import os
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"


class SecretBox:
    """Encrypts small secrets; `purpose` binds a ciphertext to its use (AAD)."""

    def __init__(self, master_key: str) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"ywm-secret-box", info=b"aes-gcm-v1"
        ).derive(master_key.encode())
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, purpose: str) -> bytes:
        """Encrypt `plaintext`; the result is version byte + nonce + ciphertext."""
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), purpose.encode())

    def open(self, sealed: bytes, purpose: str) -> str:
        """Decrypt what `seal` made for the same purpose (raises InvalidTag otherwise)."""
        if sealed[:1] != _VERSION:
            raise ValueError("unknown secret format")
        nonce, body = sealed[1:13], sealed[13:]
        return self._aead.decrypt(nonce, body, purpose.encode()).decode()


def new_password(nbytes: int = 24) -> str:
    """A random password safe to put in a DSN."""
    return secrets.token_urlsafe(nbytes)
