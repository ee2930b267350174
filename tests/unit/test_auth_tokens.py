"""Access and MFA JWTs: pinned algorithm, claims, audiences, kinds, keyring rotation."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import jwt
import pytest

from ywmessaging.auth import tokens as tokens_module
from ywmessaging.auth.errors import InvalidMfaToken, InvalidToken
from ywmessaging.auth.tokens import (
    REFRESH_PREFIX,
    RESET_PREFIX,
    Keyring,
    Tokens,
    new_opaque,
    parse_opaque,
)
from ywmessaging.config import Settings
from ywmessaging.errors import ConfigError

SECRET = "unit-test-secret-" + "s" * 32
KEY_A = base64.b64encode(b"a" * 32).decode()
KEY_B = base64.urlsafe_b64encode(b"b" * 40).decode()


def _tokens(**kw: Any) -> Tokens:
    settings = Settings(secret_key=SECRET, **kw)
    return Tokens(settings, Keyring.from_settings(settings))


def _issue(tokens: Tokens) -> tuple[str, uuid.UUID, uuid.UUID]:
    admin, tenant = uuid.uuid4(), uuid.uuid4()
    token, _ = tokens.issue_access(admin_id=admin, tenant_id=tenant, role="owner",
                                   session_id=uuid.uuid4(), valid_after_us=1_700_000_000_000_000)
    return token, admin, tenant


def _forge(tokens: Tokens, change: dict[str, Any], *, header: dict[str, Any] | None = None,
           key: bytes | None = None, alg: str = "HS256") -> str:
    """Re-sign a valid token's claims with changes, using the real access key unless told."""
    good, _, _ = _issue(tokens)
    claims = jwt.decode(good, options={"verify_signature": False}) | change
    ring = tokens._access
    return jwt.encode(claims, key or ring.keys[ring.signing_kid], algorithm=alg,
                      headers=header or {"kid": ring.signing_kid, "typ": "at+jwt"})


def test_round_trip() -> None:
    tokens = _tokens()
    token, admin, tenant = _issue(tokens)
    claims = tokens.verify_access(token)
    assert (claims.admin_id, claims.tenant_id, claims.role) == (admin, tenant, "owner")
    assert claims.valid_after_us == 1_700_000_000_000_000
    assert claims.exp - claims.iat == 900
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256" and header["typ"] == "at+jwt" and header["kid"]


def test_a_forged_copy_with_the_real_key_passes() -> None:
    """Control for the cases below: the forging helper itself makes acceptable tokens."""
    tokens = _tokens()
    assert tokens.verify_access(_forge(tokens, {})).role == "owner"


@pytest.mark.parametrize("change", [
    {"exp": int(time.time()) - 60},                    # expired (beyond the leeway)
    {"aud": "someone-else"},
    {"iss": "evil"},
    {"typ": "mfa"},
    {"tid": "not-a-uuid"},
    {"iat": int(time.time()) + 3600},                  # issued in the future
    {"vaf": "1700000000000000"},                       # tokens_valid_after not an integer
    {"vaf": True},
])
def test_bad_claims_are_refused(change: dict[str, Any]) -> None:
    tokens = _tokens()
    with pytest.raises(InvalidToken):
        tokens.verify_access(_forge(tokens, change))


@pytest.mark.parametrize("missing", ["exp", "iat", "jti", "sub", "tid", "role", "sid", "aud",
                                     "vaf"])
def test_missing_claims_are_refused(missing: str) -> None:
    tokens = _tokens()
    good, _, _ = _issue(tokens)
    claims = jwt.decode(good, options={"verify_signature": False})
    del claims[missing]
    ring = tokens._access
    token = jwt.encode(claims, ring.keys[ring.signing_kid], algorithm="HS256",
                       headers={"kid": ring.signing_kid, "typ": "at+jwt"})
    with pytest.raises(InvalidToken):
        tokens.verify_access(token)


def test_alg_none_tampering_and_wrong_key_are_refused() -> None:
    tokens = _tokens()
    good, _, _ = _issue(tokens)
    head, body, sig = good.split(".")
    none_header = base64.urlsafe_b64encode(
        b'{"alg":"none","typ":"at+jwt","kid":"' + tokens._access.signing_kid.encode() + b'"}'
    ).rstrip(b"=").decode()
    cases = [
        f"{none_header}.{body}.",
        f"{head}.{body}.{sig[:-2]}{'AA' if sig[-2:] != 'AA' else 'BB'}",
        _forge(tokens, {}, key=b"k" * 32),
        _forge(tokens, {}, alg="HS512", key=tokens._access.keys[tokens._access.signing_kid] * 2),
        _forge(tokens, {}, header={"kid": "other", "typ": "at+jwt"}),
        _forge(tokens, {}, header={"kid": tokens._access.signing_kid, "typ": "at+jwt",
                                   "jku": "https://evil.example/keys"}),
        _forge(tokens, {}, header={"kid": tokens._access.signing_kid, "typ": "JWT"}),
        "not.a.jwt", "", "x" * 5000,
    ]
    for bad in cases:
        with pytest.raises(InvalidToken):
            tokens.verify_access(bad)


def test_the_secret_key_itself_does_not_verify() -> None:
    """The JWT key is derived per purpose: a token signed with the raw master key fails."""
    tokens = _tokens()
    with pytest.raises(InvalidToken):
        tokens.verify_access(_forge(tokens, {}, key=SECRET.encode()))


def test_mfa_and_access_tokens_never_pass_for_each_other() -> None:
    tokens = _tokens()
    admin, tenant = uuid.uuid4(), uuid.uuid4()
    mfa = tokens.issue_mfa(admin_id=admin, tenant_id=tenant)
    assert tokens.verify_mfa(mfa).admin_id == admin
    with pytest.raises(InvalidToken):
        tokens.verify_access(mfa)
    access, _ = tokens.issue_access(admin_id=admin, tenant_id=tenant, role="owner",
                                    session_id=uuid.uuid4(), valid_after_us=0)
    with pytest.raises(InvalidMfaToken):
        tokens.verify_mfa(access)


def test_mfa_token_carries_the_tokens_valid_after_it_was_issued_under() -> None:
    tokens = _tokens()
    admin, tenant = uuid.uuid4(), uuid.uuid4()
    stamp = 1_767_225_600_123_456  # microseconds, as the database gives it
    claims = tokens.verify_mfa(tokens.issue_mfa(admin_id=admin, tenant_id=tenant,
                                                valid_after=stamp))
    assert claims.valid_after == stamp and claims.iat > 0
    # A token without the stamp (or with a non-integer one) is refused.
    ring = tokens._mfa
    raw = jwt.decode(tokens.issue_mfa(admin_id=admin, tenant_id=tenant),
                     options={"verify_signature": False})
    for changed in ({k: v for k, v in raw.items() if k != "vaf"}, raw | {"vaf": "1"}):
        forged = jwt.encode(changed, ring.keys[ring.signing_kid], algorithm="HS256",
                            headers={"kid": ring.signing_kid, "typ": "mfa+jwt"})
        with pytest.raises(InvalidMfaToken):
            tokens.verify_mfa(forged)


def test_rotation_old_kid_verifies_new_kid_signs_retired_kid_fails() -> None:
    old = _tokens(jwt_signing_keys=f"k1:{KEY_A}")
    token_k1, _, _ = _issue(old)
    rotating = _tokens(jwt_signing_keys=f"k2:{KEY_B},k1:{KEY_A}")
    assert rotating.verify_access(token_k1)
    token_k2, _, _ = _issue(rotating)
    assert jwt.get_unverified_header(token_k2)["kid"] == "k2"
    retired = _tokens(jwt_signing_keys=f"k2:{KEY_B}")
    assert retired.verify_access(token_k2)
    with pytest.raises(InvalidToken):
        retired.verify_access(token_k1)


@pytest.mark.parametrize("spec", [
    "k1", f"k1:{base64.b64encode(b'short').decode()}", "k1:@@@notbase64", f"k1:{KEY_A},k1:{KEY_B}",
    f"bad kid:{KEY_A}", ",",
])
def test_bad_keyrings_stop_the_boot(spec: str) -> None:
    with pytest.raises(ConfigError):
        Keyring.parse(spec)


def test_derived_keyring_is_stable_and_secret_dependent() -> None:
    a = Keyring.from_settings(Settings(secret_key=SECRET))
    assert a == Keyring.from_settings(Settings(secret_key=SECRET))
    b = Keyring.from_settings(Settings(secret_key=SECRET + "x"))
    assert a.signing_kid != b.signing_kid and a.keys != b.keys


def test_opaque_tokens() -> None:
    tid = uuid.uuid4()
    token, digest = new_opaque(REFRESH_PREFIX, tid)
    assert len(digest) == 32
    assert parse_opaque(REFRESH_PREFIX, token) == (tid, digest)
    assert parse_opaque(RESET_PREFIX, token) is None
    for bad in (None, 42, "", "ywr_x_y", f"ywr_{tid.hex}_short", f"ywr_{'z' * 32}_{'a' * 43}"):
        assert parse_opaque(REFRESH_PREFIX, bad) is None


def test_a_verified_token_is_decoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = _tokens()
    token, admin, _ = _issue(tokens)
    decodes = []
    real = tokens._decode
    monkeypatch.setattr(tokens, "_decode", lambda *a: decodes.append(1) or real(*a))
    for _ in range(5):
        assert tokens.verify_access(token).admin_id == admin
    assert len(decodes) == 1


def test_a_cached_token_is_refused_once_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = _tokens()
    token, _, _ = _issue(tokens)
    claims = tokens.verify_access(token)           # cached now

    def decoder_says_expired(_token: str) -> Any:
        raise InvalidToken()

    monkeypatch.setattr(tokens, "_verify_access", decoder_says_expired)
    assert tokens.verify_access(token) == claims   # still live: served from the cache
    later = claims.exp + 11.0                      # past exp and the 10 s leeway
    monkeypatch.setattr(tokens_module.time, "time", lambda: later)
    with pytest.raises(InvalidToken):              # the cache no longer answers for it
        tokens.verify_access(token)
    assert token not in tokens._verified


def test_the_verified_cache_is_bounded_and_keeps_working(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens_module, "VERIFIED_CACHE_MAX", 8)
    tokens = _tokens()
    issued = [_issue(tokens) for _ in range(30)]
    for token, admin, _ in issued:
        assert tokens.verify_access(token).admin_id == admin
        assert len(tokens._verified) <= 8
    newest = issued[-1][0]
    assert newest in tokens._verified
    for token, admin, _ in issued:  # evicted ones are verified again, not refused
        assert tokens.verify_access(token).admin_id == admin
