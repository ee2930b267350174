"""Requests as openapi.yaml describes them: a wrong method is 405 with `Allow` (issue #16, 7)."""

from __future__ import annotations

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import Church, Client, problem, register


async def test_a_wrong_method_is_405_with_allow(api_client: Client) -> None:
    church: Church = await register(api_client)
    for method, path, allowed in (
        ("PATCH", "/api/v1/members/export", {"GET", "HEAD"}),
        ("DELETE", "/api/v1/members/import", {"POST"}),
        ("GET", "/api/v1/broadcasts/preview", {"POST"}),
        ("DELETE", "/api/v1/numbers/available", {"GET", "HEAD"}),
    ):
        resp = await api_client.request(method, path, headers=church.auth)
        await problem(resp, 405, "method_not_allowed")
        assert {m.strip() for m in resp.headers["Allow"].split(",")} == allowed, path
    # a member id that is not a UUID is still 404
    resp = await api_client.get("/api/v1/members/not-a-uuid", headers=church.auth)
    await problem(resp, 404, "not_found")
