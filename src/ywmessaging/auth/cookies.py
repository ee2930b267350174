"""Cookie mode: HttpOnly Secure SameSite=Lax session cookies and a signed double-submit CSRF token.

The access cookie uses the `__Host-` prefix (Secure, Path=/, no Domain: no subdomain can plant
one). The refresh cookie is scoped to `/api/v1/auth`, so it travels only to refresh and logout.
The CSRF cookie is readable by the page, which echoes it in `X-CSRF-Token` on every write; the
token is an HMAC over the session id, so a token planted from elsewhere never matches.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid

from aiohttp import web

ACCESS_COOKIE = "__Host-ywm_access"
REFRESH_COOKIE = "__Secure-ywm_refresh"
CSRF_COOKIE = "__Host-ywm_csrf"
CSRF_HEADER = "X-CSRF-Token"
REFRESH_COOKIE_PATH = "/api/v1/auth"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _mac(key: bytes, session_id: uuid.UUID, nonce: str) -> str:
    digest = hmac.new(key, f"{session_id}.{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def new_csrf_token(key: bytes, session_id: uuid.UUID) -> str:
    """A CSRF token bound to one session."""
    nonce = secrets.token_urlsafe(16)
    return f"{nonce}.{_mac(key, session_id, nonce)}"


def csrf_ok(key: bytes, session_id: uuid.UUID, cookie: str | None, header: str | None) -> bool:
    """Whether the header equals the cookie and both were made for this session."""
    if not cookie or not header or len(header) > 200:
        return False
    if not hmac.compare_digest(cookie.encode(), header.encode()):
        return False
    nonce, _, mac = header.partition(".")
    return bool(nonce) and hmac.compare_digest(mac.encode(),
                                               _mac(key, session_id, nonce).encode())


def set_session_cookies(response: web.StreamResponse, *, access: str, refresh: str, csrf: str,
                        access_ttl: int, refresh_ttl: int) -> None:
    """Put the access, refresh and CSRF cookies on a response."""
    response.set_cookie(ACCESS_COOKIE, access, path="/", max_age=access_ttl, httponly=True,
                        secure=True, samesite="Lax")
    response.set_cookie(REFRESH_COOKIE, refresh, path=REFRESH_COOKIE_PATH, max_age=refresh_ttl,
                        httponly=True, secure=True, samesite="Lax")
    response.set_cookie(CSRF_COOKIE, csrf, path="/", max_age=refresh_ttl, secure=True,
                        samesite="Lax")


def clear_session_cookies(response: web.StreamResponse) -> None:
    """Expire the three session cookies."""
    response.del_cookie(ACCESS_COOKIE, path="/", httponly=True, secure=True, samesite="Lax")
    response.del_cookie(REFRESH_COOKIE, path=REFRESH_COOKIE_PATH, httponly=True, secure=True,
                        samesite="Lax")
    response.del_cookie(CSRF_COOKIE, path="/", secure=True, samesite="Lax")
