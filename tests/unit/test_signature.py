"""Webhook signature policy: Ed25519 over `timestamp|raw body`, strict and fail-closed."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ywmessaging.errors import AppError
from ywmessaging.messaging import signature as sig

BODY = b'{"data":{"id":"evt-1","event_type":"message.received"}}'
NOW = 1_700_000_000


@pytest.fixture(scope="module")
def seed() -> str:
    return sig.generate_seed()


def _keys(seed: str) -> tuple[Ed25519PrivateKey, object]:
    private = sig.private_key(seed)
    return private, sig.load_public_key(sig.public_key_b64(private))


def _code(exc: pytest.ExceptionInfo[AppError]) -> tuple[int, str]:
    return exc.value.status, exc.value.code


def test_a_good_signature_verifies(seed: str) -> None:
    private, public = _keys(seed)
    headers = sig.signed_headers(private, BODY, at=NOW)
    assert sig.verify(public, headers[sig.SIGNATURE_HEADER], headers[sig.TIMESTAMP_HEADER],
                      BODY, now=NOW) == NOW


def test_the_signature_covers_the_exact_body_and_timestamp(seed: str) -> None:
    private, public = _keys(seed)
    headers = sig.signed_headers(private, BODY, at=NOW)
    reserialized = BODY.replace(b":", b": ")
    with pytest.raises(AppError) as exc:
        sig.verify(public, headers[sig.SIGNATURE_HEADER], headers[sig.TIMESTAMP_HEADER],
                   reserialized, now=NOW)
    assert _code(exc) == (401, "webhook_signature_invalid")
    with pytest.raises(AppError) as exc:
        sig.verify(public, headers[sig.SIGNATURE_HEADER], str(NOW + 1), BODY, now=NOW)
    assert _code(exc) == (401, "webhook_signature_invalid")


def test_another_key_is_refused(seed: str) -> None:
    private, _ = _keys(seed)
    _, other = _keys(sig.generate_seed())
    headers = sig.signed_headers(private, BODY, at=NOW)
    with pytest.raises(AppError) as exc:
        sig.verify(other, headers[sig.SIGNATURE_HEADER], headers[sig.TIMESTAMP_HEADER], BODY,
                   now=NOW)
    assert _code(exc) == (401, "webhook_signature_invalid")


@pytest.mark.parametrize("offset", [-301, 301, -10_000, 10_000])
def test_timestamps_outside_the_two_sided_window_are_refused(seed: str, offset: int) -> None:
    private, public = _keys(seed)
    headers = sig.signed_headers(private, BODY, at=NOW + offset)
    with pytest.raises(AppError) as exc:
        sig.verify(public, headers[sig.SIGNATURE_HEADER], headers[sig.TIMESTAMP_HEADER], BODY,
                   now=NOW)
    assert _code(exc) == (401, "webhook_timestamp_invalid")


@pytest.mark.parametrize("offset", [-300, 300, 0])
def test_timestamps_at_the_window_edge_pass(seed: str, offset: int) -> None:
    private, public = _keys(seed)
    headers = sig.signed_headers(private, BODY, at=NOW + offset)
    sig.verify(public, headers[sig.SIGNATURE_HEADER], headers[sig.TIMESTAMP_HEADER], BODY,
               now=NOW)


@pytest.mark.parametrize("ts", [None, "", " 1700000000", "1_700_000_000", "+1700000000",
                                "١٧٠٠٠٠٠٠٠٠", "1700000000.0", "-1", "9" * 20])
def test_malformed_timestamps_are_refused(seed: str, ts: str | None) -> None:
    private, public = _keys(seed)
    good = sig.sign(private, str(NOW), BODY)
    with pytest.raises(AppError) as exc:
        sig.verify(public, good, ts, BODY, now=NOW)
    assert _code(exc) == (401, "webhook_timestamp_invalid")


def test_non_strict_base64_signatures_are_refused(seed: str) -> None:
    private, public = _keys(seed)
    good = sig.sign(private, str(NOW), BODY)
    padded_junk = good[:10] + "!" + good[10:]        # lenient decoders drop the "!"
    truncated = base64.b64encode(base64.b64decode(good)[:63]).decode()
    for bad in (None, "", "not base64 at all", padded_junk, good + "\n", truncated,
                good.rstrip("="), "é" * 88):
        with pytest.raises(AppError) as exc:
            sig.verify(public, bad, str(NOW), BODY, now=NOW)
        assert _code(exc) == (401, "webhook_signature_invalid"), bad


def test_fails_closed_without_a_key(seed: str) -> None:
    private, _ = _keys(seed)
    headers = sig.signed_headers(private, BODY, at=NOW)
    with pytest.raises(AppError) as exc:
        sig.verify(None, headers[sig.SIGNATURE_HEADER], headers[sig.TIMESTAMP_HEADER], BODY,
                   now=NOW)
    assert _code(exc) == (401, "webhook_key_missing")
    assert sig.load_public_key(None) is None
    assert sig.load_public_key("") is None
    assert sig.load_public_key("AAAA") is None               # not 32 bytes
    assert sig.load_public_key("not base64!") is None


def test_seed_round_trip(seed: str) -> None:
    with pytest.raises(ValueError):
        sig.private_key("c2hvcnQ=")
    assert sig.public_key_b64(sig.private_key(seed)) == sig.public_key_b64(sig.private_key(seed))
