"""The assembled application against the session's real registry."""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from ywmessaging import keys
from ywmessaging.app import create_app
from ywmessaging.config import REPO_ROOT, Settings
from ywmessaging.db.queries import QueryError

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


@pytest.fixture
async def client(aiohttp_client: MakeClient, settings: Settings) -> Client:
    return await aiohttp_client(create_app(settings))


def _sql_copy(settings: Settings, tmp_path: Path) -> Path:
    sql = tmp_path / "sql"
    shutil.copytree(settings.sql_dir, sql)
    return sql


async def _not_ready(resp: Any) -> dict[str, Any]:
    assert resp.status == 503
    assert resp.headers["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = await resp.json(content_type=None)
    assert body["code"] == "not_ready"
    return body


async def test_healthz(client: Client) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json"
    assert await resp.json() == {"status": "ok"}


async def test_readyz_when_registry_current(client: Client) -> None:
    resp = await client.get("/readyz")
    assert resp.status == 200
    assert await resp.json() == {
        "status": "ready", "checks": {"registry": "ok", "schema": "ok", "draining": "ok"},
    }


async def test_readyz_503_once_shutdown_starts(client: Client) -> None:
    assert (await client.get("/readyz")).status == 200
    await client.app.shutdown()  # runs on_shutdown, as SIGTERM does
    assert client.app[keys.DRAINING].is_set()
    body = await _not_ready(await client.get("/readyz"))
    assert body["checks"] == {"registry": "ok", "schema": "ok", "draining": "draining"}
    assert (await client.get("/healthz")).status == 200


async def test_readyz_503_when_registry_schema_behind(
    aiohttp_client: MakeClient, settings: Settings, tmp_path: Path
) -> None:
    sql = _sql_copy(settings, tmp_path)
    (sql / "registry" / "migrations" / "0999_add_future_thing.sql").write_text("SELECT 1;\n")
    client = await aiohttp_client(create_app(settings.with_(sql_dir=sql)))
    body = await _not_ready(await client.get("/readyz"))
    assert body["checks"] == {"registry": "ok", "schema": "outdated", "draining": "ok"}
    assert "999" in body["detail"]


async def test_readyz_503_when_registry_unreachable(
    aiohttp_client: MakeClient, settings: Settings
) -> None:
    dead = settings.with_(database_url="postgresql://postgres@127.0.0.1:1/nowhere")
    client = await aiohttp_client(create_app(dead))
    assert (await client.get("/healthz")).status == 200
    body = await _not_ready(await client.get("/readyz"))
    assert body["checks"]["registry"] in ("unreachable", "timeout")
    assert body["checks"]["schema"] == "unknown"


async def test_unknown_route_and_api_prefix_are_404_problems(client: Client) -> None:
    for path in ("/nope", "/api/v1/nope"):
        resp = await client.get(path)
        assert resp.status == 404
        assert resp.headers["Content-Type"] == "application/problem+json"
        assert (await resp.json(content_type=None))["code"] == "not_found"


async def test_wrong_method_is_405_with_allow(client: Client) -> None:
    resp = await client.post("/healthz", data=b"{}")
    assert resp.status == 405
    assert (await resp.json(content_type=None))["code"] == "method_not_allowed"
    assert "GET" in resp.headers["Allow"]


async def test_oversize_body_is_413(aiohttp_client: MakeClient, settings: Settings) -> None:
    app = create_app(settings.with_(max_body_bytes=1024))

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    app.router.add_post("/test-only/echo", echo)
    client = await aiohttp_client(app)
    assert (await client.post("/test-only/echo", data=b"x" * 1024)).status == 200
    resp = await client.post("/test-only/echo", data=b"x" * 1025)
    assert resp.status == 413
    assert (await resp.json(content_type=None))["code"] == "payload_too_large"


async def test_request_id_echoed_and_generated(client: Client) -> None:
    resp = await client.get("/healthz", headers={"X-Request-ID": "lb-7f3a"})
    assert resp.headers["X-Request-ID"] == "lb-7f3a"
    made = (await client.get("/healthz")).headers["X-Request-ID"]
    assert len(made) == 32


async def test_metrics_label_routes_by_template(client: Client) -> None:
    await client.get("/healthz")
    await client.get("/api/v1/no-such-route/12345")
    member = "6f1e0c2a-3b4d-4e5f-8a9b-0c1d2e3f6789"   # a member's route takes UUIDs only
    await client.get(f"/api/v1/members/{member}")  # a templated route, refused without a token
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    text = await resp.text()
    assert 'ywm_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'route="unmatched",status="404"' in text
    assert "12345" not in text and member not in text
    assert 'route="/api/v1/members/{id}",status="401"' in text
    assert 'ywm_registry_pool_connections{state="max"} 10.0' in text
    assert 'ywm_registry_pool_connections{state="in_use"}' in text


async def test_openapi_served_as_yaml(client: Client) -> None:
    resp = await client.get("/openapi.yaml")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/yaml"
    assert await resp.read() == (REPO_ROOT / "openapi.yaml").read_bytes()


async def test_broken_query_file_stops_the_boot(
    aiohttp_client: MakeClient, settings: Settings, tmp_path: Path
) -> None:
    sql = _sql_copy(settings, tmp_path)
    (sql / "registry" / "queries" / "zz_broken.sql").write_text(
        "-- name: get_thing :sometimes\nSELECT 1;\n"
    )
    with pytest.raises(QueryError, match=r"zz_broken\.sql"):
        await aiohttp_client(create_app(settings.with_(sql_dir=sql)))


async def test_plug_ins_need_only_the_core(aiohttp_client: MakeClient, settings: Settings) -> None:
    """Each plug-in needs only the core, so any order starts (and stops) the application."""
    from ywmessaging.app import PLUGINS
    from ywmessaging.auth.state import AUTH
    from ywmessaging.church.keys import IMPORT_RUNNER
    from ywmessaging.events.keys import EVENTS
    from ywmessaging.messaging.keys import CARRIER, WEBHOOKS

    client = await aiohttp_client(create_app(settings, tuple(reversed(PLUGINS))))
    assert (await client.get("/readyz")).status == 200
    assert all(key in client.app for key in (AUTH, IMPORT_RUNNER, CARRIER, WEBHOOKS, EVENTS))
