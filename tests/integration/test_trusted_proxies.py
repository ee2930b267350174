"""X-Forwarded-For is believed only from YWM_TRUSTED_PROXIES: login throttling then counts
the real client (an IPv6 client by its /64), and otherwise the peer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import Client
from ywmessaging.config import Settings


async def _fail_login(client: Client, forwarded_for: str) -> None:
    resp = await client.post("/api/v1/auth/login", headers={"X-Forwarded-For": forwarded_for},
                             json={"email": "nobody@example.org", "password": "wrong-password-1"})
    assert resp.status == 401, await resp.text()


async def _ip_keys(registry_conn: Any) -> set[str]:
    rows = await registry_conn.fetch("SELECT key FROM login_throttle WHERE key LIKE 'ip:%'")
    return {r["key"] for r in rows}


async def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(
        make_api_client: Callable[[Settings], Awaitable[Client]], api_settings: Settings,
        registry_conn: Any) -> None:
    client = await make_api_client(api_settings.with_(trusted_proxies="127.0.0.1"))
    await _fail_login(client, "203.0.113.7")
    await _fail_login(client, "6.6.6.6, 2001:db8:5:6::1")
    await _fail_login(client, "2001:db8:5:6::2")          # same /64: same counter
    assert await _ip_keys(registry_conn) == {"ip:203.0.113.7", "ip:2001:db8:5:6::/64"}
    counts = await registry_conn.fetchval(
        "SELECT failures FROM login_throttle WHERE key = 'ip:2001:db8:5:6::/64'")
    assert counts == 2


async def test_without_trusted_proxies_the_header_is_ignored(
        make_api_client: Callable[[Settings], Awaitable[Client]], api_settings: Settings,
        registry_conn: Any) -> None:
    client = await make_api_client(api_settings)
    await _fail_login(client, "203.0.113.7")
    assert await _ip_keys(registry_conn) == {"ip:127.0.0.1"}
