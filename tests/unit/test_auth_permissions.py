"""The permission table and the route markers."""

from __future__ import annotations

from typing import Any

from ywmessaging.auth.permissions import (
    ADMIN,
    OWNER,
    OWNER_ONLY,
    PUBLIC,
    Permission,
    allowed,
    public,
    requires,
    route_permission,
)


def test_owner_holds_everything_admin_all_but_owner_only() -> None:
    for perm in Permission:
        assert allowed(OWNER, perm)
        assert allowed(ADMIN, perm) == (perm not in OWNER_ONLY)
    assert not allowed(ADMIN, Permission.ADMINS_MANAGE)
    assert allowed(ADMIN, Permission.ADMINS_READ)


def test_unknown_role_holds_nothing() -> None:
    assert not any(allowed("superuser", perm) for perm in Permission)
    assert not allowed("", Permission.SELF)


def test_markers() -> None:
    async def a() -> None: ...
    async def b() -> None: ...
    async def c() -> None: ...

    assert route_permission(requires(Permission.MEMBERS_READ)(a)) is Permission.MEMBERS_READ
    assert route_permission(public(b)) == PUBLIC
    assert route_permission(c) is None


async def test_unmarked_route_is_refused_marked_public_passes(aiohttp_client: Any) -> None:
    from aiohttp import web

    from ywmessaging.auth.middleware import authenticate_middleware
    from ywmessaging.middlewares import error_middleware

    async def unmarked(request: web.Request) -> web.Response:
        return web.Response(text="should not run")

    @public
    async def open_door(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(middlewares=[error_middleware, authenticate_middleware()])
    app.router.add_get("/unmarked", unmarked)
    app.router.add_get("/open", open_door)
    client = await aiohttp_client(app)
    resp = await client.get("/unmarked")
    assert resp.status == 403 and (await resp.json(content_type=None))["code"] == "forbidden"
    assert (await client.get("/open")).status == 200
    assert (await client.get("/missing")).status == 404
