"""The `/api/v1` auth middleware, before the tenant lease.

`authenticate` reads the route's permission marker (no marker: refused), verifies the access
JWT (Bearer header first, else the access cookie plus the CSRF check on writes), refuses it if
the deny-list says its session or its admin's older tokens were revoked (revocations.py: pushed
to every process, so no database is asked), applies the permission table to the token's role
and sets the tenant id from the verified `tid` claim: the only way a request chooses its
database. A role change revokes the admin's older tokens, so the role a token carries is the
admin's current one. A warm request therefore sends nothing to a database but its own statement.
"""

from __future__ import annotations

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ..errors import Forbidden
from ..tenants.keys import TENANT_ID
from .cookies import ACCESS_COOKIE, CSRF_COOKIE, CSRF_HEADER, SAFE_METHODS, csrf_ok
from .errors import CsrfFailed, InvalidToken, NotAuthenticated
from .permissions import PUBLIC, Permission, allowed, route_permission
from .state import PRINCIPAL, Principal, services

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
        if svc.revocations.check(claims):
            raise InvalidToken()
        if via_cookie and request.method not in SAFE_METHODS and not csrf_ok(
            svc.csrf_key, claims.session_id, request.cookies.get(CSRF_COOKIE),
            request.headers.get(CSRF_HEADER),
        ):
            raise CsrfFailed()
        if not isinstance(need, Permission) or not allowed(claims.role, need):
            raise Forbidden(f"your role ({claims.role}) cannot do this")
        request[PRINCIPAL] = Principal(
            admin_id=claims.admin_id, tenant_id=claims.tenant_id, role=claims.role,
            session_id=claims.session_id, jti=claims.jti, iat=claims.iat, exp=claims.exp,
            via_cookie=via_cookie, valid_after_us=claims.valid_after_us,
        )
        request[TENANT_ID] = claims.tenant_id
        with structlog.contextvars.bound_contextvars(tenant_id=str(claims.tenant_id),
                                                     admin_id=str(claims.admin_id)):
            return await handler(request)

    return authenticate
