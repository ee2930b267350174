"""The plain baseline server of `benchmarks/http_route.py`: aiohttp + asyncpg, written here.

`GET /api/v1/members?limit=N` as a competent engineer would write it without the service's
machinery: the Bearer token verified with pyjwt (HS256, the service's own access key, issuer and
audience), the tenant taken from its `tid` claim, one asyncpg pool per tenant (min 0, max 2,
asyncpg's defaults otherwise) under an LRU of 50 whose evicted pools are closed, the tenant's own
role and password, and a page of members with the columns the service's `list_members_name_asc`
returns (id, names, phone, email, branch, consent state and times, group ids), turned into JSON
with orjson, with the same `next_cursor` shape. Nothing of the service's request path is
imported: the parent reads the tenants' connection details and the signing key once and hands
them over in a JSON file.

    python -m benchmarks.http_route_plain CONFIG.json

Errors answer 401 (token) or 503 (database: `too_many_clients` for SQLSTATE 53300, else
`database_error`); `GET /stats` gives the error counts, `GET /healthz` says it is up.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import sys
from typing import Any

import asyncpg
import jwt
import orjson
from aiohttp import web

PAGE_SQL = """
SELECT m.id, m.first_name, m.last_name, m.phone, m.email, m.branch_id, m.opt_in,
       m.opt_in_changed_at, m.created_at, m.updated_at,
       ARRAY(SELECT gm.group_id FROM group_members gm WHERE gm.member_id = m.id
             ORDER BY gm.group_id) AS group_ids
FROM members m
ORDER BY m.last_name, m.first_name, m.id
LIMIT $1
"""
REQUIRED = ["exp", "iat", "iss", "aud", "sub", "tid", "typ"]
JSON = "application/json"


class Pools:
    """One lazily opened asyncpg pool per tenant, the `cap` most recently used kept."""

    def __init__(self, tenants: dict[str, dict[str, Any]], cap: int, pool_max: int) -> None:
        self.tenants, self.cap, self.pool_max = tenants, cap, pool_max
        self.lru: collections.OrderedDict[str, asyncio.Task[Any]] = collections.OrderedDict()
        self.closing: set[asyncio.Task[None]] = set()

    async def get(self, tid: str) -> Any:
        """The tenant's pool; a miss makes one and closes the least recently used past cap."""
        task = self.lru.get(tid)
        if task is not None:
            self.lru.move_to_end(tid)
        else:
            kw = self.tenants[tid]
            task = asyncio.ensure_future(asyncpg.create_pool(
                **kw, min_size=0, max_size=self.pool_max))
            self.lru[tid] = task
            while len(self.lru) > self.cap:
                _, old = self.lru.popitem(last=False)
                closer = asyncio.ensure_future(self._close(old))
                self.closing.add(closer)
                closer.add_done_callback(self.closing.discard)
        return await task

    @staticmethod
    async def _close(task: asyncio.Task[Any]) -> None:
        try:
            pool = await task
            await pool.close()  # waits for connections in use to come back
        except Exception:  # a pool that never opened has nothing to close
            pass

    async def close_all(self) -> None:
        """Close every pool (shutdown)."""
        await asyncio.gather(*(self._close(t) for t in self.lru.values()), *self.closing)


def make_app(config: dict[str, Any]) -> web.Application:
    """The baseline application."""
    secret = bytes.fromhex(config["key_hex"])
    issuer, audience = config["issuer"], config["audience"]
    pools = Pools(config["tenants"], config["lru"], config["pool_max"])
    errors: collections.Counter[str] = collections.Counter()

    def problem(status: int, code: str) -> web.Response:
        errors[code] += 1
        return web.Response(status=status, body=orjson.dumps({"code": code}), content_type=JSON)

    async def members(request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        try:
            claims = jwt.decode(header[7:], secret, algorithms=["HS256"], audience=audience,
                                issuer=issuer, options={"require": REQUIRED})
            if claims["typ"] != "access" or claims["tid"] not in pools.tenants:
                raise jwt.InvalidTokenError
        except jwt.PyJWTError:
            return problem(401, "invalid_token")
        raw = request.query.get("limit", "50")
        limit = int(raw) if raw.isdigit() else 0
        if not 1 <= limit <= 200:
            return problem(422, "invalid_limit")
        try:
            pool = await pools.get(claims["tid"])
            rows = await pool.fetch(PAGE_SQL, limit + 1)
        except asyncpg.TooManyConnectionsError:
            return problem(503, "too_many_clients")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            return problem(503, "database_error")
        items = [{
            "id": str(r[0]), "first_name": r[1], "last_name": r[2], "phone": r[3],
            "email": r[4], "branch_id": str(r[5]) if r[5] is not None else None,
            "opt_in": r[6], "opt_in_changed_at": r[7], "created_at": r[8], "updated_at": r[9],
            "group_ids": [str(g) for g in r[10]],
        } for r in rows[:limit]]
        cursor = None
        if len(rows) > limit:
            last = items[-1]
            key = orjson.dumps({"k": "members:name:asc",
                                "v": [last["last_name"], last["first_name"], last["id"]]})
            cursor = base64.urlsafe_b64encode(key).rstrip(b"=").decode("ascii")
        return web.Response(body=orjson.dumps({"items": items, "next_cursor": cursor}),
                            content_type=JSON)

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(body=b'{"status":"ok"}', content_type=JSON)

    async def stats(request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps({"errors": dict(errors), "pools": len(pools.lru)}),
                            content_type=JSON)

    async def close_pools(app: web.Application) -> None:
        await pools.close_all()

    app = web.Application()
    app.router.add_get("/api/v1/members", members)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/stats", stats)
    app.on_cleanup.append(close_pools)
    return app


def main() -> None:
    """Serve until SIGTERM, on uvloop as `ywm serve` does."""
    with open(sys.argv[1]) as f:
        config = json.load(f)
    try:
        import uvloop
        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        loop = asyncio.new_event_loop()
    web.run_app(make_app(config), host="127.0.0.1", port=config["port"], loop=loop,
                access_log=None, print=None, shutdown_timeout=5)


if __name__ == "__main__":
    main()
