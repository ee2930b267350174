"""Auth benchmark: login latency against a bare argon2id verification, and the cost of auth +
tenant lease on a trivial route against the same route without auth, in one run.

The app runs with its core and auth's plug-in on a loopback port, plus two routes behind
`/api/v1`'s middlewares with one handler that answers `{"ok": true}` without touching a
database: `/bench/open` (public: no token, no lease) and `/bench/authed` (Bearer token
verified from the process's cache, checked against the pushed deny-list, tenant lease taken;
no database statement). Rounds of the two alternate so both see the same background load.

    .venv/bin/python -m benchmarks.auth_overhead [--quick]
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from ywmessaging import app as app_module
from ywmessaging.auth.passwords import Passwords
from ywmessaging.auth.permissions import Permission, public, requires
from ywmessaging.routes import api_v1_middlewares

from .common import deployment, percentile, progress, quick_main, target_line

PASSWORD = "benchmark passphrase 42"
# The authenticated route does real work the open one does not: a JWT verification (cached per
# token), the deny-list check (revocations are pushed, so no query) and a tenant lease (no
# reset round trip on release). The open route does nothing at all, so
# their throughput ratio is printed but is no target; the capacity target is the loop time per
# authenticated request with 16 in flight (client and server share one process and one core).
GOALS = {"login_p50_ms": 250.0, "login_vs_argon2": 1.5, "auth_overhead_p50_ms": 2.0,
         "authed_ms_per_request_16": 2.0}


async def _ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def bench_app() -> web.Application:
    """The two benchmark routes (one handler, two markers) behind `/api/v1`'s middlewares."""

    async def authed(request: web.Request) -> web.Response:
        return await _ok(request)

    async def opened(request: web.Request) -> web.Response:
        return await _ok(request)

    bench = web.Application(middlewares=api_v1_middlewares())
    bench.router.add_get("/authed", requires(Permission.SELF)(authed))
    bench.router.add_get("/open", public(opened))
    return bench


async def _timed(n: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await call()
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def _rps(total: int, concurrency: int, call: Callable[[], Awaitable[Any]]) -> float:
    left = total

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await call()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - t0)


async def run(quick: bool) -> list[str]:
    """Measure everything; the TARGET lines."""
    logins, pings, rounds = (20, 300, 4) if quick else (100, 2000, 8)
    async with deployment() as dep:
        from ywmessaging.auth.plugins import auth_services

        app = app_module.create_app(dep.settings.with_(log_level="warning"), (auth_services,))
        app.add_subapp("/bench", bench_app())
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        base = f"http://127.0.0.1:{server.port}/api/v1"
        try:
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=32)
            ) as http:
                return await _measure(http, base, logins, pings, rounds)
        finally:
            await server.close()


async def _post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> Any:
    async with http.post(url, json=body) as resp:
        data = await resp.json()
        assert resp.status in (200, 201), data
        return data


async def _measure(http: aiohttp.ClientSession, base: str, logins: int, pings: int,
                   rounds: int) -> list[str]:
    email = f"bench-{secrets.token_hex(4)}@example.org"
    progress("signing a church up")
    await _post(http, f"{base}/auth/register", {
        "church_name": "Benchmark Church", "email": email, "password": PASSWORD,
        "first_name": "B", "last_name": "M"})

    # --- login vs a bare argon2id verification (same parameters, same process) -------------
    hasher = Passwords(os.cpu_count() or 1)
    stored = await hasher.hash(PASSWORD)
    login_ms: list[float] = []
    argon_ms: list[float] = []
    progress(f"{logins} logins, interleaved with {logins} bare argon2id verifications")
    for _ in range(logins):
        login_ms += await _timed(1, lambda: _post(http, f"{base}/auth/login",
                                                  {"email": email, "password": PASSWORD}))
        argon_ms += await _timed(1, lambda: hasher.verify(stored, PASSWORD))
    token = (await _post(http, f"{base}/auth/login",
                         {"email": email, "password": PASSWORD}))["access_token"]
    login_rps = await _rps(logins, 8, lambda: _post(http, f"{base}/auth/login",
                                                    {"email": email, "password": PASSWORD}))

    # --- the same trivial handler with and without auth + lease ------------------------------
    headers = {"Authorization": f"Bearer {token}"}

    async def get(path: str, h: dict[str, str] | None = None) -> None:
        async with http.get(f"{base.removesuffix('/api/v1')}{path}", headers=h) as resp:
            assert resp.status == 200, await resp.text()
            await resp.read()

    await _timed(50, lambda: get("/bench/authed", headers))  # warm the tenant pool
    open_ms: list[float] = []
    authed_ms: list[float] = []
    progress(f"{rounds} alternating rounds of {pings // rounds} serial requests per route")
    for _ in range(rounds):
        open_ms += await _timed(pings // rounds, lambda: get("/bench/open"))
        authed_ms += await _timed(pings // rounds, lambda: get("/bench/authed", headers))
    progress("throughput, 16 requests in flight")
    open_rps = await _rps(pings, 16, lambda: get("/bench/open"))
    authed_rps = await _rps(pings, 16, lambda: get("/bench/authed", headers))

    p = percentile
    overhead = p(authed_ms, 50) - p(open_ms, 50)
    print(f"login (serial): p50 {p(login_ms, 50):.1f} ms, p95 {p(login_ms, 95):.1f} ms; "
          f"bare argon2id verify p50 {p(argon_ms, 50):.1f} ms; "
          f"ratio {p(login_ms, 50) / p(argon_ms, 50):.2f}")
    print(f"login (8 in flight, {os.cpu_count()} CPUs): {login_rps:.1f} logins/s")
    print(f"trivial route, serial: open p50 {p(open_ms, 50):.2f} ms p95 {p(open_ms, 95):.2f}; "
          f"auth+lease p50 {p(authed_ms, 50):.2f} ms p95 {p(authed_ms, 95):.2f}; "
          f"overhead p50 {overhead:.2f} ms")
    print(f"trivial route, 16 in flight: open {open_rps:.0f} req/s, auth+lease "
          f"{authed_rps:.0f} req/s, ratio {open_rps / authed_rps:.2f}")
    return [
        target_line("login_p50_ms", p(login_ms, 50), GOALS["login_p50_ms"]),
        target_line("login_p50_vs_argon2_verify", p(login_ms, 50) / p(argon_ms, 50),
                    GOALS["login_vs_argon2"]),
        target_line("auth_lease_overhead_p50_ms", overhead, GOALS["auth_overhead_p50_ms"]),
        target_line("authed_ms_per_request_16_in_flight", 1000 / authed_rps,
                    GOALS["authed_ms_per_request_16"]),
    ]


def main() -> None:
    """Parse arguments, run, print the TARGET lines."""
    quick_main(__doc__, run)


if __name__ == "__main__":
    main()
