"""Planning Center against its simulator: connect (OAuth with PKCE), the first sync and its
report, a change there shows up here (webhook), a removal marks the member, an opted-out
member stays out, tokens refresh, lists become groups, the rate limit holds, disconnect
revokes."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import orjson

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import Client, church_db, problem, register
from tests.integration.pco_fixtures import *  # noqa: F403
from tests.integration.pco_fixtures import PCO, connect, sim_call, synced, wait_for
from ywmessaging.config import Settings
from ywmessaging.crypto import SecretBox
from ywmessaging.db.dsn import PgTarget
from ywmessaging.integrations.pco_sim import RunningPcoSim


async def _people(sim: RunningPcoSim, *bodies: dict[str, Any]) -> list[str]:
    ids = []
    for body in bodies:
        doc = await sim_call(sim, "POST", "/sim/people", body, expect=201)
        ids.append(doc["data"]["id"])
    await sim.sender.idle()
    return ids


async def _members(pg_admin: PgTarget, settings: Settings, tenant_id: str) -> dict[str, Any]:
    async with church_db(pg_admin, settings, tenant_id) as conn:
        rows = await conn.fetch("SELECT * FROM members")
    return {r["pco_person_id"] or r["phone"]: r for r in rows}


async def test_connect_then_first_sync_reports_each_person(
    pco_app: Client, pco_sim: RunningPcoSim, pg_admin: PgTarget, settings: Settings,
    box: SecretBox,
) -> None:
    ann, bob, cy, dee = await _people(
        pco_sim,
        {"first_name": "Ann", "last_name": "Lee", "phone": "(202) 555-0101",
         "email": "ann@example.org"},
        {"first_name": "Bob", "last_name": "Ray", "phone": "202-555-0102",
         "phone_location": "Home"},
        {"first_name": "Cy", "last_name": "Day", "phone": "12"},
        {"first_name": "Dee", "last_name": "Fox", "phones": [
            {"number": "2025550199", "location": "Work"},
            {"number": "+1 202 555 0104", "location": "Mobile", "primary": True}]},
    )
    church, status = await connect(pco_app, pco_sim)
    assert status["status"] == "connected"
    assert status["organization_id"] == pco_sim.state.organization_id
    run = status["last_run"]
    assert run["status"] == "done" and run["kind"] == "full" and run["trigger"] == "connect"
    assert (run["fetched"], run["created"], run["updated"], run["skipped"]) == (4, 2, 0, 2)
    assert {(e["person_id"], e["code"]) for e in run["errors"]} == {
        (bob, "no_mobile_phone"), (cy, "invalid_phone")}
    members = await _members(pg_admin, settings, church.tenant_id)
    assert members[ann]["phone"] == "+12025550101" and members[ann]["email"] == "ann@example.org"
    assert members[dee]["phone"] == "+12025550104"      # the Mobile one, not the Work one
    assert members[ann]["opt_in"] == "opted_in" and members[ann]["pco_removed_at"] is None
    async with church_db(pg_admin, settings, church.tenant_id) as conn:
        sources = await conn.fetch("SELECT source FROM consent_events")
        row = await conn.fetchrow("SELECT access_sealed, refresh_sealed FROM pco_connection")
    assert {r["source"] for r in sources} == {"planning_center"} and len(sources) == 2
    live = {t.access for t in pco_sim.state.tokens.values()}
    assert box.open(row["access_sealed"], "pco_access") in live       # sealed, not plain
    assert all(t.encode() not in row["access_sealed"] for t in live)
    # a second sync on demand: incremental, nothing new
    again = await pco_app.post(f"{PCO}/sync", headers=church.auth, json={})
    assert again.status == 202, await again.text()
    run2 = await again.json()
    assert run2["kind"] == "incremental" and run2["trigger"] == "manual"
    status = await synced(church, after=run["id"])
    assert status["last_run"]["created"] == 0 and status["last_run"]["status"] == "done"


async def test_callback_refuses_a_forged_or_reused_state(pco_app: Client,
                                                         pco_sim: RunningPcoSim) -> None:
    church = await register(pco_app)
    resp = await pco_app.get(f"{PCO}/callback?code=abc&state=forged.state",
                             allow_redirects=False)
    assert resp.status == 302
    assert parse_qs(urlsplit(resp.headers["Location"]).query)["code"] == ["pco_invalid_state"]
    resp = await pco_app.get(f"{PCO}/callback?error=access_denied", allow_redirects=False)
    assert parse_qs(urlsplit(resp.headers["Location"]).query)["code"] == [
        "pco_authorization_refused"]
    status = await (await pco_app.get(PCO, headers=church.auth)).json()
    assert status["status"] == "disconnected" and status["last_run"] is None
    await problem(await pco_app.post(f"{PCO}/sync", headers=church.auth, json={}), 409,
                  "pco_not_connected")


async def test_a_re_signed_or_replayed_state_is_refused(pco_app: Client,
                                                         pco_sim: RunningPcoSim) -> None:
    """A state whose body is ours but whose signature is not, and a state already used once
    (with a fresh code from Planning Center), are both refused; the genuine one connects."""
    church = await register(pco_app)
    resp = await pco_app.post(f"{PCO}/connect", headers=church.auth)
    url = (await resp.json())["authorization_url"]

    async def authorized() -> tuple[str, str]:      # (code, state) Planning Center sends back
        async with aiohttp.ClientSession() as http, http.get(url,
                                                             allow_redirects=False) as back:
            query = parse_qs(urlsplit(back.headers["Location"]).query)
        return query["code"][0], query["state"][0]

    async def landed(code: str, state: str) -> dict[str, list[str]]:
        back = await pco_app.get(f"{PCO}/callback?{urlencode({'code': code, 'state': state})}",
                                 allow_redirects=False)
        return parse_qs(urlsplit(back.headers["Location"]).query)

    code, state = await authorized()
    body, _, sig = state.partition(".")
    forged = f"{body}.{'A' * len(sig)}"
    assert (await landed(code, forged))["code"] == ["pco_invalid_state"]
    assert (await landed(code, state))["planning_center"] == ["connected"]
    again, _ = await authorized()
    assert (await landed(again, state))["code"] == ["pco_invalid_state"]


async def test_a_change_there_shows_up_here_and_a_removal_marks_the_member(
    pco_app: Client, pco_sim: RunningPcoSim, pg_admin: PgTarget, settings: Settings,
) -> None:
    ann, eve = await _people(
        pco_sim, {"first_name": "Ann", "last_name": "Lee", "phone": "+12025550111"},
        {"first_name": "Eve", "last_name": "Ito", "phone": "+12025550112"})
    church, _ = await connect(pco_app, pco_sim)
    members = await _members(pg_admin, settings, church.tenant_id)
    # Ann texts STOP (here: the admin opts her out); Planning Center then changes her
    resp = await pco_app.post(f"/api/v1/members/{members[ann]['id']}/opt-out",
                              headers=church.auth, json={})
    assert resp.status == 200, await resp.text()
    await sim_call(pco_sim, "PATCH", f"/sim/people/{ann}",
                   {"last_name": "Lee-Park", "email": "ann@example.org"}, expect=200)

    async def changed() -> Any:
        m = (await _members(pg_admin, settings, church.tenant_id))[ann]
        return m if m["last_name"] == "Lee-Park" else None

    m = await wait_for(changed)       # the signed webhook made the sync run at once
    assert m["email"] == "ann@example.org"
    last = (await (await pco_app.get(PCO, headers=church.auth)).json())["last_run"]
    assert (last["kind"], last["trigger"]) == ("incremental", "webhook")
    assert m["opt_in"] == "opted_out"           # a sync never opts anyone back in
    # Eve is removed there: marked here, kept with her consent history
    await sim_call(pco_sim, "DELETE", f"/sim/people/{eve}", expect=204)

    async def marked() -> Any:
        m = (await _members(pg_admin, settings, church.tenant_id))[eve]
        return m if m["pco_removed_at"] is not None else None

    await wait_for(marked)
    async with church_db(pg_admin, settings, church.tenant_id) as conn:
        history = await conn.fetchval(
            "SELECT count(*) FROM consent_events WHERE member_id = $1",
            (await _members(pg_admin, settings, church.tenant_id))[eve]["id"])
    assert history == 1
    # a full sync agrees and changes nothing more; Ann is still out
    prev = (await (await pco_app.get(PCO, headers=church.auth)).json())["last_run"]["id"]
    resp = await pco_app.post(f"{PCO}/sync", headers=church.auth, json={"full": True})
    assert resp.status == 202 and (await resp.json())["kind"] == "full"
    run = (await synced(church, after=prev))["last_run"]
    assert (run["status"], run["fetched"], run["created"], run["removed"]) == ("done", 1, 0, 0)
    assert (await _members(pg_admin, settings, church.tenant_id))[ann]["opt_in"] == "opted_out"


async def test_a_phone_held_by_another_member_is_reported_not_merged(
    pco_app: Client, pco_sim: RunningPcoSim, pg_admin: PgTarget, settings: Settings,
) -> None:
    church = await register(pco_app)
    for first, phone in (("Zed", "+12025550121"), ("Ann", "+12025550122")):
        resp = await pco_app.post("/api/v1/members", headers=church.auth, json={
            "first_name": first, "last_name": "Lee", "phone": phone})
        assert resp.status == 201, await resp.text()
    ann, other, twin = await _people(
        pco_sim, {"first_name": "Ann", "last_name": "Lee", "phone": "+12025550122"},
        {"first_name": "Other", "last_name": "Person", "phone": "+12025550121"},
        {"first_name": "Twin", "last_name": "Lee", "phone": "+12025550122"})
    # connect this church (register already happened: drive the same round trip)
    resp = await pco_app.post(f"{PCO}/connect", headers=church.auth)
    url = (await resp.json())["authorization_url"]
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(url, allow_redirects=False) as back:
        parts = urlsplit(back.headers["Location"])
    resp = await pco_app.get(f"{parts.path}?{parts.query}", allow_redirects=False)
    assert parse_qs(urlsplit(resp.headers["Location"]).query)["planning_center"] == ["connected"]
    run = (await synced(church))["last_run"]
    assert (run["created"], run["updated"], run["skipped"]) == (0, 1, 2)
    assert {(e["person_id"], e["code"]) for e in run["errors"]} == {
        (other, "phone_in_use"), (twin, "phone_in_use")}
    members = await _members(pg_admin, settings, church.tenant_id)
    assert members[ann]["first_name"] == "Ann"                 # linked: same name, same phone
    assert members["+12025550121"]["first_name"] == "Zed"      # untouched


async def test_tokens_refresh_before_they_expire(
    pco_app: Client, pco_sim: RunningPcoSim, pg_admin: PgTarget, settings: Settings,
    box: SecretBox,
) -> None:
    await _people(pco_sim, {"first_name": "Ann", "last_name": "Lee", "phone": "+12025550131"})
    await sim_call(pco_sim, "POST", "/sim/config", {"token_ttl": 60}, expect=200)
    church, status = await connect(pco_app, pco_sim)
    assert status["last_run"]["status"] == "done"
    stats = await sim_call(pco_sim, "GET", "/sim/stats")
    assert stats["refreshes"] >= 1 and stats.get("unauthorized", 0) == 0
    async with church_db(pg_admin, settings, church.tenant_id) as conn:
        row = await conn.fetchrow("SELECT access_sealed, expires_at FROM pco_connection")
    assert pco_sim.state.valid_access(box.open(row["access_sealed"], "pco_access"))
    # an access token refused anyway (revoked behind our back) is refreshed once and retried
    await sim_call(pco_sim, "POST", "/sim/config", {"token_ttl": 7200}, expect=200)
    for tok in pco_sim.state.tokens.values():
        if tok.access == box.open(row["access_sealed"], "pco_access"):
            tok.expires_at = 0
    prev = status["last_run"]["id"]
    await pco_app.post(f"{PCO}/sync", headers=church.auth, json={})
    after = await synced(church, after=prev)
    assert after["last_run"]["status"] == "done", after


async def test_disconnect_revokes_the_tokens_and_the_webhooks(
    pco_app: Client, pco_sim: RunningPcoSim, pg_admin: PgTarget, settings: Settings,
) -> None:
    ann, = await _people(pco_sim, {"first_name": "Ann", "last_name": "Lee",
                                   "phone": "+12025550141"})
    church, _ = await connect(pco_app, pco_sim)
    stats = await sim_call(pco_sim, "GET", "/sim/stats")
    assert stats["live_tokens"] == 1 and len(stats["subscriptions"]) == 3
    resp = await pco_app.delete(PCO, headers=church.auth)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"status": "disconnected", "revoked": True}
    stats = await sim_call(pco_sim, "GET", "/sim/stats")
    assert stats["live_tokens"] == 0 and stats["subscriptions"] == []
    assert stats["revocations"] >= 1
    status = await (await pco_app.get(PCO, headers=church.auth)).json()
    assert status["status"] == "disconnected" and status["organization_id"] is None
    async with church_db(pg_admin, settings, church.tenant_id) as conn:
        row = await conn.fetchrow("SELECT access_sealed, refresh_sealed FROM pco_connection")
    assert row["access_sealed"] is None and row["refresh_sealed"] is None
    assert ann in await _members(pg_admin, settings, church.tenant_id)   # members stay
    await problem(await pco_app.delete(PCO, headers=church.auth), 409, "pco_not_connected")
    await problem(await pco_app.post(f"{PCO}/sync", headers=church.auth, json={}), 409,
                  "pco_not_connected")


async def test_webhooks_need_the_subscription_secret(
    pco_app: Client, pco_sim: RunningPcoSim,
) -> None:
    from ywmessaging.integrations.pco_sim.delivery import delivery_body, sign

    await connect(pco_app, pco_sim)
    body = delivery_body(pco_sim.state, "people.v2.events.person.updated",
                         {"type": "Person", "id": "1", "attributes": {}})
    secret = next(s["secret"] for s in pco_sim.state.subscriptions.values()
                  if s["name"].endswith("updated"))
    hook = "/webhooks/planning-center"
    await problem(await pco_app.post(hook, data=body), 401, "pco_signature_invalid")
    await problem(await pco_app.post(hook, data=body, headers={
        "X-PCO-Webhooks-Authenticity": sign("wrong", body)}), 401, "pco_signature_invalid")
    await problem(await pco_app.post(hook, data=body + b" ", headers={
        "X-PCO-Webhooks-Authenticity": sign(secret, body)}), 401, "pco_signature_invalid")
    resp = await pco_app.post(hook, data=body, headers={
        "X-PCO-Webhooks-Authenticity": sign(secret, body), "Content-Type": "application/json"})
    assert resp.status == 200, await resp.text()


async def test_lists_become_groups_when_the_church_chooses(
    pco_app: Client, pco_sim: RunningPcoSim, pg_admin: PgTarget, settings: Settings,
) -> None:
    ann, bob = await _people(
        pco_sim, {"first_name": "Ann", "last_name": "Lee", "phone": "+12025550151"},
        {"first_name": "Bob", "last_name": "Ray", "phone": "+12025550152"})
    await sim_call(pco_sim, "POST", "/sim/lists", {"name": "Choir", "person_ids": [ann]},
                   expect=201)
    church, status = await connect(pco_app, pco_sim)
    groups = await (await pco_app.get("/api/v1/groups", headers=church.auth)).json()
    assert "Choir" not in str(groups)                           # not chosen yet
    resp = await pco_app.patch(PCO, headers=church.auth, json={"sync_lists": True})
    assert resp.status == 200 and (await resp.json())["sync_lists"] is True
    await pco_app.post(f"{PCO}/sync", headers=church.auth, json={})
    await synced(church, after=status["last_run"]["id"])
    async with church_db(pg_admin, settings, church.tenant_id) as conn:
        rows = await conn.fetch(
            "SELECT g.name, m.pco_person_id FROM groups g JOIN group_members gm "
            "ON gm.group_id = g.id JOIN members m ON m.id = gm.member_id "
            "WHERE g.pco_list_id IS NOT NULL")
    assert [(r["name"], r["pco_person_id"]) for r in rows] == [("Choir", ann)]
    _ = bob


async def test_the_sync_keeps_within_the_rate_limit(
    pco_app: Client, pco_sim: RunningPcoSim,
) -> None:
    await sim_call(pco_sim, "POST", "/sim/people/bulk", {"count": 450}, expect=200)
    await sim_call(pco_sim, "POST", "/sim/config", {"rate_limit": 3, "rate_period": 1},
                   expect=200)
    church, status = await connect(pco_app, pco_sim)
    run = status["last_run"]
    assert (run["status"], run["created"]) == ("done", 450)
    stats = await sim_call(pco_sim, "GET", "/sim/stats")
    assert stats.get("rate_limited", 0) == 0 and stats["max_in_window"] <= 3
    assert stats["served"] >= 5 + 1          # five pages, the organization, subscriptions
    _ = church


async def test_new_members_over_the_plan_limit_are_reported_per_person(
    make_pco_app: Any, pco_sim: RunningPcoSim, tmp_path: Path,
) -> None:
    plans = [{"code": code, "name": code.title(), "monthly_cents": 100 * n,
              "annual_cents": 1000 * n, "limits": {"members": 3 * n}}
             for n, code in ((1, "starter"), (2, "growth"), (3, "pro"))]
    catalogue = tmp_path / "plans.json"
    catalogue.write_bytes(orjson.dumps({"plans": plans}))
    client = await make_pco_app(billing_catalogue=catalogue)
    await sim_call(pco_sim, "POST", "/sim/people/bulk", {"count": 5}, expect=200)
    _, status = await connect(client, pco_sim)
    run = status["last_run"]
    assert (run["status"], run["created"], run["skipped"]) == ("done", 3, 2), run
    assert [e["code"] for e in run["errors"]] == ["plan_limit_reached"] * 2


def test_dev_talks_to_its_own_planning_center_simulator() -> None:
    from ywmessaging.commands import pco_sim as command

    dev = command.dev_settings(Settings(), "0.0.0.0", 8090)
    assert dev.pco_api_base == "http://127.0.0.1:8083"
    assert dev.pco_redirect_url == \
        "http://127.0.0.1:8090/api/v1/integrations/planning-center/callback"
    assert dev.pco_webhook_url == "http://127.0.0.1:8090/webhooks/planning-center"
    real = Settings(pco_api_base="https://api.planningcenteronline.com")
    assert command.dev_settings(real, "127.0.0.1", 8080) == real


async def test_dev_starts_the_planning_center_simulator() -> None:
    import socket

    from aiohttp import web

    from ywmessaging.commands import pco_sim as command
    from ywmessaging.commands.dev import add_dev_services

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = Settings(pco_api_base=f"http://127.0.0.1:{port}", pco_sim_port=port)
    app = web.Application()
    app.cleanup_ctx.append(command.dev_ctx(s))
    runner = web.AppRunner(app)
    await runner.setup()             # runs the cleanup context: the simulator listens
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{s.pco_api_base}/") as resp:
            assert (await resp.json())["simulator"] == "planning-center"
    finally:
        await runner.cleanup()
    dev_app = web.Application()
    add_dev_services(dev_app, Settings())
    names = [getattr(c, "__qualname__", "") for c in dev_app.cleanup_ctx]
    assert any("pco_sim" in getattr(c, "__module__", "") for c in dev_app.cleanup_ctx), names


async def test_the_schedule_syncs_a_church_whose_turn_has_come(
    pco_app: Client, pco_sim: RunningPcoSim, pg_admin: PgTarget, settings: Settings,
    registry_conn: Any,
) -> None:
    from ywmessaging.integrations.keys import PCO_RUNNER

    church, status = await connect(pco_app, pco_sim)
    due = await registry_conn.fetchval(
        "SELECT next_sync_at > now() + interval '10 minutes' FROM pco_links "
        "WHERE tenant_id = $1", uuid.UUID(church.tenant_id))
    assert due is True                      # the connection's own sync counts: next in an hour
    pco_sim.state.subscriptions.clear()     # no webhook: only the schedule can bring Ann
    ann, = await _people(pco_sim, {"first_name": "Ann", "last_name": "Lee",
                                   "phone": "+12025550161"})
    await registry_conn.execute(
        "UPDATE pco_links SET next_sync_at = now() - interval '1 second' WHERE tenant_id = $1",
        uuid.UUID(church.tenant_id))
    assert pco_app.app is not None
    pco_app.app[PCO_RUNNER].kick()
    run = (await synced(church, after=status["last_run"]["id"]))["last_run"]
    assert (run["trigger"], run["status"], run["created"]) == ("schedule", "done", 1)
    assert ann in await _members(pg_admin, settings, church.tenant_id)


async def test_a_full_sync_finds_a_removal_whose_webhook_was_lost(
    pco_app: Client, pco_sim: RunningPcoSim, pg_admin: PgTarget, settings: Settings,
) -> None:
    ann, bob = await _people(
        pco_sim, {"first_name": "Ann", "last_name": "Lee", "phone": "+12025550171"},
        {"first_name": "Bob", "last_name": "Ray", "phone": "+12025550172"})
    church, status = await connect(pco_app, pco_sim)
    pco_sim.state.subscriptions.clear()               # the webhook never comes
    await sim_call(pco_sim, "DELETE", f"/sim/people/{bob}", expect=204)
    resp = await pco_app.post(f"{PCO}/sync", headers=church.auth, json={"full": True})
    assert resp.status == 202
    run = (await synced(church, after=status["last_run"]["id"]))["last_run"]
    assert (run["status"], run["fetched"], run["removed"]) == ("done", 1, 1)
    members = await _members(pg_admin, settings, church.tenant_id)
    assert members[bob]["pco_removed_at"] is not None and members[ann]["pco_removed_at"] is None
