"""The audit log over HTTP: newest first, keyset pages, filters, bad cursors, isolation."""

from __future__ import annotations

import base64

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import Client, problem, register

URL = "/api/v1/audit-log"


async def test_pages_newest_first_with_filters(api_client: Client) -> None:
    church = await register(api_client)
    ids = []
    for i in range(5):
        made = await (await api_client.post("/api/v1/templates", headers=church.auth,
                                            json={"name": f"T{i}", "body": "b"})).json()
        ids.append(made["id"])
    seen: list[dict[str, object]] = []
    query = f"{URL}?action=template.create&limit=2"
    pages = 0
    while True:
        resp = await api_client.get(query, headers=church.auth)
        body = await resp.json()
        assert resp.status == 200, body
        seen.extend(body["items"])
        pages += 1
        if body["next_cursor"] is None:
            break
        query = f"{URL}?action=template.create&limit=2&cursor={body['next_cursor']}"
    assert pages == 3
    assert [e["target_id"] for e in seen] == list(reversed(ids))
    first = seen[0]
    assert first["admin_id"] == church.admin_id and first["actor_kind"] == "admin"
    assert first["target_type"] == "template" and first["detail"] == {"name": "T4",
                                                                       "category": "general"}
    assert first["ip"] and first["request_id"] and first["created_at"]
    family = await (await api_client.get(f"{URL}?action=template&admin_id={church.admin_id}",
                                         headers=church.auth)).json()
    assert len(family["items"]) == 5
    nobody = "00000000-0000-4000-8000-000000000000"
    none = await (await api_client.get(f"{URL}?admin_id={nobody}", headers=church.auth)).json()
    assert none == {"items": [], "next_cursor": None}
    everything = await (await api_client.get(URL, headers=church.auth)).json()
    assert {e["action"] for e in everything["items"]} >= {"template.create"}


async def test_bad_queries_and_cursors_are_refused(api_client: Client) -> None:
    church = await register(api_client)
    forged = base64.urlsafe_b64encode(b'{"k":"members:name:asc","v":["a","b"]}').decode()
    for query, status, code in (
        ("cursor=garbage!!", 400, "invalid_cursor"), (f"cursor={forged}", 400, "invalid_cursor"),
        ("limit=0", 422, "validation_failed"), ("limit=201", 422, "validation_failed"),
        ("action=DROP%20TABLE", 422, "validation_failed"),
        ("admin_id=not-a-uuid", 422, "validation_failed"),
        ("order=asc", 422, "validation_failed"),
    ):
        await problem(await api_client.get(f"{URL}?{query}", headers=church.auth), status, code)
    await problem(await api_client.get(URL), 401, "unauthorized")


async def test_each_church_reads_only_its_own_log(api_client: Client) -> None:
    a, b = await register(api_client), await register(api_client)
    await api_client.post("/api/v1/templates", headers=a.auth, json={"name": "A", "body": "b"})
    page = await (await api_client.get(f"{URL}?action=template&limit=1",
                                       headers=a.auth)).json()
    assert len(page["items"]) == 1
    theirs = await (await api_client.get(f"{URL}?action=template", headers=b.auth)).json()
    assert theirs["items"] == []
    assert all(e["admin_id"] in (b.admin_id, None) for e in
               (await (await api_client.get(URL, headers=b.auth)).json())["items"])
