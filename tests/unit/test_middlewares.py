"""Root middlewares on a bare application (no database): ids, problems, metrics, access log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

from ywmessaging.errors import Conflict
from ywmessaging.middlewares import root_middlewares
from ywmessaging.observability.metrics import Metrics

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]
LIMIT = 2048


async def _echo(request: web.Request) -> web.Response:
    return web.Response(body=await request.read())


async def _member(request: web.Request) -> web.Response:
    return web.Response(text=request.match_info["member_id"])


async def _boom(request: web.Request) -> web.Response:
    raise RuntimeError("secret internals: password=hunter2")


async def _conflict(request: web.Request) -> web.Response:
    raise Conflict("that phone number is taken", headers={"X-Hint": "1"}, field="phone")


async def _teapot(request: web.Request) -> web.Response:
    raise web.HTTPTooManyRequests(headers={"Retry-After": "3"})


async def _redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/elsewhere")


@pytest.fixture
def all_levels() -> Iterator[None]:
    """Let info events through whatever level an earlier app configured; restore after."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(0))
    yield
    structlog.configure(**saved)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
async def client(aiohttp_client: MakeClient, metrics: Metrics) -> Client:
    app = web.Application(client_max_size=LIMIT, middlewares=root_middlewares(metrics))
    app.router.add_post("/echo", _echo)
    app.router.add_get("/members/{member_id}", _member)
    app.router.add_get("/boom", _boom)
    app.router.add_get("/conflict", _conflict)
    app.router.add_get("/limited", _teapot)
    app.router.add_get("/redirect", _redirect)
    return await aiohttp_client(app)


async def _problem(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status == status
    assert resp.headers["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = await resp.json(content_type=None)
    assert body["code"] == code
    assert body["status"] == status
    assert body["type"].endswith("/" + code)
    assert body["request_id"] == resp.headers["X-Request-ID"]
    return body


async def test_request_id_is_echoed_when_sane(client: Client) -> None:
    resp = await client.get("/members/7", headers={"X-Request-ID": "abc.DEF-123_x"})
    assert resp.status == 200
    assert resp.headers["X-Request-ID"] == "abc.DEF-123_x"


@pytest.mark.parametrize("given", [None, "", "has space", "x" * 129, "semi;colon", "ü"])
async def test_request_id_is_made_when_missing_or_bad(client: Client, given: str | None) -> None:
    headers = {} if given is None else {"X-Request-ID": given}
    resp = await client.get("/members/7", headers=headers)
    rid = resp.headers["X-Request-ID"]
    assert rid != given
    assert len(rid) == 32 and int(rid, 16) >= 0


async def test_request_ids_differ(client: Client) -> None:
    a = (await client.get("/members/1")).headers["X-Request-ID"]
    b = (await client.get("/members/1")).headers["X-Request-ID"]
    assert a != b


async def test_unknown_route_is_404_problem(client: Client) -> None:
    body = await _problem(await client.get("/nope"), 404, "not_found")
    assert body["instance"] == "/nope"


async def test_wrong_method_is_405_problem_with_allow(client: Client) -> None:
    resp = await client.delete("/members/1")
    await _problem(resp, 405, "method_not_allowed")
    assert "GET" in resp.headers["Allow"]


async def test_oversize_body_is_413_problem(client: Client) -> None:
    assert (await client.post("/echo", data=b"x" * LIMIT)).status == 200
    await _problem(await client.post("/echo", data=b"x" * (LIMIT + 1)), 413, "payload_too_large")


@pytest.mark.usefixtures("all_levels")
async def test_unexpected_error_is_500_without_internals(client: Client) -> None:
    with capture_logs() as logs:
        resp = await client.get("/boom")
    body = await _problem(resp, 500, "internal_error")
    text = str(body)
    assert "secret internals" not in text and "hunter2" not in text and "RuntimeError" not in text
    errors = [e for e in logs if e["event"] == "unhandled_error"]
    assert len(errors) == 1
    assert errors[0]["exc_info"] is True
    assert errors[0]["route"] == "/boom"


async def test_app_error_renders_code_detail_extras_and_headers(client: Client) -> None:
    resp = await client.get("/conflict")
    body = await _problem(resp, 409, "conflict")
    assert body["detail"] == "that phone number is taken"
    assert body["field"] == "phone"
    assert resp.headers["X-Hint"] == "1"


async def test_other_http_errors_get_a_code_from_their_status(client: Client) -> None:
    resp = await client.get("/limited")
    await _problem(resp, 429, "too_many_requests")
    assert resp.headers["Retry-After"] == "3"


async def test_redirects_pass_through(client: Client) -> None:
    resp = await client.get("/redirect", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == "/elsewhere"


async def test_metrics_use_route_template_not_raw_path(client: Client, metrics: Metrics) -> None:
    await client.get("/members/123456")
    await client.get("/members/654321")
    await client.get("/no/such/path/42")
    await client.request("PROPFIND", "/members/1")
    text = metrics.render()[0].decode()
    assert (
        'ywm_http_requests_total{method="GET",route="/members/{member_id}",status="200"} 2.0'
        in text
    )
    assert 'route="unmatched",status="404"' in text
    assert 'method="other",route="unmatched",status="405"' in text
    assert "123456" not in text and "/no/such" not in text
    assert 'ywm_http_request_duration_seconds_count{method="GET",route="/members/{member_id}"}' \
        in text


@pytest.mark.usefixtures("all_levels")
async def test_access_log_line_per_request(client: Client) -> None:
    with capture_logs() as logs:
        await client.get("/members/99", headers={"X-Request-ID": "req-1"})
    lines = [e for e in logs if e["event"] == "http_request"]
    assert len(lines) == 1
    line = lines[0]
    assert line["method"] == "GET"
    assert line["route"] == "/members/{member_id}"
    assert line["status"] == 200
    assert line["duration_ms"] >= 0
