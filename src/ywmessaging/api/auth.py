"""`/api/v1/auth/*`: sign-up, login, MFA, refresh, logout, profile, passwords, invitations.

Token-issuing routes answer in one of two modes: tokens in the JSON body (Bearer clients), or,
with `"use_cookies": true` (refresh and logout: when the refresh token comes as a cookie), as
HttpOnly cookies with only the CSRF token in the body.
"""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web

from ..auth import accounts, login, mfa_flows, sessions
from ..auth.cookies import (
    ACCESS_COOKIE,
    CSRF_COOKIE,
    CSRF_HEADER,
    REFRESH_COOKIE,
    clear_session_cookies,
    set_session_cookies,
)
from ..auth.errors import InvalidRefreshToken
from ..auth.state import AuthServices, client, lease, principal, registry_pool, services
from ..auth.tokens import REFRESH_PREFIX, parse_opaque
from ..errors import TenantNotFound, TenantSuspended
from ..tenants.middleware import tenant_conn
from ..values import boolean, secret, spec_email, text
from .admins import admin_json
from .responses import json_response
from .validation import fields, json_body

NO_STORE = {"Cache-Control": "no-store"}
_NAME = text(100)


def tokens_response(svc: AuthServices, issued: sessions.Issued, *, cookies: bool,
                    status: int = 200, extra: dict[str, Any] | None = None) -> web.Response:
    """The token pair in the body, or as cookies with the CSRF token in the body."""
    body: dict[str, Any] = {"expires_in": issued.expires_in, **(extra or {})}
    if cookies:
        body |= {"token_type": "cookie", "csrf_token": issued.csrf_token}
    else:
        body |= {"token_type": "Bearer", "access_token": issued.access_token,
                 "refresh_token": issued.refresh_token}
    response = json_response(body, status=status, headers=dict(NO_STORE))
    if cookies:
        set_session_cookies(response, access=issued.access_token, refresh=issued.refresh_token,
                            csrf=issued.csrf_token, access_ttl=svc.settings.jwt_access_ttl,
                            refresh_ttl=svc.settings.jwt_refresh_ttl)
    return response


async def register(request: web.Request) -> web.Response:
    """Create a church and its owner; 201 with the owner's tokens."""
    data = fields(await json_body(request), required={
        "church_name": _NAME, "email": spec_email(), "password": secret(), "first_name": _NAME,
        "last_name": _NAME,
    }, optional={"timezone": text(64), "use_cookies": boolean()})
    svc = services(request)
    made = await accounts.register(
        svc, registry_pool(request), church_name=data["church_name"], email=data["email"],
        password=data["password"], first_name=data["first_name"],
        last_name=data["last_name"], time_zone=data["timezone"] or "America/New_York",
        client=client(request),
    )
    return tokens_response(svc, made.issued, cookies=bool(data["use_cookies"]), status=201,
                           extra={"church_id": str(made.tenant_id),
                                  "admin_id": str(made.admin_id)})


async def login_route(request: web.Request) -> web.Response:
    """Email and password → tokens, or `{mfa_required, mfa_token}`."""
    data = fields(await json_body(request), required={"email": spec_email(), "password": secret()},
                  optional={"use_cookies": boolean()})
    svc = services(request)
    # suspended_ok: an owner of a suspended church signs in (login.py decides who may)
    result = await login.login(svc, registry_pool(request),
                               functools.partial(lease, request, suspended_ok=True),
                               email=data["email"], password=data["password"],
                               client=client(request))
    if isinstance(result, login.MfaChallenge):
        return json_response({"mfa_required": True, "mfa_token": result.mfa_token},
                             headers=dict(NO_STORE))
    return tokens_response(svc, result, cookies=bool(data["use_cookies"]))


async def mfa_verify(request: web.Request) -> web.Response:
    """The MFA token and a TOTP or recovery code → tokens."""
    data = fields(await json_body(request),
                  required={"mfa_token": secret(4096), "code": secret(32)},
                  optional={"use_cookies": boolean()})
    svc = services(request)
    issued = await login.verify_mfa(svc, functools.partial(lease, request, suspended_ok=True),
                                    mfa_token=data["mfa_token"], code=data["code"],
                                    client=client(request))
    return tokens_response(svc, issued, cookies=bool(data["use_cookies"]))


async def refresh(request: web.Request) -> web.Response:
    """Rotate a refresh token (body, or the cookie with the CSRF header)."""
    data = fields(await json_body(request, allow_empty=True),
                  optional={"refresh_token": secret(200)})
    cookie_mode = data["refresh_token"] is None
    token = request.cookies.get(REFRESH_COOKIE) if cookie_mode else data["refresh_token"]
    parsed = parse_opaque(REFRESH_PREFIX, token)
    if parsed is None:
        raise InvalidRefreshToken()
    svc = services(request)
    csrf = (request.cookies.get(CSRF_COOKIE), request.headers.get(CSRF_HEADER))
    try:
        # a suspended church's sessions go on: its owner may still pay, export or delete
        # (every other route answers 423 `tenant_suspended`)
        async with lease(request, parsed[0], suspended_ok=True) as conn:
            issued = await sessions.rotate(conn, svc, tenant_id=parsed[0], digest=parsed[1],
                                           client=client(request),
                                           csrf=csrf if cookie_mode else None)
    except (TenantNotFound, TenantSuspended):
        raise InvalidRefreshToken() from None
    return tokens_response(svc, issued, cookies=cookie_mode)


async def logout(request: web.Request) -> web.Response:
    """End the session of the access token (or of the refresh token) and deny its jti; 204."""
    data = fields(await json_body(request, allow_empty=True),
                  optional={"refresh_token": secret(200)})
    header = request.headers.get("Authorization", "")
    bearer = header[7:].strip() if header[:7].lower() == "bearer " else None
    access = bearer or request.cookies.get(ACCESS_COOKIE)
    refresh_token = data["refresh_token"] or request.cookies.get(REFRESH_COOKIE)
    await sessions.logout(
        services(request), functools.partial(lease, request),
        access=(access, not bearer) if access else None,
        refresh=(refresh_token, not data["refresh_token"]) if refresh_token else None,
        csrf=(request.cookies.get(CSRF_COOKIE), request.headers.get(CSRF_HEADER)),
        client=client(request),
    )
    response = web.Response(status=204, headers=dict(NO_STORE))
    clear_session_cookies(response)
    return response


async def me(request: web.Request) -> web.Response:
    """The admin, their role and their church."""
    who = principal(request)
    admin, church = await accounts.profile(tenant_conn(request), services(request), who)
    return json_response({"admin": admin_json(admin), "role": admin["role"],
                          "church": {"id": str(who.tenant_id), "name": church["church_name"],
                                     "timezone": church["time_zone"]}})


async def change_password(request: web.Request) -> web.Response:
    """Change the password (current one required); other sessions end."""
    data = fields(await json_body(request),
                  required={"current_password": secret(), "new_password": secret()})
    revoked = await accounts.change_password(
        tenant_conn(request), services(request), registry_pool(request), principal(request),
        current=data["current_password"], new=data["new_password"], client=client(request))
    return json_response({"sessions_revoked": revoked})


async def password_reset(request: web.Request) -> web.Response:
    """Email a reset link if the address is an admin's; 202 either way."""
    data = fields(await json_body(request), required={"email": spec_email()})
    await accounts.request_reset(services(request), registry_pool(request),
                                 functools.partial(lease, request), email=data["email"],
                                 client=client(request))
    return json_response({"status": "accepted"}, status=202)


async def password_reset_confirm(request: web.Request) -> web.Response:
    """Set a new password with a reset token (single use); every session ends; 204."""
    data = fields(await json_body(request),
                  required={"token": secret(200), "new_password": secret()})
    await accounts.confirm_reset(services(request), registry_pool(request),
                                 functools.partial(lease, request), token=data["token"],
                                 new_password=data["new_password"], client=client(request))
    return web.Response(status=204)


async def accept_invitation(request: web.Request) -> web.Response:
    """Set the password of an invited admin and log them in."""
    data = fields(await json_body(request), required={"token": secret(200),
                                                      "password": secret()},
                  optional={"use_cookies": boolean()})
    svc = services(request)
    issued = await accounts.accept_invitation(svc, registry_pool(request),
                                              functools.partial(lease, request),
                                              token=data["token"], password=data["password"],
                                              client=client(request))
    return tokens_response(svc, issued, cookies=bool(data["use_cookies"]))


async def mfa_setup(request: web.Request) -> web.Response:
    """A new TOTP secret and its otpauth:// URI (MFA is on only after `enable`); needs the
    current password."""
    data = fields(await json_body(request), required={"password": secret()})
    got = await mfa_flows.setup(tenant_conn(request), services(request), registry_pool(request),
                                principal(request), password=data["password"],
                                client=client(request))
    return json_response({"secret": got.secret, "otpauth_uri": got.otpauth_uri},
                         headers=dict(NO_STORE))


async def mfa_enable(request: web.Request) -> web.Response:
    """The current password and one code; MFA turns on and 10 recovery codes are shown once."""
    data = fields(await json_body(request), required={"code": secret(32),
                                                      "password": secret()})
    codes = await mfa_flows.enable(tenant_conn(request), services(request),
                                   registry_pool(request), principal(request),
                                   code=data["code"], password=data["password"],
                                   client=client(request))
    return json_response({"recovery_codes": codes}, headers=dict(NO_STORE))


async def mfa_disable(request: web.Request) -> web.Response:
    """Turn MFA off with the password and a code; 204."""
    data = fields(await json_body(request),
                  required={"password": secret(), "code": secret(32)})
    await mfa_flows.disable(tenant_conn(request), services(request), registry_pool(request),
                            principal(request), password=data["password"], code=data["code"],
                            client=client(request))
    return web.Response(status=204)


async def mfa_recovery_codes(request: web.Request) -> web.Response:
    """Replace the recovery codes (a current TOTP code required)."""
    data = fields(await json_body(request), required={"code": secret(32)})
    codes = await mfa_flows.regenerate_codes(tenant_conn(request), services(request),
                                             principal(request), code=data["code"],
                                             client=client(request))
    return json_response({"recovery_codes": codes}, headers=dict(NO_STORE))
