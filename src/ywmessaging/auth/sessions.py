"""Login sessions: a refresh-token family per login, rotation on every refresh, reuse detection.

Refreshes of one session are serialized by row locks on the family *and* the token: a refresh
that waited for the lock then reads the token as the winner left it (locking only the family
would let it see the old, unrotated row and fork the chain). The rotation itself only marks a
token that is not rotated yet. A token presented again after it was rotated means two parties
hold it: the whole family is revoked, unless the rotation happened within a few seconds (two
tabs refreshing at once), which gets 409 and no revocation.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..errors import TenantNotFound, TenantSuspended
from ..sqlq import tenant as tq
from .audit import clean_ip, record
from .cookies import csrf_ok, new_csrf_token
from .errors import (
    CsrfFailed,
    InvalidRefreshToken,
    InvalidToken,
    RefreshTokenReused,
    RefreshTokenSuperseded,
)
from .state import AuthServices, Client
from .tokens import REFRESH_PREFIX, AccessClaims, new_opaque, parse_opaque

Leaser = Callable[[uuid.UUID], AbstractAsyncContextManager[Any]]

REUSE_GRACE = timedelta(seconds=5)


@dataclass(frozen=True)
class Issued:
    """A fresh token pair for one session."""

    access_token: str
    refresh_token: str
    expires_in: int
    claims: AccessClaims
    csrf_token: str


async def _new_refresh(conn: Any, svc: AuthServices, *, tenant_id: uuid.UUID,
                       session_id: uuid.UUID, parent_id: uuid.UUID | None,
                       client: Client) -> str:
    token, digest = new_opaque(REFRESH_PREFIX, tenant_id)
    await tq(svc.settings.sql_dir).insert_refresh_token(
        conn, session_id, digest, parent_id, float(svc.settings.jwt_refresh_ttl),
        client.user_agent, clean_ip(client.ip),
    )
    return token


def _issue(svc: AuthServices, *, admin_id: uuid.UUID, tenant_id: uuid.UUID, role: str,
           session_id: uuid.UUID, refresh: str, valid_after_us: int) -> Issued:
    access, claims = svc.tokens.issue_access(admin_id=admin_id, tenant_id=tenant_id, role=role,
                                             session_id=session_id,
                                             valid_after_us=valid_after_us)
    return Issued(access, refresh, svc.tokens.access_ttl, claims,
                  new_csrf_token(svc.csrf_key, session_id))


async def open_session(conn: Any, svc: AuthServices, *, tenant_id: uuid.UUID,
                       admin_id: uuid.UUID, role: str, client: Client) -> Issued:
    """Start a session for an admin who just proved who they are, and mark the login."""
    q = tq(svc.settings.sql_dir)
    session_id = await q.create_session(conn, admin_id, float(svc.settings.jwt_session_max_age),
                                        client.user_agent, clean_ip(client.ip))
    refresh = await _new_refresh(conn, svc, tenant_id=tenant_id, session_id=session_id,
                                 parent_id=None, client=client)
    valid_after_us = await q.mark_login(conn, admin_id)
    return _issue(svc, admin_id=admin_id, tenant_id=tenant_id, role=role,
                  session_id=session_id, refresh=refresh, valid_after_us=valid_after_us)


async def rotate(conn: Any, svc: AuthServices, *, tenant_id: uuid.UUID, digest: bytes,
                 client: Client, csrf: tuple[str | None, str | None] | None) -> Issued:
    """Exchange a refresh token for a new pair (`csrf`: cookie and header in cookie mode)."""
    q = tq(svc.settings.sql_dir)
    reused: Any = None
    async with conn.transaction():
        row = await q.lock_refresh_token(conn, digest)
        if (row is None or row["family_revoked_at"] is not None
                or row["family_expires_at"] <= row["now"] or row["expires_at"] <= row["now"]):
            raise InvalidRefreshToken()
        if csrf is not None and not csrf_ok(svc.csrf_key, row["family_id"], *csrf):
            raise CsrfFailed()
        if row["rotated_at"] is not None:
            if row["now"] - row["rotated_at"] < REUSE_GRACE:
                raise RefreshTokenSuperseded()
            await q.revoke_session(conn, row["family_id"], row["admin_id"], "reuse_detected")
            await svc.revocations.session(tenant_id, row["family_id"])
            await record(conn, svc.settings, "auth.refresh_token_reused", tenant_id=tenant_id,
                         admin_id=row["admin_id"], client=client,
                         detail={"session_id": str(row["family_id"])})
            reused = row
        else:
            admin = await q.get_admin_for_login(conn, row["admin_id"])
            if admin is None or admin["status"] != "active":
                raise InvalidRefreshToken()
            if not await q.rotate_refresh_token(conn, row["id"]):
                raise RefreshTokenSuperseded()  # rotated meanwhile (the row lock prevents it)
            refresh = await _new_refresh(conn, svc, tenant_id=tenant_id,
                                         session_id=row["family_id"], parent_id=row["id"],
                                         client=client)
    if reused is not None:  # raised after the commit so the revocation stands
        raise RefreshTokenReused()
    return _issue(svc, admin_id=row["admin_id"], tenant_id=tenant_id, role=admin["role"],
                  session_id=row["family_id"], refresh=refresh,
                  valid_after_us=admin["valid_after_us"])


async def end_session(conn: Any, svc: AuthServices, *, tenant_id: uuid.UUID,
                      admin_id: uuid.UUID, session_id: uuid.UUID, jti: str | None,
                      exp: int | None, client: Client) -> None:
    """Logout: revoke the session's family (its access tokens with it, in every process) and
    deny the access token's jti until it expires."""
    q = tq(svc.settings.sql_dir)
    async with conn.transaction():
        live = await q.revoke_session(conn, session_id, admin_id, "logout")
        if jti is not None and exp is not None:
            await q.deny_jti(conn, jti, float(exp))
        await svc.revocations.session(tenant_id, session_id)
        if live:
            await record(conn, svc.settings, "auth.logout", tenant_id=tenant_id,
                         admin_id=admin_id, client=client,
                         detail={"session_id": str(session_id)})


async def logout(svc: AuthServices, lease: Leaser, *, access: tuple[str, bool] | None,
                 refresh: tuple[str, bool] | None, csrf: tuple[str | None, str | None],
                 client: Client) -> None:
    """End the session named by a valid access token, else by a refresh token; a no-op for
    tokens that name nothing. Each token is (value, came as a cookie): cookie-borne ones need
    the CSRF token of that session."""
    claims = None
    if access is not None:
        try:
            claims = svc.tokens.verify_access(access[0])
        except InvalidToken:
            claims = None
    parsed = parse_opaque(REFRESH_PREFIX, refresh[0]) if refresh else None
    tid = claims.tenant_id if claims else parsed[0] if parsed else None
    if tid is None:
        return
    try:
        async with lease(tid) as conn:
            if claims is not None:
                session: tuple[uuid.UUID, uuid.UUID] | None = (claims.admin_id,
                                                               claims.session_id)
                by_cookie = access is not None and access[1]
            else:
                assert parsed is not None and refresh is not None
                session = await _session_of_refresh(conn, svc, parsed[1])
                by_cookie = refresh[1]
            if session is None:
                return
            if by_cookie and not csrf_ok(svc.csrf_key, session[1], *csrf):
                raise CsrfFailed()
            await end_session(conn, svc, tenant_id=tid, admin_id=session[0],
                              session_id=session[1], jti=claims.jti if claims else None,
                              exp=claims.exp if claims else None, client=client)
    except (TenantNotFound, TenantSuspended):
        return  # nothing to end


async def _session_of_refresh(conn: Any, svc: AuthServices,
                              digest: bytes) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(admin id, session id) a refresh token belongs to."""
    async with conn.transaction():
        row = await tq(svc.settings.sql_dir).lock_refresh_token(conn, digest)
    return None if row is None else (row["admin_id"], row["family_id"])
