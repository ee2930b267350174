"""Members over HTTP: create, read, list (search, filters, keyset pages), change, delete,
consent, audit, bad input, and two churches that never touch each other's members."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import Church, Client, problem, register
from ywmessaging.config import Settings
from ywmessaging.db import pg
from ywmessaging.db.dsn import PgTarget
from ywmessaging.tenants.naming import tenant_db_name

MEMBER_KEYS = {"id", "first_name", "last_name", "phone", "email", "branch_id", "group_ids",
               "opt_in", "opt_in_changed_at", "created_at", "updated_at"}
PHONES = ["(213) 373-4253", "(213) 373-4254", "(213) 373-4255", "(312) 555-0199",
          "(415) 555-0123", "+44 20 7946 0958", "(646) 555-0147"]


async def db_fetch(pg_admin: PgTarget, settings: Settings, church: Church, sql: str,
                   *args: Any) -> list[Any]:
    """Rows from the church's own database (to check what the API must not show)."""
    conn = await pg.connect(pg_admin.with_db(tenant_db_name(settings,
                                                            uuid.UUID(church.tenant_id))))
    try:
        rows: list[Any] = await conn.fetch(sql, *args)
        return rows
    finally:
        await conn.close()


async def create(church: Church, status: int = 201, **body: Any) -> dict[str, Any]:
    """POST /members, asserting the status."""
    resp = await church.client.post("/api/v1/members", headers=church.auth, json=body)
    out: dict[str, Any] = await resp.json(content_type=None)
    assert resp.status == status, out
    return out


async def post_json(church: Church, path: str, body: Any, status: int) -> dict[str, Any]:
    resp = await church.client.post(f"/api/v1{path}", headers=church.auth, json=body)
    out: dict[str, Any] = await resp.json(content_type=None)
    assert resp.status == status, out
    return out


async def get_json(church: Church, path: str, status: int = 200) -> dict[str, Any]:
    resp = await church.client.get(f"/api/v1{path}", headers=church.auth)
    out: dict[str, Any] = await resp.json(content_type=None)
    assert resp.status == status, out
    return out


async def test_create_read_duplicate_and_audit(api_client: Client, pg_admin: PgTarget,
                                               settings: Settings) -> None:
    church = await register(api_client)
    g1 = await post_json(church, "/groups", {"name": "Choir"}, 201)
    g2 = await post_json(church, "/groups", {"name": "Youth"}, 201)
    branch = await post_json(church, "/branches", {"name": "North"}, 201)
    resp = await api_client.post("/api/v1/members", headers={**church.auth,
                                                             "X-Request-ID": "req-create-1"},
                                 json={"first_name": " Ann ", "last_name": "Lee",
                                       "phone": "(213) 373-4253", "email": "Ann@Example.ORG",
                                       "group_ids": [g2["id"], g1["id"], g2["id"]],
                                       "branch_id": branch["id"]})
    member = await resp.json()
    assert resp.status == 201, member
    assert set(member) == MEMBER_KEYS
    assert (member["first_name"], member["phone"], member["email"], member["opt_in"]) == (
        "Ann", "+12133734253", "ann@example.org", "opted_in")
    assert sorted(member["group_ids"]) == sorted([g1["id"], g2["id"]])
    assert member["branch_id"] == branch["id"]
    assert await get_json(church, f"/members/{member['id']}") == member
    # The same number written another way is the same member: 409 naming it.
    dup = await api_client.post("/api/v1/members", headers=church.auth, json={
        "first_name": "Other", "last_name": "Person", "phone": "+1 213.373.4253"})
    body = await problem(dup, 409, "member_exists")
    assert body["member_id"] == member["id"]
    rows = await db_fetch(pg_admin, settings, church,
                          "SELECT admin_id, action, target_type, target_id, request_id "
                          "FROM audit_log WHERE action LIKE 'member.%'")
    assert [(str(r["admin_id"]), r["action"], r["target_type"], r["target_id"], r["request_id"])
            for r in rows] == [(church.admin_id, "member.create", "member", member["id"],
                                "req-create-1")]
    assert (await get_json(church, f"/groups/{g1['id']}"))["member_count"] == 1


async def test_bad_input_is_refused_and_nothing_half_written(
    api_client: Client, pg_admin: PgTarget, settings: Settings,
) -> None:
    church = await register(api_client)
    group = await post_json(church, "/groups", {"name": "Choir"}, 201)
    ok = {"first_name": "Ann", "last_name": "Lee", "phone": "(213) 373-4253"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"first_name": "Ann", "last_name": "Lee"}, "validation_failed"),
        ({**ok, "nickname": "A"}, "validation_failed"),
        ({**ok, "first_name": 5}, "validation_failed"),
        ({**ok, "first_name": "x" * 101}, "validation_failed"),
        ({**ok, "first_name": ""}, "validation_failed"),
        ({**ok, "phone": 2133734253}, "validation_failed"),
        ({**ok, "phone": "12345"}, "invalid_phone"),
        ({**ok, "phone": "call me"}, "invalid_phone"),
        ({**ok, "email": "not-an-email"}, "validation_failed"),
        ({**ok, "group_ids": group["id"]}, "validation_failed"),
        ({**ok, "group_ids": ["nope"]}, "validation_failed"),
        ({**ok, "group_ids": [group["id"], str(uuid.uuid4())]}, "validation_failed"),
        ({**ok, "branch_id": str(uuid.uuid4())}, "validation_failed"),
        ({**ok, "branch_id": 7}, "validation_failed"),
    ]
    for body, code in cases:
        resp = await api_client.post("/api/v1/members", headers=church.auth, json=body)
        await problem(resp, 422, code)
    for raw in (b"{", b"[1]", b""):
        resp = await api_client.post("/api/v1/members", data=raw, headers={
            **church.auth, "Content-Type": "application/json"})
        await problem(resp, 400, "invalid_json")
    assert (await get_json(church, "/members"))["items"] == []
    assert await db_fetch(pg_admin, settings, church, "SELECT 1 FROM group_members") == []
    assert await db_fetch(pg_admin, settings, church,
                          "SELECT 1 FROM audit_log WHERE action LIKE 'member.%'") == []
    await problem(await api_client.get("/api/v1/members"), 401, "unauthorized")


async def _walk(church: Church, query: str, limit: int) -> list[dict[str, Any]]:
    """Every member through keyset pages of `limit`."""
    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(20):
        suffix = f"&cursor={cursor}" if cursor else ""
        body = await get_json(church, f"/members?limit={limit}{query}{suffix}")
        assert len(body["items"]) <= limit
        seen.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("pagination did not end")


async def test_list_pages_sorts_search_and_filters(api_client: Client) -> None:
    church = await register(api_client)
    group = await post_json(church, "/groups", {"name": "Choir"}, 201)
    branch = await post_json(church, "/branches", {"name": "East"}, 201)
    names = [("Ann", "Lee"), ("Bob", "Lee"), ("Cy", "Adams"), ("Di", "Zane"),
             ("Ed", "100% Sure"), ("Fay", "Under_Score"), ("Gus", "Lee")]
    made = []
    for i, ((first, last), phone) in enumerate(zip(names, PHONES, strict=True)):
        extra: dict[str, Any] = {"group_ids": [group["id"]]} if i % 2 == 0 else {}
        if i < 3:
            extra["branch_id"] = branch["id"]
        made.append(await create(church, first_name=first, last_name=last, phone=phone,
                                 **extra))
    await post_json(church, f"/members/{made[1]['id']}/opt-out", {}, 200)

    by_name = sorted(made, key=lambda m: (m["last_name"], m["first_name"], m["id"]))
    assert [m["id"] for m in await _walk(church, "", 2)] == [m["id"] for m in by_name]
    assert [m["id"] for m in await _walk(church, "&order=desc", 3)] == [
        m["id"] for m in reversed(by_name)]
    by_created = [m["id"] for m in sorted(made, key=lambda m: (m["created_at"], m["id"]))]
    assert [m["id"] for m in await _walk(church, "&sort=created", 2)] == by_created
    assert [m["id"] for m in await _walk(church, "&sort=created&order=desc", 4)] == list(
        reversed(by_created))

    async def ids(query: str) -> set[str]:
        return {m["id"] for m in await _walk(church, query, 50)}

    assert await ids("&search=lee") == {made[0]["id"], made[1]["id"], made[6]["id"]}
    assert await ids("&search=ann%20lee") == {made[0]["id"]}
    assert await ids("&search=373-42") == {m["id"] for m in made[:3]}
    assert await ids("&search=%2B44") == {made[5]["id"]}
    assert await ids("&search=%25") == {made[4]["id"]}       # a literal %, not a wildcard
    assert await ids("&search=_") == {made[5]["id"]}         # a literal _
    assert await ids(f"&group_id={group['id']}") == {made[i]["id"] for i in (0, 2, 4, 6)}
    assert await ids(f"&branch_id={branch['id']}") == {m["id"] for m in made[:3]}
    assert await ids("&opt_in=opted_out") == {made[1]["id"]}
    assert await ids(f"&opt_in=opted_in&branch_id={branch['id']}&search=lee") == {
        made[0]["id"]}
    assert [m["id"] for m in await _walk(church, f"&group_id={group['id']}", 1)] == [
        m["id"] for m in by_name if m["id"] in {made[i]["id"] for i in (0, 2, 4, 6)}]
    assert await ids(f"&group_id={uuid.uuid4()}") == set()


async def test_list_refuses_bad_parameters(api_client: Client) -> None:
    church = await register(api_client)
    for i in range(3):
        await create(church, first_name=f"P{i}", last_name="Q", phone=PHONES[i])
    first = await get_json(church, "/members?limit=1")
    cursor = first["next_cursor"]
    assert cursor
    for query, status, code in [
        ("limit=0", 422, "validation_failed"), ("limit=201", 422, "validation_failed"),
        ("limit=x", 422, "validation_failed"), ("sort=phone", 422, "validation_failed"),
        ("order=up", 422, "validation_failed"), ("opt_in=maybe", 422, "validation_failed"),
        ("group_id=nope", 422, "validation_failed"), ("color=red", 422, "validation_failed"),
        ("limit=1&limit=2", 422, "validation_failed"),
        (f"search={'x' * 101}", 422, "validation_failed"),
        ("cursor=garbage!!", 400, "invalid_cursor"),
        (f"cursor={cursor[:-3]}", 400, "invalid_cursor"),
        (f"cursor={cursor}&sort=created", 400, "invalid_cursor"),
        (f"cursor={cursor}&order=desc", 400, "invalid_cursor"),
    ]:
        resp = await api_client.get(f"/api/v1/members?{query}", headers=church.auth)
        await problem(resp, status, code)
    second = await get_json(church, f"/members?limit=1&cursor={cursor}")
    assert second["items"][0]["id"] != first["items"][0]["id"]


async def test_patch_member(api_client: Client) -> None:
    church = await register(api_client)
    g1 = await post_json(church, "/groups", {"name": "Choir"}, 201)
    g2 = await post_json(church, "/groups", {"name": "Ushers"}, 201)
    branch = await post_json(church, "/branches", {"name": "West"}, 201)
    other = await create(church, first_name="Oz", last_name="Other", phone=PHONES[1])
    member = await create(church, first_name="Ann", last_name="Lee", phone=PHONES[0],
                          email="ann@example.org", group_ids=[g1["id"]],
                          branch_id=branch["id"])
    path = f"/api/v1/members/{member['id']}"

    async def patch(body: Any, status: int = 200) -> dict[str, Any]:
        resp = await api_client.patch(path, headers=church.auth, json=body)
        out: dict[str, Any] = await resp.json(content_type=None)
        assert resp.status == status, out
        return out

    changed = await patch({"last_name": "Smith", "phone": "312.555.0199",
                           "group_ids": [g2["id"]]})
    assert (changed["last_name"], changed["phone"], changed["group_ids"]) == (
        "Smith", "+13125550199", [g2["id"]])
    assert changed["first_name"] == "Ann" and changed["updated_at"] > member["updated_at"]
    cleared = await patch({"email": None, "branch_id": None})
    assert cleared["email"] is None and cleared["branch_id"] is None
    assert cleared["group_ids"] == [g2["id"]]
    taken = await api_client.patch(path, headers=church.auth, json={"phone": other["phone"]})
    assert (await problem(taken, 409, "member_exists"))["member_id"] == other["id"]
    for body, code in [({}, "validation_failed"), ({"first_name": None}, "validation_failed"),
                       ({"phone": "123"}, "invalid_phone"), ({"id": member["id"]},
                                                              "validation_failed"),
                       ({"group_ids": [str(uuid.uuid4())], "first_name": "Zed"},
                        "validation_failed"),
                       ({"branch_id": str(uuid.uuid4())}, "validation_failed")]:
        await problem(await api_client.patch(path, headers=church.auth, json=body), 422, code)
    unchanged = await get_json(church, f"/members/{member['id']}")
    assert unchanged["first_name"] == "Ann" and unchanged["group_ids"] == [g2["id"]]
    assert unchanged["phone"] == "+13125550199"
    for bad in (str(uuid.uuid4()), "not-a-uuid", "1"):
        await problem(await api_client.patch(f"/api/v1/members/{bad}", headers=church.auth,
                                             json={"first_name": "X"}), 404, "not_found")


async def test_delete_member(api_client: Client, pg_admin: PgTarget, settings: Settings) -> None:
    church = await register(api_client)
    group = await post_json(church, "/groups", {"name": "Choir"}, 201)
    member = await create(church, first_name="Ann", last_name="Lee", phone=PHONES[0],
                          group_ids=[group["id"]])
    await post_json(church, f"/members/{member['id']}/opt-out", {}, 200)
    path = f"/api/v1/members/{member['id']}"
    assert (await api_client.delete(path, headers=church.auth)).status == 204
    await problem(await api_client.get(path, headers=church.auth), 404, "not_found")
    await problem(await api_client.delete(path, headers=church.auth), 404, "not_found")
    await problem(await api_client.delete("/api/v1/members/zzz", headers=church.auth),
                  404, "not_found")
    assert (await get_json(church, f"/groups/{group['id']}"))["member_count"] == 0
    assert await db_fetch(pg_admin, settings, church, "SELECT 1 FROM consent_events") == []
    actions = [r["action"] for r in await db_fetch(
        pg_admin, settings, church, "SELECT action FROM audit_log WHERE target_id = $1 "
        "ORDER BY id", member["id"])]
    assert actions == ["member.create", "member.opt_out", "member.delete"]
    # The number is free again.
    await create(church, first_name="Ann", last_name="Lee", phone=PHONES[0])


async def test_opt_out_opt_in_and_consent_history(
    api_client: Client, pg_admin: PgTarget, settings: Settings,
) -> None:
    church = await register(api_client)
    member = await create(church, first_name="Ann", last_name="Lee", phone=PHONES[0])
    mid = member["id"]
    out = await post_json(church, f"/members/{mid}/opt-out", {"reason": "asked at the door"},
                          200)
    assert out["opt_in"] == "opted_out" and out["opt_in_changed_at"] > member["opt_in_changed_at"]
    back = await post_json(church, f"/members/{mid}/opt-in", None, 200)
    assert back["opt_in"] == "opted_in"
    history = await get_json(church, f"/members/{mid}/consent")
    assert [(e["kind"], e["source"], e["admin_id"]) for e in history["items"]] == [
        ("opt_in", "admin", church.admin_id), ("opt_out", "admin", church.admin_id)]
    assert history["items"][1]["detail"] == {"reason": "asked at the door"}
    assert history["next_cursor"] is None
    page1 = await get_json(church, f"/members/{mid}/consent?limit=1")
    page2 = await get_json(church, f"/members/{mid}/consent?limit=1&cursor="
                           f"{page1['next_cursor']}")
    assert [e["id"] for e in page1["items"] + page2["items"]] == [
        e["id"] for e in history["items"]]
    # A newer event (say a STOP the carrier timestamped later) wins over an admin's older
    # action: the admin's event is recorded, the state stays.
    conn = await pg.connect(pg_admin.with_db(tenant_db_name(settings,
                                                            uuid.UUID(church.tenant_id))))
    try:
        await conn.execute("UPDATE members SET opt_in_changed_at = now() + interval '1 hour'")
    finally:
        await conn.close()
    still = await post_json(church, f"/members/{mid}/opt-out", {}, 200)
    assert still["opt_in"] == "opted_in"
    assert len((await get_json(church, f"/members/{mid}/consent"))["items"]) == 3
    for path in (f"/members/{uuid.uuid4()}/opt-out", "/members/bad/opt-in"):
        await problem(await api_client.post(f"/api/v1{path}", headers=church.auth),
                      404, "not_found")
    await problem(await api_client.post(f"/api/v1/members/{mid}/opt-out", headers=church.auth,
                                        json={"reason": "x" * 501}), 422, "validation_failed")
    await problem(await api_client.post(f"/api/v1/members/{mid}/opt-out", headers=church.auth,
                                        json={"why": "x"}), 422, "validation_failed")
    await problem(await api_client.get(f"/api/v1/members/{uuid.uuid4()}/consent",
                                       headers=church.auth), 404, "not_found")
    other_cursor = (await get_json(church, "/members?limit=1")).get("next_cursor") or "e30"
    await problem(await api_client.get(f"/api/v1/members/{mid}/consent?cursor={other_cursor}",
                                       headers=church.auth), 400, "invalid_cursor")
    rows = await db_fetch(pg_admin, settings, church,
                          "SELECT kind, occurred_at FROM consent_events ORDER BY occurred_at")
    assert [r["kind"] for r in rows] == ["opt_out", "opt_in", "opt_out"]


async def test_two_churches_never_touch_each_others_members(
    api_client: Client, pg_admin: PgTarget, settings: Settings,
) -> None:
    a = await register(api_client)
    b = await register(api_client)
    group_a = await post_json(a, "/groups", {"name": "Choir"}, 201)
    group_b = await post_json(b, "/groups", {"name": "Band"}, 201)
    member = await create(a, first_name="Ann", last_name="Lee", phone=PHONES[0],
                          group_ids=[group_a["id"]])
    path = f"/api/v1/members/{member['id']}"
    for method, suffix, body in [("GET", "", None), ("PATCH", "", {"first_name": "Mal"}),
                                 ("DELETE", "", None), ("POST", "/opt-out", {}),
                                 ("POST", "/opt-in", {}), ("GET", "/consent", None)]:
        resp = await api_client.request(method, path + suffix, headers=b.auth, json=body)
        await problem(resp, 404, "not_found")
    assert (await get_json(b, "/members"))["items"] == []
    assert (await get_json(b, f"/members?group_id={group_a['id']}"))["items"] == []
    # B cannot put A's member in B's group, nor its own member in A's group.
    resp = await api_client.post(f"/api/v1/groups/{group_b['id']}/members", headers=b.auth,
                                 json={"member_ids": [member["id"]]})
    await problem(resp, 422, "validation_failed")
    await create(b, 422, first_name="Bo", last_name="B", phone=PHONES[1],
                 group_ids=[group_a["id"]])
    # A's cursor means nothing to B's list beyond a position: B still sees only B's rows.
    same_phone = await create(b, first_name="Ann", last_name="Lee", phone=PHONES[0])
    assert same_phone["id"] != member["id"]
    assert await get_json(a, f"/members/{member['id']}") == member
    assert (await get_json(a, f"/groups/{group_a['id']}"))["member_count"] == 1
    assert await db_fetch(pg_admin, settings, a, "SELECT 1 FROM consent_events") == []
    assert [r["action"] for r in await db_fetch(
        pg_admin, settings, a, "SELECT action FROM audit_log WHERE action LIKE 'member.%'"
    )] == ["member.create"]


async def test_a_listed_member_reads_exactly_as_the_member_itself(api_client: Client) -> None:
    """The list's items are written by PostgreSQL, the single member by Python:
    the same member must come out the same, key for key and value for value."""
    church = await register(api_client)
    g1 = await post_json(church, "/groups", {"name": "Choir"}, 201)
    g2 = await post_json(church, "/groups", {"name": "Youth"}, 201)
    branch = await post_json(church, "/branches", {"name": "North"}, 201)
    made = [await create(church, first_name="Zoë", last_name="Ünïcode \"q\"", phone=PHONES[0],
                         email="z@example.org", group_ids=[g2["id"], g1["id"]],
                         branch_id=branch["id"]),
            await create(church, first_name="Bob", last_name="Plain", phone=PHONES[1])]
    listed = (await get_json(church, "/members?sort=created"))["items"]
    assert [m["id"] for m in listed] == [m["id"] for m in made]
    for item in listed:
        one = await get_json(church, f"/members/{item['id']}")
        assert set(item) == MEMBER_KEYS
        assert same_document(item, one), (item, one)


def same_document(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal documents; `*_at` timestamps may differ only in how many fractional digits they
    print (PostgreSQL drops trailing zeros), never in the instant or the UTC offset."""
    if set(a) != set(b):
        return False
    for key, value in a.items():
        if key.endswith("_at") and isinstance(value, str):
            if not (value.endswith("+00:00") and b[key].endswith("+00:00")):
                return False
            if datetime.fromisoformat(value) != datetime.fromisoformat(b[key]):
                return False
        elif value != b[key]:
            return False
    return True

