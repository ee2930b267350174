"""TOTP matching (±1 step, replay refused) and recovery codes."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

from ywmessaging.auth import mfa

NOW = 1_700_000_000.0
STEP = mfa.current_step(NOW)


def test_codes_within_one_step_match_and_say_their_step() -> None:
    secret = mfa.new_secret()
    assert len(secret) == 32  # 160 bits
    for step in (STEP - 1, STEP, STEP + 1):
        assert mfa.match_step(secret, mfa.totp_at(secret, step), now=NOW, last_step=None) == step


def test_codes_two_steps_away_do_not_match() -> None:
    secret = mfa.new_secret()
    for step in (STEP - 2, STEP + 2):
        code = mfa.totp_at(secret, step)
        near = {mfa.totp_at(secret, s) for s in (STEP - 1, STEP, STEP + 1)}
        if code not in near:  # a 1-in-a-million collision would make this meaningless
            assert mfa.match_step(secret, code, now=NOW, last_step=None) is None


def test_a_used_step_and_older_ones_are_refused() -> None:
    secret = mfa.new_secret()
    code = mfa.totp_at(secret, STEP)
    assert mfa.match_step(secret, code, now=NOW, last_step=STEP - 1) == STEP
    assert mfa.match_step(secret, code, now=NOW, last_step=STEP) is None
    assert mfa.match_step(secret, mfa.totp_at(secret, STEP - 1), now=NOW,
                          last_step=STEP) is None
    assert mfa.match_step(secret, mfa.totp_at(secret, STEP + 1), now=NOW,
                          last_step=STEP) == STEP + 1


def test_non_codes_are_refused() -> None:
    secret = mfa.new_secret()
    for bad in ("", "12345", "1234567", "abcdef", "12 34 5"):
        assert mfa.match_step(secret, bad, now=NOW, last_step=None) is None


def test_otpauth_uri() -> None:
    secret = mfa.new_secret()
    uri = urlparse(mfa.otpauth_uri(secret, "pastor@example.org"))
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    query = parse_qs(uri.query)
    assert query["secret"] == [secret] and query["issuer"] == [mfa.ISSUER]


def test_recovery_codes() -> None:
    codes = mfa.new_recovery_codes()
    assert len(codes) == 10 and len(set(codes)) == 10
    for code in codes:
        assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", code)
        assert mfa.normalize_recovery_code(code.lower().replace("-", " ")) == code.replace("-", "")
        assert not mfa.looks_like_totp(mfa.clean_code(code))
    assert mfa.normalize_recovery_code("0000-0000-0000") is None  # 0 is not in the alphabet
    assert mfa.normalize_recovery_code("ABCD-EFGH") is None
