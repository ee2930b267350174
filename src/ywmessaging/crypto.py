"""Secrets at rest: AES-256-GCM under a key derived from YWM_SECRET_KEY."""

from __future__ import annotations

import base64
import hashlib
import hmac
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


# PBKDF2 rounds of a tenant role's SCRAM verifier. Stretching protects a password a person
# chose against guessing from a stolen verifier; a tenant role's password is 192 random bits
# (`new_password`), which no number of guesses reaches, so stretching buys nothing and costs
# both sides of every tenant connect (4096 rounds: about 1-2 ms of CPU on each side).
TENANT_SCRAM_ITERATIONS = 16


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """A PostgreSQL SCRAM-SHA-256 verifier for `password` (RFC 5802/7677).

    `CREATE ROLE ... PASSWORD '<verifier>'` stores it as is, so the plaintext never reaches
    the server (nor its log, should the statement fail). Tenant roles pass
    TENANT_SCRAM_ITERATIONS.
    """
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = base64.b64encode
    return (f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}"
            f"${b64(stored_key).decode()}:{b64(server_key).decode()}")
