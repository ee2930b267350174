"""Telnyx webhook signatures: Ed25519 over `timestamp|raw body` (simulator signs, we verify).

Policy (stricter than Telnyx's SDK, see the carrier reference §1.1): fail closed without a key,
the timestamp is ASCII digits only and within a two-sided window, the signature is strict base64
of exactly 64 bytes, and nothing is parsed before the signature checks out.
"""

from __future__ import annotations

import base64
import binascii
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..errors import AppError

SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"
TOLERANCE_SECONDS = 300


class WebhookSignatureInvalid(AppError):
    status, code, title = 401, "webhook_signature_invalid", "Webhook signature is not valid"


class WebhookTimestampInvalid(AppError):
    status, code, title = 401, "webhook_timestamp_invalid", "Webhook timestamp is missing or stale"


class WebhookKeyMissing(AppError):
    status, code, title = 401, "webhook_key_missing", "Webhook verification key not configured"


def _strict_b64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None


def generate_seed() -> str:
    """A fresh Ed25519 private seed, base64 (for CARRIER_SIM_SIGNING_KEY)."""
    raw = Ed25519PrivateKey.generate().private_bytes_raw()
    return base64.b64encode(raw).decode("ascii")


def private_key(seed_b64: str) -> Ed25519PrivateKey:
    """The signing key from a base64 32-byte seed."""
    raw = _strict_b64(seed_b64)
    if raw is None or len(raw) != 32:
        raise ValueError("an Ed25519 seed is the base64 of exactly 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(raw)


def public_key_b64(key: Ed25519PrivateKey) -> str:
    """The base64 raw public half (what Telnyx shows as the account's public key)."""
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def sign(key: Ed25519PrivateKey, timestamp: str, body: bytes) -> str:
    """Base64 signature of `timestamp|body`."""
    return base64.b64encode(key.sign(timestamp.encode("ascii") + b"|" + body)).decode("ascii")


def signed_headers(key: Ed25519PrivateKey, body: bytes, *, at: int | None = None) -> dict[str, str]:
    """The two Telnyx headers for `body`, signed now (or at `at`, Unix seconds)."""
    ts = str(int(time.time()) if at is None else at)
    return {SIGNATURE_HEADER: sign(key, ts, body), TIMESTAMP_HEADER: ts}


def load_public_key(public_b64: str | None) -> Ed25519PublicKey | None:
    """Parse the configured public key; None when unset or malformed (then everything fails)."""
    if not public_b64:
        return None
    raw = _strict_b64(public_b64)
    if raw is None or len(raw) != 32:
        return None
    return Ed25519PublicKey.from_public_bytes(raw)


def verify(key: Ed25519PublicKey | None, signature: str | None, timestamp: str | None,
           body: bytes, *, now: float | None = None,
           tolerance: int = TOLERANCE_SECONDS) -> int:
    """Check a webhook; return its timestamp or raise a 401 AppError. Does no other work."""
    if key is None:
        raise WebhookKeyMissing()
    if not timestamp or not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise WebhookTimestampInvalid()
    sig = _strict_b64(signature or "")
    if sig is None or len(sig) != 64:
        raise WebhookSignatureInvalid()
    try:
        key.verify(sig, timestamp.encode("ascii") + b"|" + body)
    except InvalidSignature:
        raise WebhookSignatureInvalid() from None
    ts = int(timestamp)
    if abs((time.time() if now is None else now) - ts) > tolerance:
        raise WebhookTimestampInvalid()
    return ts
