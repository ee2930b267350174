"""Fixtures of the Planning Center tests: the simulator in-process, the app on a known port
(the simulator's webhooks and OAuth redirects must reach it), and helpers that connect a
church through the real OAuth round trip and wait for its sync.

Import into a test module with `from tests.integration.pco_fixtures import *`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from tests.integration.auth_fixtures import Church, Client, build_app, register
from ywmessaging.config import Settings
from ywmessaging.integrations.pco_sim import RunningPcoSim, start_pco_sim

__all__ = ["PCO", "connect", "make_pco_app", "pco_app", "pco_sim", "sim_call", "synced", "wait_for"]

PCO = "/api/v1/integrations/planning-center"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def pco_sim() -> AsyncIterator[RunningPcoSim]:
    """A Planning Center simulator on a free loopback port."""
    sim = await start_pco_sim()
    yield sim
    await sim.stop()


@pytest.fixture
def make_pco_app(aiohttp_client: Any, registry_conn: Any, api_settings: Settings,
                 pco_sim: RunningPcoSim) -> Callable[..., Awaitable[Client]]:
    """Start the app on a free port, talking to the simulator (redirects and webhooks to
    it), with some settings changed."""

    async def make(**changes: Any) -> Client:
        port = _free_port()
        here = f"http://127.0.0.1:{port}"
        s = api_settings.with_(pco_api_base=pco_sim.base_url,
                               pco_redirect_url=f"{here}{PCO}/callback",
                               pco_webhook_url=f"{here}/webhooks/planning-center", **changes)
        await registry_conn.execute("DELETE FROM login_throttle")
        client: Client = await aiohttp_client(build_app(s), server_kwargs={"port": port})
        return client

    return make


@pytest.fixture
async def pco_app(make_pco_app: Callable[..., Awaitable[Client]]) -> Client:
    """The app, talking to the simulator."""
    return await make_pco_app()


async def sim_call(sim: RunningPcoSim, method: str, path: str, body: Any = None,
                   expect: int | None = None) -> Any:
    """A `/sim/*` (or any) call on the simulator; its JSON answer."""
    async with aiohttp.ClientSession() as http, http.request(
            method, f"{sim.base_url}{path}", json=body) as resp:
        if expect is not None:
            assert resp.status == expect, await resp.text()
        return await resp.json(content_type=None) if resp.status != 204 else None


async def wait_for(check: Any, timeout: float = 20.0) -> Any:
    """Poll an async `check` until it returns something truthy."""
    async with asyncio.timeout(timeout):
        while True:
            got = await check()
            if got:
                return got
            await asyncio.sleep(0.05)


async def synced(church: Church, *, after: str | None = None, timeout: float = 30.0
                 ) -> dict[str, Any]:
    """Wait until the latest run (other than `after`) has ended; the status."""
    async def check() -> dict[str, Any] | None:
        doc: dict[str, Any] = await (await church.client.get(PCO, headers=church.auth)).json()
        run = doc["last_run"]
        if run and run["id"] != after and run["status"] in ("done", "failed"):
            return doc
        return None

    result: dict[str, Any] = await wait_for(check, timeout)
    return result


async def connect(client: Client, sim: RunningPcoSim) -> tuple[Church, dict[str, Any]]:
    """Sign a church up and connect it through the whole OAuth round trip; its status after
    the first sync."""
    church = await register(client)
    resp = await client.post(f"{PCO}/connect", headers=church.auth)
    assert resp.status == 200, await resp.text()
    url = (await resp.json())["authorization_url"]
    assert url.startswith(f"{sim.base_url}/oauth/authorize?")
    async with aiohttp.ClientSession() as http, http.get(url, allow_redirects=False) as back:
        assert back.status == 302, await back.text()
        location = back.headers["Location"]
    parts = urlsplit(location)
    assert parts.path == f"{PCO}/callback"
    resp = await client.get(f"{parts.path}?{parts.query}", allow_redirects=False)
    assert resp.status == 302, await resp.text()
    landed = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert landed["planning_center"] == ["connected"], landed
    return church, await synced(church)
