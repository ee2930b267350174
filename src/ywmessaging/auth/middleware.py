"""The two `/api/v1` auth middlewares around the tenant lease.

Order: `authenticate` → `tenant_lease` (tenants/middleware.py) → `check_session` → handler.

- `authenticate` reads the route's permission marker (no marker: refused), verifies the access
  JWT (Bearer header first, else the access cookie plus the CSRF check on writes), and sets the
  tenant id from the verified `tid` claim: the only way a request chooses its database.
- `check_session`, on the leased connection, checks in one query that the admin is still
  active, the session (refresh family) is live, the jti is not denied and the token is not
  older than `tokens_valid_after` (give or take the clock leeway between app and database
  hosts: the family check is what revokes at once); then applies the permission table to the
  admin's *current* role.
"""

from __future__ import annotations

import dataclasses

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ..errors import Forbidden
from ..sqlq import tenant as tq
from ..tenants.keys import TENANT_ID
from ..tenants.middleware import tenant_conn
from .cookies import ACCESS_COOKIE, CSRF_COOKIE, CSRF_HEADER, SAFE_METHODS, csrf_ok
from .errors import CsrfFailed, InvalidToken, NotAuthenticated
from .permissions import PUBLIC, Permission, allowed, route_permission
from .state import PRINCIPAL, Principal, services
from .tokens import LEEWAY_S

log = structlog.get_logger("ywm.auth")


def _credentials(request: web.Request) -> tuple[str | None, bool]:
    """(token, came from the cookie)."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise InvalidToken()
        return token.strip(), False
    cookie = request.cookies.get(ACCESS_COOKIE)
    return (cookie, True) if cookie else (None, False)


def _permission(request: web.Request) -> Permission | str | None:
    if request.match_info.http_exception is not None:
        return PUBLIC  # 404/405: let the router's own answer through
    return route_permission(request.match_info.handler)


def authenticate_middleware() -> Middleware:
    """Verify the access token and choose the tenant from its `tid` claim."""

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        need = _permission(request)
        if need is None:
            log.error("route_without_permission", path=request.path)
            raise Forbidden("this route has no permission rule")
        if need == PUBLIC:
            return await handler(request)
        token, via_cookie = _credentials(request)
        if token is None:
            raise NotAuthenticated()
        svc = services(request)
        claims = svc.tokens.verify_access(token)
        if via_cookie and request.method not in SAFE_METHODS and not csrf_ok(
            svc.csrf_key, claims.session_id, request.cookies.get(CSRF_COOKIE),
            request.headers.get(CSRF_HEADER),
        ):
            raise CsrfFailed()
        request[PRINCIPAL] = Principal(
            admin_id=claims.admin_id, tenant_id=claims.tenant_id, role=claims.role,
            session_id=claims.session_id, jti=claims.jti, iat=claims.iat, exp=claims.exp,
            via_cookie=via_cookie,
        )
        request[TENANT_ID] = claims.tenant_id
        with structlog.contextvars.bound_contextvars(tenant_id=str(claims.tenant_id),
                                                     admin_id=str(claims.admin_id)):
            return await handler(request)

    return authenticate


def session_middleware() -> Middleware:
    """Check the session against the tenant database and apply the permission table."""

    @web.middleware
    async def check_session(request: web.Request, handler: Handler) -> web.StreamResponse:
        who = request.get(PRINCIPAL)
        if who is None:
            return await handler(request)
        svc = services(request)
        row = await tq(svc.settings.sql_dir).auth_session_state(
            tenant_conn(request), who.admin_id, who.session_id, who.jti
        )
        if (row is None or row["status"] != "active" or not row["session_live"]
                or row["jti_revoked"] or who.iat + LEEWAY_S < row["valid_after"]):
            raise InvalidToken()
        need = _permission(request)
        if not isinstance(need, Permission) or not allowed(row["role"], need):
            raise Forbidden(f"your role ({row['role']}) cannot do this")
        request[PRINCIPAL] = dataclasses.replace(who, role=row["role"])
        return await handler(request)

    return check_session
