"""Co-admins by invitation, roles and the permission table, the last owner, isolation."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import (
    PASSWORD,
    Church,
    Client,
    bearer,
    problem,
    read_outbox,
    register,
    token_in,
)


async def _invite(client: Client, church: Church, outbox: Path, role: str = "admin",
                  password: str = "co-admin passphrase") -> dict[str, Any]:
    addr = f"helper-{secrets.token_hex(4)}@example.org"
    resp = await client.post("/api/v1/admins", headers=church.auth, json={
        "email": addr, "first_name": "Hal", "last_name": "Helper", "role": role})
    invited = await resp.json()
    assert resp.status == 201, invited
    assert invited["status"] == "invited" and invited["role"] == role
    mails = read_outbox(outbox, "invitation", to=addr)
    assert len(mails) == 1
    token = token_in(mails[0])
    accept = await client.post("/api/v1/auth/invitations/accept",
                               json={"token": token, "password": password})
    body = await accept.json()
    assert accept.status == 200, body
    return {"id": invited["id"], "email": addr, "access": body["access_token"],
            "password": password, "token": token}


async def test_invited_co_admin_can_log_in_and_invitation_is_single_use(
    api_client: Client, outbox: Path,
) -> None:
    church = await register(api_client)
    helper = await _invite(api_client, church, outbox)
    again = await api_client.post("/api/v1/auth/invitations/accept",
                                  json={"token": helper["token"], "password": "another phrase!"})
    await problem(again, 400, "invalid_invitation")
    login = await api_client.post("/api/v1/auth/login", json={
        "email": helper["email"], "password": helper["password"]})
    body = await login.json()
    assert login.status == 200, body
    me = await (await api_client.get("/api/v1/auth/me",
                                     headers=bearer(body["access_token"]))).json()
    assert me["role"] == "admin" and me["church"]["id"] == church.tenant_id
    listing = await (await api_client.get("/api/v1/admins", headers=church.auth)).json()
    assert {a["email"] for a in listing["admins"]} == {church.email, helper["email"]}


async def test_admin_role_cannot_do_owner_only_things(api_client: Client, outbox: Path) -> None:
    church = await register(api_client)
    helper = await _invite(api_client, church, outbox)
    auth = bearer(helper["access"])
    assert (await api_client.get("/api/v1/admins", headers=auth)).status == 200
    await problem(await api_client.post("/api/v1/admins", headers=auth, json={
        "email": "x@example.org", "first_name": "X", "last_name": "Y"}), 403, "forbidden")
    await problem(await api_client.patch(f"/api/v1/admins/{helper['id']}", headers=auth,
                                         json={"role": "owner"}), 403, "forbidden")
    await problem(await api_client.delete(f"/api/v1/admins/{church.admin_id}", headers=auth),
                  403, "forbidden")
    # Promotion by the owner takes effect at once (the role is read live), and ends the
    # promoted admin's sessions (role change).
    up = await api_client.patch(f"/api/v1/admins/{helper['id']}", headers=church.auth,
                                json={"role": "owner"})
    assert up.status == 200 and (await up.json())["role"] == "owner"
    await problem(await api_client.get("/api/v1/admins", headers=auth), 401, "invalid_token")


async def test_the_last_owner_stays(api_client: Client, outbox: Path) -> None:
    church = await register(api_client)
    me = f"/api/v1/admins/{church.admin_id}"
    await problem(await api_client.delete(me, headers=church.auth), 409, "last_owner")
    await problem(await api_client.patch(me, headers=church.auth, json={"role": "admin"}), 409,
                  "last_owner")
    # With a second owner, the first may step down.
    other = await _invite(api_client, church, outbox, role="owner")
    down = await api_client.patch(me, headers=church.auth, json={"role": "admin"})
    assert down.status == 200
    other_auth = bearer(other["access"])
    await problem(await api_client.delete(f"/api/v1/admins/{other['id']}", headers=other_auth),
                  409, "last_owner")
    names = await api_client.patch(me, headers=other_auth, json={"first_name": "Renamed"})
    assert (await names.json())["first_name"] == "Renamed"


async def test_removed_admin_loses_access_and_login(api_client: Client, outbox: Path,
                                                    registry_conn: Any) -> None:
    church = await register(api_client)
    helper = await _invite(api_client, church, outbox)
    gone = await api_client.delete(f"/api/v1/admins/{helper['id']}", headers=church.auth)
    assert gone.status == 204
    await problem(await api_client.get("/api/v1/auth/me", headers=bearer(helper["access"])),
                  401, "invalid_token")
    await problem(await api_client.post("/api/v1/auth/login", json={
        "email": helper["email"], "password": helper["password"]}), 401, "invalid_credentials")
    assert await registry_conn.fetchval("SELECT count(*) FROM admin_logins WHERE email = $1",
                                        helper["email"]) == 0
    await problem(await api_client.delete(f"/api/v1/admins/{helper['id']}",
                                          headers=church.auth), 404, "not_found")


async def test_invite_validation_and_taken_email(api_client: Client) -> None:
    a = await register(api_client)
    b = await register(api_client)
    taken = await api_client.post("/api/v1/admins", headers=a.auth, json={
        "email": b.email, "first_name": "B", "last_name": "B"})
    await problem(taken, 409, "email_taken")
    bad_role = await api_client.post("/api/v1/admins", headers=a.auth, json={
        "email": "n@example.org", "first_name": "N", "last_name": "N", "role": "root"})
    assert (await problem(bad_role, 422, "validation_failed"))["field"] == "role"
    await problem(await api_client.patch("/api/v1/admins/not-a-uuid", headers=a.auth,
                                         json={"role": "admin"}), 404, "not_found")


async def test_two_churches_never_see_each_other(api_client: Client, outbox: Path) -> None:
    a = await register(api_client)
    b = await register(api_client)
    b_helper = await _invite(api_client, b, outbox)
    a_view = await (await api_client.get("/api/v1/admins", headers=a.auth)).json()
    assert [x["email"] for x in a_view["admins"]] == [a.email]
    # A's owner aims at B's admins by id: nothing is found, nothing changes in B.
    for call in (
        api_client.delete(f"/api/v1/admins/{b_helper['id']}", headers=a.auth),
        api_client.patch(f"/api/v1/admins/{b_helper['id']}", headers=a.auth,
                         json={"role": "owner"}),
        api_client.delete(f"/api/v1/admins/{b.admin_id}", headers=a.auth),
    ):
        await problem(await call, 404, "not_found")
    b_view = await (await api_client.get("/api/v1/admins", headers=b.auth)).json()
    assert sorted((x["email"], x["role"]) for x in b_view["admins"]) == sorted(
        [(b.email, "owner"), (b_helper["email"], "admin")])
    assert (await api_client.get("/api/v1/auth/me",
                                 headers=bearer(b_helper["access"]))).status == 200
    # And each church's login lands in its own database.
    login_b = await (await api_client.post("/api/v1/auth/login", json={
        "email": b.email, "password": PASSWORD})).json()
    me_b = await (await api_client.get("/api/v1/auth/me",
                                       headers=bearer(login_b["access_token"]))).json()
    assert me_b["church"]["id"] == b.tenant_id
