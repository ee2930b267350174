"""TOTP (RFC 6238: 30 s, 6 digits, SHA-1, ±1 step, replay refused) and recovery codes."""

from __future__ import annotations

import hmac
import re
import secrets

import pyotp

STEP_S = 30
DIGITS = 6
ISSUER = "YWMessaging"
RECOVERY_CODE_COUNT = 10
# Unambiguous upper-case letters and digits (no 0/O, 1/I/L, U): 30 symbols, 12 of them per
# code ≈ 59 bits from the CSPRNG, above the 50-bit floor for recovery codes.
_RECOVERY_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"
_RECOVERY_LEN = 12
_TOTP_RE = re.compile(r"[0-9]{6}")


def new_secret() -> str:
    """A 160-bit base32 TOTP secret."""
    return pyotp.random_base32(32)


def otpauth_uri(secret: str, account: str) -> str:
    """The `otpauth://totp/...` URI an authenticator app scans."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S).provisioning_uri(
        name=account, issuer_name=ISSUER
    )


def clean_code(code: str) -> str:
    """The code without spaces and dashes, upper-cased."""
    return code.replace(" ", "").replace("-", "").upper()


def looks_like_totp(code: str) -> bool:
    """Whether a cleaned code is six digits (else it is tried as a recovery code)."""
    return bool(_TOTP_RE.fullmatch(code))


def totp_at(secret: str, step: int) -> str:
    """The code of one time step (for tests and the benchmark)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S).generate_otp(step)


def current_step(now: float) -> int:
    """The RFC 6238 counter at unix time `now`."""
    return int(now // STEP_S)


def match_step(secret: str, code: str, *, now: float, last_step: int | None) -> int | None:
    """The time step `code` belongs to (now ±1), if it is newer than `last_step`; else None.

    Refusing steps at or below the last accepted one is what stops a replayed code; pyotp's
    own `verify` does not.
    """
    if not looks_like_totp(code):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S)
    now_step = current_step(now)
    found = None
    for step in (now_step - 1, now_step, now_step + 1):
        if last_step is not None and step <= last_step:
            continue
        # Compare every candidate so the time taken does not say which step matched.
        if hmac.compare_digest(totp.generate_otp(step), code) and found is None:
            found = step
    return found


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """Fresh codes shaped `XXXX-XXXX-XXXX`, shown once to the admin."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LEN))
        codes.append(f"{raw[:4]}-{raw[4:8]}-{raw[8:]}")
    return codes


def normalize_recovery_code(code: str) -> str | None:
    """The canonical form that is hashed, or None if it cannot be a recovery code."""
    cleaned = clean_code(code)
    if len(cleaned) != _RECOVERY_LEN or any(c not in _RECOVERY_ALPHABET for c in cleaned):
        return None
    return cleaned
