"""CORS for configured origins, security headers, and the per-request time limit, on the
assembled application against the session's registry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import Client, problem, register
from ywmessaging.commands.dev import dev_cors
from ywmessaging.config import Settings
from ywmessaging.cors import ALLOW_HEADERS, parse_origins
from ywmessaging.errors import ConfigError
from ywmessaging.time_limits import IMPORT, UNLIMITED, time_limit

FRONTEND = "http://localhost:5173"
OTHER = "https://evil.example"
LOGIN = "/api/v1/auth/login"


def preflight(origin: str, method: str = "POST",
              headers: str = "content-type, x-csrf-token") -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers}


@pytest.fixture
async def cors_client(make_api_client: Any, api_settings: Settings) -> Client:
    client: Client = await make_api_client(api_settings.with_(
        cors_origins=f"{FRONTEND}, https://app.example.org:443/", hsts_seconds=86_400))
    return client


async def test_preflight_for_a_configured_origin_is_answered(cors_client: Client) -> None:
    resp = await cors_client.options(LOGIN, headers=preflight(FRONTEND))
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "x-csrf-token", "x-request-id"} <= allowed
    assert "Origin" in resp.headers.getall("Vary")
    assert resp.headers["X-Request-ID"]
    # a default port is written the way browsers write the Origin header
    other = await cors_client.options("/api/v1/members",
                                      headers=preflight("https://app.example.org", "GET"))
    assert other.status == 204
    assert other.headers["Access-Control-Allow-Origin"] == "https://app.example.org"


async def test_preflight_from_an_unknown_origin_is_refused_unreflected(
        cors_client: Client) -> None:
    resp = await cors_client.options(LOGIN, headers=preflight(OTHER))
    await problem(resp, 403, "origin_not_allowed")
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert "Access-Control-Allow-Credentials" not in resp.headers


async def test_answers_carry_cors_headers_for_configured_origins_only(
        cors_client: Client) -> None:
    church = await register(cors_client)
    resp = await cors_client.get("/api/v1/church", headers={**church.auth, "Origin": FRONTEND})
    assert resp.status == 200
    assert resp.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    exposed = {h.strip() for h in resp.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"X-Request-ID", "Retry-After"} <= exposed
    assert "Origin" in resp.headers.getall("Vary")
    # a problem answer is readable by the page too (the frontend shows its `code`)
    bad = await cors_client.post(LOGIN, json={"email": "x@example.org", "password": "wrong"},
                                 headers={"Origin": FRONTEND})
    assert bad.status == 401
    assert bad.headers["Access-Control-Allow-Origin"] == FRONTEND
    foreign = await cors_client.get("/api/v1/church", headers={**church.auth, "Origin": OTHER})
    assert foreign.status == 200   # not a browser question: the token decides
    assert "Access-Control-Allow-Origin" not in foreign.headers
    assert "Access-Control-Allow-Credentials" not in foreign.headers


async def test_without_origins_there_is_no_cors(api_client: Client) -> None:
    resp = await api_client.options(LOGIN, headers=preflight(FRONTEND))
    assert resp.status == 405
    assert "Access-Control-Allow-Origin" not in resp.headers
    ok = await api_client.get("/healthz", headers={"Origin": FRONTEND})
    assert "Access-Control-Allow-Origin" not in ok.headers
    assert "Strict-Transport-Security" not in ok.headers   # HSTS only when configured


async def test_every_answer_has_the_security_headers(cors_client: Client) -> None:
    church = await register(cors_client)
    answers = [
        await cors_client.get("/healthz"),
        await cors_client.get("/nowhere"),                    # 404 problem
        await cors_client.get("/api/v1/church"),              # 401 problem
        await cors_client.get("/api/v1/members/export", headers=church.auth),  # streamed
    ]
    for resp in answers:
        await resp.read()
        assert resp.headers["X-Content-Type-Options"] == "nosniff", resp.url
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        assert resp.headers["Strict-Transport-Security"] == "max-age=86400"
    assert [r.status for r in answers] == [200, 404, 401, 200]


def test_origins_are_parsed_strictly() -> None:
    assert parse_origins(" http://localhost:5173/ ,HTTPS://App.Example.org:443") == (
        "http://localhost:5173", "https://app.example.org")
    for bad in ("*", "localhost:5173", "https://app.example.org/path", "ftp://x.org",
                "https://user@x.org", "https://x.org?q=1"):
        with pytest.raises(ValueError):
            parse_origins(bad)
        with pytest.raises(ConfigError):
            Settings.from_env({"YWM_CORS_ORIGINS": bad})
    assert "X-CSRF-Token" in ALLOW_HEADERS   # the cookie mode's header (auth/cookies.py)


def test_dev_lets_the_frontend_origin_call_the_api() -> None:
    s = dev_cors(Settings(frontend_url="http://localhost:5173/app/"))
    assert s.cors_origins == "http://localhost:5173"
    both = dev_cors(Settings(cors_origins="https://app.example.org",
                             frontend_url="http://localhost:3000"))
    assert both.cors_origins == "https://app.example.org,http://localhost:3000"
    assert dev_cors(both) == both


# --- the per-request time limit ---

async def _sleep(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("s", "1")))
    return web.json_response({"slept": True})


@time_limit(IMPORT)
async def _slow_import(request: web.Request) -> web.Response:
    return await _sleep(request)


@time_limit(UNLIMITED)
async def _stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    for _ in range(4):
        await asyncio.sleep(0.1)
        await response.write(b"row\n")
    await response.write_eof()
    return response


async def _own_timeout(request: web.Request) -> web.Response:
    async with asyncio.timeout(0.01):
        await asyncio.sleep(1)
    return web.Response()


def _slow_routes(app: web.Application) -> None:
    app.router.add_get("/test/sleep", _sleep)
    app.router.add_get("/test/import", _slow_import)
    app.router.add_get("/test/stream", _stream)
    app.router.add_get("/test/own-timeout", _own_timeout)


@pytest.fixture
async def timed_client(aiohttp_client: Any, api_settings: Settings) -> Client:
    from ywmessaging import app as app_module

    s = api_settings.with_(request_timeout=0.5, import_timeout=2.5)
    app = app_module.create_app(s)
    _slow_routes(app)
    client: Client = await aiohttp_client(app)
    return client


async def test_a_request_past_its_time_limit_gets_504(timed_client: Client) -> None:
    body = await problem(await timed_client.get("/test/sleep?s=2"), 504, "request_timeout")
    assert body["request_id"]
    assert (await timed_client.get("/test/sleep?s=0.01")).status == 200
    # a wait of the handler's own that times out is not the request's limit: like any bounded
    # wait that ran out (db/faults.py) it is a 503 to retry, never a 504
    resp = await timed_client.get("/test/own-timeout")
    await problem(resp, 503, "database_unavailable")
    assert resp.headers["Retry-After"]


async def test_imports_get_longer_and_streams_no_limit(timed_client: Client) -> None:
    resp = await timed_client.get("/test/import?s=1")
    assert resp.status == 200, await resp.text()
    await problem(await timed_client.get("/test/import?s=4"), 504, "request_timeout")
    streamed = await timed_client.get("/test/stream")
    assert streamed.status == 200 and await streamed.read() == b"row\n" * 4


async def _slow_body(parts: list[bytes], pause: float) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
        await asyncio.sleep(pause)


async def test_the_member_import_route_has_the_import_limit(
        make_api_client: Callable[..., Any], api_client: Client, api_settings: Settings) -> None:
    church = await register(api_client)   # sign-up hashes a password: not under a short limit
    client: Client = await make_api_client(api_settings.with_(request_timeout=0.5,
                                                              import_timeout=20.0))
    boundary = "ywmtestboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"m.csv\"\r\nContent-Type: text/csv\r\n\r\n").encode()
    rows = [b"first_name,last_name,phone\r\n", b"Ann,Lee,+12025550173\r\n",
            b"Bo,Kim,+12025550174\r\n"]
    parts = [head, *rows, f"\r\n--{boundary}--\r\n".encode()]
    headers = {**church.auth, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    # a slow upload (about a second) passes on the import route ...
    resp = await client.post("/api/v1/members/import", headers=headers,
                             data=_slow_body(parts, 0.3))
    assert resp.status in (200, 202), await resp.text()
    # ... while the same pace on an ordinary route is cut off
    slow_json = [b'{"first_name": "Cy", ', b'"last_name": "Ode", ', b'"phone": "+12025550175"}']
    await problem(await client.post("/api/v1/members", data=_slow_body(slow_json, 0.4),
                                    headers={**church.auth,
                                             "Content-Type": "application/json"}),
                  504, "request_timeout")

