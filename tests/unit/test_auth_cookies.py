"""The signed double-submit CSRF token and the cookie attributes."""

from __future__ import annotations

import uuid

from aiohttp import web

from ywmessaging.auth.cookies import (
    ACCESS_COOKIE,
    CSRF_COOKIE,
    REFRESH_COOKIE,
    clear_session_cookies,
    csrf_ok,
    new_csrf_token,
    set_session_cookies,
)

KEY = b"k" * 32


def test_csrf_token_is_bound_to_its_session() -> None:
    sid = uuid.uuid4()
    token = new_csrf_token(KEY, sid)
    assert csrf_ok(KEY, sid, token, token)
    assert not csrf_ok(KEY, uuid.uuid4(), token, token)      # another session's token
    assert not csrf_ok(b"x" * 32, sid, token, token)          # another key
    assert not csrf_ok(KEY, sid, token, None)                 # header missing
    assert not csrf_ok(KEY, sid, None, token)                 # cookie missing
    other = new_csrf_token(KEY, sid)
    assert not csrf_ok(KEY, sid, token, other)                # header differs from cookie
    forged = token.split(".")[0] + ".AAAA"
    assert not csrf_ok(KEY, sid, forged, forged)              # planted, unsigned


def test_cookie_attributes() -> None:
    resp = web.Response()
    set_session_cookies(resp, access="a", refresh="r", csrf="c", access_ttl=900,
                        refresh_ttl=3600)
    access, refresh, csrf = resp.cookies[ACCESS_COOKIE], resp.cookies[REFRESH_COOKIE], \
        resp.cookies[CSRF_COOKIE]
    for morsel in (access, refresh, csrf):
        assert morsel["secure"] and morsel["samesite"] == "Lax"
    assert access["httponly"] and refresh["httponly"] and not csrf["httponly"]
    assert access["path"] == "/" and csrf["path"] == "/"
    assert refresh["path"] == "/api/v1/auth"
    assert ACCESS_COOKIE.startswith("__Host-") and CSRF_COOKIE.startswith("__Host-")
    cleared = web.Response()
    clear_session_cookies(cleared)
    assert cleared.cookies[ACCESS_COOKIE]["max-age"] == "0"
