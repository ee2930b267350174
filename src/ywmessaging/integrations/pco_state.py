"""The OAuth `state` of a Planning Center authorization: signed (HMAC-SHA256 under a key
derived from YWM_SECRET_KEY), so the callback, which the browser reaches without a token,
knows the church and the admin before it opens anything; its nonce is also stored (with the
PKCE verifier) in the church's pending authorization and consumed once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

import orjson

from ..errors import BadRequest

STATE_TTL_S = 600


class InvalidState(BadRequest):
    code, title = "pco_invalid_state", "The Planning Center authorization is unknown or expired"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def state_key(secret_key: str) -> bytes:
    """The key that signs states (bound to this purpose)."""
    return hashlib.sha256(b"ywm-pco-oauth-state-v1\x00" + secret_key.encode()).digest()


@dataclass(frozen=True)
class StateClaims:
    """Who asked, for which church, when it stops being accepted, and the stored nonce."""

    tenant_id: uuid.UUID
    admin_id: uuid.UUID
    nonce: str
    expires: int


def new_state(key: bytes, tenant_id: uuid.UUID, admin_id: uuid.UUID,
              now: float | None = None) -> tuple[str, StateClaims]:
    """A fresh signed state and its claims."""
    claims = StateClaims(tenant_id, admin_id, secrets.token_urlsafe(24),
                         int((now or time.time()) + STATE_TTL_S))
    body = _b64(orjson.dumps({"t": str(tenant_id), "a": str(admin_id), "n": claims.nonce,
                              "e": claims.expires}))
    sig = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    return f"{body}.{sig}", claims


def read_state(key: bytes, state: str, now: float | None = None) -> StateClaims:
    """The claims of a state this service signed and that has not expired (400 otherwise)."""
    body, _, sig = state.partition(".")
    want = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    if not sig or not hmac.compare_digest(sig, want):
        raise InvalidState("the state is not one this service made")
    try:
        doc = orjson.loads(_unb64(body))
        claims = StateClaims(uuid.UUID(doc["t"]), uuid.UUID(doc["a"]), str(doc["n"]),
                             int(doc["e"]))
    except (ValueError, KeyError, TypeError):
        raise InvalidState("the state is malformed") from None
    if claims.expires < (now or time.time()):
        raise InvalidState("the authorization took too long; connect again")
    return claims


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    challenge = _b64(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge
