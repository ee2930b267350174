"""Access and MFA JWTs (HS256 pinned, keyring with rotation) and opaque single-purpose tokens.

An access token and an MFA token differ in their header `typ`, their `typ` claim, their
audience *and* their key (each purpose has its own key derived from the keyring), so neither
can ever pass for the other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..config import Settings
from ..errors import ConfigError
from .errors import InvalidMfaToken, InvalidToken

ALGORITHM = "HS256"
LEEWAY_S = 10
MFA_TOKEN_TTL_S = 300
MIN_KEY_BYTES = 32
_KID_RE = re.compile(r"[A-Za-z0-9_.-]{1,40}")
_ALLOWED_HEADERS = frozenset({"alg", "typ", "kid"})
_ACCESS_REQUIRED = ["exp", "iat", "iss", "aud", "sub", "jti", "tid", "role", "sid", "typ",
                    "vaf"]
VERIFIED_CACHE_MAX = 10_000  # verified access tokens kept per process (about 1 KiB each)
_MFA_REQUIRED = ["exp", "iat", "iss", "aud", "sub", "jti", "tid", "typ", "vaf"]


def derive_key(secret: str | bytes, info: str, length: int = 32) -> bytes:
    """A purpose-bound key derived with HKDF-SHA256."""
    raw = secret.encode() if isinstance(secret, str) else secret
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=b"ywm-auth",
                info=info.encode()).derive(raw)


@dataclass(frozen=True)
class Keyring:
    """`{kid: key}` with one signing kid; the others only verify (during a rotation)."""

    signing_kid: str
    keys: Mapping[str, bytes]

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        """Parse JWT_SIGNING_KEYS, or derive one key from YWM_SECRET_KEY (ConfigError if bad)."""
        if settings.jwt_signing_keys:
            return cls.parse(settings.jwt_signing_keys)
        key = derive_key(settings.require_secret_key(), "jwt-hs256-v1")
        kid = "d" + hashlib.sha256(key).hexdigest()[:8]
        return cls(kid, {kid: key})

    @classmethod
    def parse(cls, spec: str) -> Keyring:
        """`kid1:base64key,kid2:base64key`; the first entry signs."""
        keys: dict[str, bytes] = {}
        for part in (p.strip() for p in spec.split(",") if p.strip()):
            kid, sep, b64 = part.partition(":")
            if not sep or not _KID_RE.fullmatch(kid):
                raise ConfigError("JWT_SIGNING_KEYS entries must look like `kid:base64key`")
            if kid in keys:
                raise ConfigError(f"JWT_SIGNING_KEYS names kid {kid!r} twice")
            keys[kid] = _b64decode(b64, kid)
        if not keys:
            raise ConfigError("JWT_SIGNING_KEYS is empty")
        return cls(next(iter(keys)), keys)

    def for_purpose(self, purpose: str) -> Keyring:
        """The same kids, each key replaced by a key derived for `purpose`."""
        return Keyring(self.signing_kid,
                       {kid: derive_key(key, f"jwt:{purpose}") for kid, key in self.keys.items()})


def _b64decode(text: str, kid: str) -> bytes:
    try:
        std = text.strip().replace("-", "+").replace("_", "/")
        key = base64.b64decode(std + "=" * (-len(std) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"JWT_SIGNING_KEYS key {kid!r} is not base64") from None
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"JWT_SIGNING_KEYS key {kid!r} must be at least {MIN_KEY_BYTES} bytes")
    return key


@dataclass(frozen=True)
class AccessClaims:
    """What a verified access token says."""

    admin_id: uuid.UUID
    tenant_id: uuid.UUID
    role: str
    session_id: uuid.UUID
    jti: str
    iat: int
    exp: int
    valid_after_us: int = 0  # the admin's tokens_valid_after at issue (see revocations.py)


@dataclass(frozen=True)
class MfaClaims:
    """What a verified MFA token says: password proven, second factor pending.

    `valid_after` is the admin's `tokens_valid_after` (epoch microseconds) when the password
    was proven: a password change or reset, MFA on or off, or a role change moves it, and the
    token is then refused.
    """

    admin_id: uuid.UUID
    tenant_id: uuid.UUID
    jti: str
    exp: int
    iat: int = 0
    valid_after: int = 0


class Tokens:
    """Issues and verifies the service's JWTs."""

    def __init__(self, settings: Settings, keyring: Keyring) -> None:
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.access_ttl = settings.jwt_access_ttl
        self._access = keyring.for_purpose("access")
        self._mfa = keyring.for_purpose("mfa")
        self._jwt = jwt.PyJWT(options={"enforce_minimum_key_length": True})
        # token → its claims, once verified: a token is decoded once per process, not once per
        # request. Bounded; an entry is used only until the token's `exp` (plus the leeway the
        # decoder allows). Revocation is checked on every request by the deny-list, not here.
        self._verified: dict[str, AccessClaims] = {}

    def issue_access(self, *, admin_id: uuid.UUID, tenant_id: uuid.UUID, role: str,
                     session_id: uuid.UUID, valid_after_us: int) -> tuple[str, AccessClaims]:
        """A signed access token for one admin of one tenant within one session;
        `valid_after_us` is the admin's tokens_valid_after as the issuing transaction read it."""
        now = int(time.time())
        claims = AccessClaims(admin_id, tenant_id, role, session_id, secrets.token_urlsafe(16),
                              now, now + self.access_ttl, int(valid_after_us))
        payload = {
            "iss": self.issuer, "aud": self.audience, "sub": str(admin_id),
            "tid": str(tenant_id), "role": role, "sid": str(session_id), "jti": claims.jti,
            "iat": now, "exp": claims.exp, "typ": "access", "vaf": claims.valid_after_us,
        }
        return self._sign(payload, self._access, "at+jwt"), claims

    def verify_access(self, token: str) -> AccessClaims:
        """The claims of a valid access token, or InvalidToken (never says which check failed)."""
        claims = self._verified.get(token)
        if claims is not None:
            if time.time() < claims.exp + LEEWAY_S:
                return claims
            del self._verified[token]
        claims = self._verify_access(token)
        if len(self._verified) >= VERIFIED_CACHE_MAX:
            self._evict()
        self._verified[token] = claims
        return claims

    def _evict(self) -> None:
        """Make room: drop expired entries, then the older half (dicts keep insertion order)."""
        now = time.time() - LEEWAY_S
        live = {t: c for t, c in self._verified.items() if c.exp > now}
        if len(live) >= VERIFIED_CACHE_MAX:
            live = dict(list(live.items())[len(live) // 2:])
        self._verified = live

    def _verify_access(self, token: str) -> AccessClaims:
        try:
            p = self._decode(token, self._access, self.audience, "at+jwt", _ACCESS_REQUIRED)
            if (p["typ"] != "access" or not isinstance(p["role"], str)
                    or not isinstance(p["vaf"], int) or isinstance(p["vaf"], bool)):
                raise InvalidToken()
            return AccessClaims(uuid.UUID(p["sub"]), uuid.UUID(p["tid"]), p["role"],
                                uuid.UUID(p["sid"]), p["jti"], int(p["iat"]), int(p["exp"]),
                                p["vaf"])
        except (jwt.PyJWTError, ValueError, TypeError, AttributeError, KeyError):
            raise InvalidToken() from None

    def issue_mfa(self, *, admin_id: uuid.UUID, tenant_id: uuid.UUID,
                  valid_after: int = 0) -> str:
        """A short-lived token proving the password step; good only for `/auth/mfa/verify`,
        and only while the admin's `tokens_valid_after` is still `valid_after`."""
        now = int(time.time())
        payload = {
            "iss": self.issuer, "aud": self.audience + ":mfa", "sub": str(admin_id),
            "tid": str(tenant_id), "jti": secrets.token_urlsafe(16), "iat": now,
            "exp": now + MFA_TOKEN_TTL_S, "typ": "mfa", "vaf": int(valid_after),
        }
        return self._sign(payload, self._mfa, "mfa+jwt")

    def verify_mfa(self, token: str) -> MfaClaims:
        """The claims of a valid MFA token, or InvalidMfaToken."""
        try:
            p = self._decode(token, self._mfa, self.audience + ":mfa", "mfa+jwt", _MFA_REQUIRED)
            if p["typ"] != "mfa" or not isinstance(p["vaf"], int):
                raise InvalidMfaToken()
            return MfaClaims(uuid.UUID(p["sub"]), uuid.UUID(p["tid"]), p["jti"], int(p["exp"]),
                             int(p["iat"]), p["vaf"])
        except (jwt.PyJWTError, ValueError, TypeError, AttributeError, KeyError, InvalidToken):
            raise InvalidMfaToken() from None

    def _sign(self, payload: dict[str, Any], ring: Keyring, typ: str) -> str:
        kid = ring.signing_kid
        return self._jwt.encode(payload, ring.keys[kid], algorithm=ALGORITHM,
                                headers={"kid": kid, "typ": typ})

    def _decode(self, token: str, ring: Keyring, audience: str, typ: str,
                required: list[str]) -> dict[str, Any]:
        if not isinstance(token, str) or len(token) > 4096:
            raise InvalidToken()
        header = jwt.get_unverified_header(token)
        # Only the kid picks a key, and only from the static keyring; jku/x5u/jwk/crit and any
        # algorithm but the pinned one are refused before any signature work.
        if set(header) - _ALLOWED_HEADERS or header.get("alg") != ALGORITHM:
            raise InvalidToken()
        if header.get("typ") != typ:
            raise InvalidToken()
        kid = header.get("kid")
        key = ring.keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidToken()
        payload: dict[str, Any] = self._jwt.decode(
            token, key, algorithms=[ALGORITHM], audience=audience, issuer=self.issuer,
            leeway=LEEWAY_S, options={"require": required, "strict_aud": True},
        )
        return payload


# --- opaque tokens: refresh, password reset, invitation -------------------------------------

REFRESH_PREFIX = "ywr"
RESET_PREFIX = "ywp"
INVITE_PREFIX = "ywi"


def new_opaque(prefix: str, tenant_id: uuid.UUID) -> tuple[str, bytes]:
    """A random token naming its tenant (which database to look in), and its SHA-256.

    The tenant part only routes the look-up: the token is valid only if its hash is found in
    that tenant's database, so changing it gains nothing.
    """
    token = f"{prefix}_{tenant_id.hex}_{secrets.token_urlsafe(32)}"
    return token, token_hash(token)


def parse_opaque(prefix: str, token: object) -> tuple[uuid.UUID, bytes] | None:
    """(tenant id, hash) of a well-formed token of this kind, else None."""
    if not isinstance(token, str) or len(token) > 200:
        return None
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != prefix or len(parts[1]) != 32 or len(parts[2]) < 40:
        return None
    try:
        tid = uuid.UUID(hex=parts[1])
    except ValueError:
        return None
    return tid, token_hash(token)


def token_hash(token: str) -> bytes:
    """The 32-byte digest stored instead of a token."""
    return hashlib.sha256(token.encode()).digest()


def keyed_hash(key: bytes, value: str) -> bytes:
    """HMAC-SHA256 (for low-entropy secrets such as recovery codes)."""
    return hmac.new(key, value.encode(), hashlib.sha256).digest()

