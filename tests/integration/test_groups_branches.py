"""Groups and branches over HTTP: CRUD with member counts, membership changes, soft-deleted
branches, bad input, audit, and two churches that never touch each other's groups/branches."""

from __future__ import annotations

import uuid
from typing import Any

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import Church, Client, problem, register
from tests.integration.test_members import (
    PHONES,
    create,
    db_fetch,
    get_json,
    post_json,
    same_document,
)
from ywmessaging.config import Settings
from ywmessaging.db.dsn import PgTarget

GROUP_KEYS = {"id", "name", "description", "color", "member_count", "created_at", "updated_at"}
BRANCH_KEYS = {"id", "name", "address", "phone", "description", "is_active", "member_count",
               "created_at", "updated_at"}


async def send(church: Church, method: str, path: str, body: Any = None,
               status: int = 200) -> dict[str, Any]:
    resp = await church.client.request(method, f"/api/v1{path}", headers=church.auth,
                                       json=body)
    out: dict[str, Any] = await resp.json(content_type=None) if resp.status != 204 else {}
    assert resp.status == status, out
    return out


async def test_group_crud_and_membership(api_client: Client, pg_admin: PgTarget,
                                         settings: Settings) -> None:
    church = await register(api_client)
    choir = await post_json(church, "/groups", {"name": "Choir", "description": "Sings",
                                                "color": "#a1b2c3"}, 201)
    assert set(choir) == GROUP_KEYS
    assert (choir["color"], choir["member_count"]) == ("#A1B2C3", 0)
    await problem(await api_client.post("/api/v1/groups", headers=church.auth,
                                        json={"name": " CHOIR "}), 409, "group_exists")
    await post_json(church, "/groups", {"name": "youth"}, 201)
    m1 = await create(church, first_name="Ann", last_name="Lee", phone=PHONES[0])
    m2 = await create(church, first_name="Bob", last_name="Lee", phone=PHONES[1])
    path = f"/groups/{choir['id']}/members"
    assert (await post_json(church, path, {"member_ids": [m1["id"], m2["id"]]}, 200)
            )["member_count"] == 2
    assert (await post_json(church, path, {"member_ids": [m1["id"]]}, 200))["member_count"] == 2
    for body in ({"member_ids": [m1["id"], str(uuid.uuid4())]}, {"member_ids": []},
                 {"member_ids": ["x"]}, {"member_ids": m1["id"]}, {}):
        await problem(await api_client.post(f"/api/v1{path}", headers=church.auth, json=body),
                      422, "validation_failed")
    listing = await get_json(church, "/groups")
    assert [(g["name"], g["member_count"]) for g in listing["items"]] == [("Choir", 2),
                                                                        ("youth", 0)]
    assert (await send(church, "DELETE", path, {"member_ids": [m2["id"], str(uuid.uuid4())]})
            )["member_count"] == 1
    assert (await get_json(church, f"/members/{m2['id']}"))["group_ids"] == []
    renamed = await send(church, "PATCH", f"/groups/{choir['id']}",
                         {"name": "Chorus", "description": None})
    assert (renamed["name"], renamed["description"], renamed["color"]) == (
        "Chorus", None, "#A1B2C3")
    for body, status, code in [({"name": "YOUTH"}, 409, "group_exists"),
                               ({}, 422, "validation_failed"),
                               ({"name": None}, 422, "validation_failed"),
                               ({"color": "red"}, 422, "validation_failed"),
                               ({"name": "x" * 101}, 422, "validation_failed"),
                               ({"members": []}, 422, "validation_failed")]:
        resp = await api_client.patch(f"/api/v1/groups/{choir['id']}", headers=church.auth,
                                      json=body)
        await problem(resp, status, code)
    assert (await get_json(church, f"/groups/{choir['id']}"))["name"] == "Chorus"
    await send(church, "DELETE", f"/groups/{choir['id']}", status=204)
    assert (await get_json(church, f"/members/{m1['id']}"))["group_ids"] == []
    for method in ("GET", "PATCH", "DELETE"):
        for gid in (choir["id"], "not-a-uuid"):
            resp = await api_client.request(method, f"/api/v1/groups/{gid}",
                                            headers=church.auth, json={"name": "Z"})
            await problem(resp, 404, "not_found")
    await problem(await api_client.post(f"/api/v1{path}", headers=church.auth,
                                        json={"member_ids": [m1["id"]]}), 404, "not_found")
    actions = [r["action"] for r in await db_fetch(
        pg_admin, settings, church, "SELECT action FROM audit_log WHERE target_type = 'group' "
        "AND target_id = $1 ORDER BY id", choir["id"])]
    assert actions == ["group.create", "group.members_add", "group.members_add",
                       "group.members_remove", "group.update", "group.delete"]


async def test_branch_crud_and_delete_frees_members(
    api_client: Client, pg_admin: PgTarget, settings: Settings,
) -> None:
    church = await register(api_client)
    north = await post_json(church, "/branches", {"name": "North", "address": "1 Main St",
                                                  "phone": "(213) 373-4200"}, 201)
    assert set(north) == BRANCH_KEYS
    assert (north["phone"], north["is_active"], north["member_count"]) == (
        "+12133734200", True, 0)
    await problem(await api_client.post("/api/v1/branches", headers=church.auth,
                                        json={"name": "north"}), 409, "branch_exists")
    south = await post_json(church, "/branches", {"name": "South", "is_active": False}, 201)
    members = [await create(church, first_name=f"P{i}", last_name="Q", phone=PHONES[i],
                            branch_id=north["id"]) for i in range(2)]
    listing = await get_json(church, "/branches")
    assert [(b["name"], b["member_count"], b["is_active"]) for b in listing["items"]] == [
        ("North", 2, True), ("South", 0, False)]
    # A member is in at most one branch: moving it changes both counts.
    await send(church, "PATCH", f"/members/{members[0]['id']}", {"branch_id": south["id"]})
    assert (await get_json(church, f"/branches/{south['id']}"))["member_count"] == 1
    changed = await send(church, "PATCH", f"/branches/{north['id']}",
                         {"address": None, "phone": "+44 20 7946 0958", "is_active": False})
    assert (changed["address"], changed["phone"], changed["is_active"]) == (
        None, "+442079460958", False)
    for body, status, code in [({"name": "SOUTH"}, 409, "branch_exists"),
                               ({"phone": "12"}, 422, "invalid_phone"),
                               ({"is_active": "yes"}, 422, "validation_failed"),
                               ({"is_active": None}, 422, "validation_failed"),
                               ({"description": "d" * 1001}, 422, "validation_failed"),
                               ({}, 422, "validation_failed")]:
        resp = await api_client.patch(f"/api/v1/branches/{north['id']}", headers=church.auth,
                                      json=body)
        await problem(resp, status, code)
    await send(church, "DELETE", f"/branches/{north['id']}", status=204)
    assert (await get_json(church, f"/members/{members[1]['id']}"))["branch_id"] is None
    assert (await get_json(church, f"/members/{members[0]['id']}"))["branch_id"] == south["id"]
    for method in ("GET", "PATCH", "DELETE"):
        resp = await api_client.request(method, f"/api/v1/branches/{north['id']}",
                                        headers=church.auth, json={"name": "Z"})
        await problem(resp, 404, "not_found")
    await problem(await api_client.patch(f"/api/v1/members/{members[1]['id']}",
                                         headers=church.auth, json={"branch_id": north["id"]}),
                  422, "validation_failed")
    # The name is free again once the branch is gone.
    again = await post_json(church, "/branches", {"name": "North"}, 201)
    assert again["id"] != north["id"] and again["member_count"] == 0
    assert [b["name"] for b in (await get_json(church, "/branches"))["items"]] == [
        "North", "South"]
    for body in ({"address": "x"}, {"name": ""}, {"name": "B", "extra": 1}, {"name": 3}):
        await problem(await api_client.post("/api/v1/branches", headers=church.auth,
                                            json=body), 422, "validation_failed")
    rows = await db_fetch(pg_admin, settings, church, "SELECT action, detail FROM audit_log "
                          "WHERE target_id = $1 ORDER BY id", north["id"])
    assert [r["action"] for r in rows] == ["branch.create", "branch.update", "branch.delete"]
    assert '"members_unassigned": 1' in rows[-1]["detail"]


async def test_two_churches_never_touch_each_others_groups_and_branches(
    api_client: Client, pg_admin: PgTarget, settings: Settings,
) -> None:
    a = await register(api_client)
    b = await register(api_client)
    group = await post_json(a, "/groups", {"name": "Choir"}, 201)
    branch = await post_json(a, "/branches", {"name": "North"}, 201)
    member_a = await create(a, first_name="Ann", last_name="Lee", phone=PHONES[0],
                            group_ids=[group["id"]], branch_id=branch["id"])
    member_b = await create(b, first_name="Bo", last_name="Bee", phone=PHONES[1])
    for kind, ident in (("groups", group["id"]), ("branches", branch["id"])):
        for method, body in (("GET", None), ("PATCH", {"name": "Taken"}), ("DELETE", None)):
            resp = await api_client.request(method, f"/api/v1/{kind}/{ident}", headers=b.auth,
                                            json=body)
            await problem(resp, 404, "not_found")
        assert (await get_json(b, f"/{kind}"))["items"] == []
    for method in ("POST", "DELETE"):
        resp = await api_client.request(method, f"/api/v1/groups/{group['id']}/members",
                                        headers=b.auth, json={"member_ids": [member_b["id"]]})
        await problem(resp, 404, "not_found")
    await problem(await api_client.patch(f"/api/v1/members/{member_b['id']}", headers=b.auth,
                                         json={"branch_id": branch["id"]}),
                  422, "validation_failed")
    # B may use the same names: names are unique per church only.
    await post_json(b, "/groups", {"name": "Choir"}, 201)
    await post_json(b, "/branches", {"name": "North"}, 201)
    assert (await get_json(a, f"/groups/{group['id']}")) == {**group, "member_count": 1}
    assert (await get_json(a, f"/branches/{branch['id']}")) == {**branch, "member_count": 1}
    assert await get_json(a, f"/members/{member_a['id']}") == member_a
    assert len(await db_fetch(pg_admin, settings, a, "SELECT 1 FROM audit_log WHERE "
                              "action LIKE 'group.%' OR action LIKE 'branch.%'")) == 2


async def test_listed_groups_and_branches_read_exactly_as_each_one(api_client: Client) -> None:
    """Lists are written by PostgreSQL, single reads by Python: the same object either way."""
    church = await register(api_client)
    groups = [await post_json(church, "/groups", {"name": "Zebra \"q\" ü", "color": "#a1b2c3"},
                              201),
              await post_json(church, "/groups", {"name": "alpha"}, 201)]
    branch = await post_json(church, "/branches", {"name": "North", "address": "1 Main St",
                                                   "phone": "(213) 373-4253"}, 201)
    await post_json(church, "/branches", {"name": "east"}, 201)
    await create(church, first_name="Ann", last_name="Lee", phone=PHONES[0],
                 group_ids=[groups[0]["id"]], branch_id=branch["id"])
    listed = (await get_json(church, "/groups"))["items"]
    assert [g["name"] for g in listed] == ["alpha", "Zebra \"q\" ü"]
    for item in listed:
        assert set(item) == GROUP_KEYS
        assert same_document(item, await get_json(church, f"/groups/{item['id']}"))
    assert listed[1]["member_count"] == 1
    listed = (await get_json(church, "/branches"))["items"]
    assert [b["name"] for b in listed] == ["east", "North"]
    for item in listed:
        assert set(item) == BRANCH_KEYS
        assert same_document(item, await get_json(church, f"/branches/{item['id']}"))
    empty = await register(api_client)
    assert await get_json(empty, "/groups") == {"items": []}
    assert await get_json(empty, "/branches") == {"items": []}
