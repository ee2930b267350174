"""Onboarding derived from real data, and NPS answers and score, over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.integration.auth_fixtures import Client, problem, register
from tests.integration.carrier_sim_fixtures import *  # noqa: F403
from tests.integration.carrier_sim_fixtures import random_number, tenant_db, wait_until
from ywmessaging.db.dsn import PgTarget


def _steps(body: dict[str, object]) -> dict[str, bool]:
    return {s["id"]: s["completed"] for s in body["steps"]}  # type: ignore[attr-defined]


async def test_onboarding_follows_the_churchs_data(api_client: Client) -> None:
    church = await register(api_client)
    first = await (await api_client.get("/api/v1/onboarding", headers=church.auth)).json()
    assert first["total"] == 6 and first["is_complete"] is False
    assert _steps(first)["add_members"] is False and _steps(first)["church_profile"] is False
    resp = await api_client.post("/api/v1/members", headers=church.auth, json={
        "first_name": "Ann", "last_name": "Lee", "phone": "(202) 555-0173"})
    assert resp.status == 201, await resp.text()
    await api_client.patch("/api/v1/church", headers=church.auth,
                           json={"brand": {"legal_name": "Grace", "ein": "12-3456789"}})
    now = await (await api_client.get("/api/v1/onboarding", headers=church.auth)).json()
    assert _steps(now)["add_members"] is True and _steps(now)["church_profile"] is True
    assert now["completed"] == first["completed"] + 2
    assert now["percentage"] == round(100 * now["completed"] / 6)
    added = next(s for s in now["steps"] if s["id"] == "add_members")
    assert added["completed_at"] is not None
    other = await register(api_client)
    theirs = await (await api_client.get("/api/v1/onboarding", headers=other.auth)).json()
    assert _steps(theirs)["add_members"] is False


async def test_nps_answers_and_score(api_client: Client) -> None:
    church = await register(api_client)
    empty = await (await api_client.get("/api/v1/nps/summary", headers=church.auth)).json()
    assert empty["responses"] == 0 and empty["nps"] is None and empty["by_category"] == {}
    for score, category in ((10, "feedback"), (9, "feedback"), (7, "bug"), (3, "bug")):
        resp = await api_client.post("/api/v1/nps", headers=church.auth, json={
            "score": score, "category": category, "comment": "line one\nline two"})
        body = await resp.json()
        assert resp.status == 201, body
        assert body["score"] == score and body["admin_id"] == church.admin_id
    summary = await (await api_client.get("/api/v1/nps/summary?days=7",
                                          headers=church.auth)).json()
    assert (summary["responses"], summary["promoters"], summary["passives"],
            summary["detractors"]) == (4, 2, 1, 1)
    assert summary["nps"] == 25 and summary["average"] == 7.25
    assert summary["by_category"]["feedback"]["nps"] == 100
    assert summary["by_category"]["bug"]["nps"] == -50
    other = await register(api_client)
    theirs = await (await api_client.get("/api/v1/nps/summary", headers=other.auth)).json()
    assert theirs["responses"] == 0
    log = await (await api_client.get("/api/v1/audit-log?action=nps",
                                      headers=church.auth)).json()
    assert len(log["items"]) == 4


async def test_bad_nps_input_is_refused(api_client: Client) -> None:
    church = await register(api_client)
    for bad in ({}, {"score": 11}, {"score": -1}, {"score": 5.5}, {"score": True},
                {"score": "9"}, {"score": 9, "category": "rant"},
                {"score": 9, "comment": "x" * 2001}, {"score": 9, "extra": 1}):
        await problem(await api_client.post("/api/v1/nps", headers=church.auth, json=bad),
                      422, "validation_failed")
    for query in ("days=0", "days=366", "days=abc", "days=1&days=2", "weeks=2"):
        await problem(await api_client.get(f"/api/v1/nps/summary?{query}",
                                           headers=church.auth), 422, "validation_failed")
    await problem(await api_client.get("/api/v1/onboarding"), 401, "unauthorized")


async def test_every_completed_step_says_since_when(
        msg_client: Client, registry_conn: Any, pg_admin: PgTarget) -> None:
    before = datetime.now(UTC)
    church = await register(msg_client)
    auth = church.auth
    for path, body in (("/api/v1/branches", {"name": "North"}),
                       ("/api/v1/groups", {"name": "Choir"}),
                       ("/api/v1/members", {"first_name": "Ann", "last_name": "Lee",
                                            "phone": "(202) 555-0173"})):
        resp = await msg_client.post(path, headers=auth, json=body)
        assert resp.status == 201, await resp.text()
    resp = await msg_client.patch("/api/v1/church", headers=auth, json={
        "brand": {"legal_name": "Grace", "ein": "12-3456789"}})
    assert resp.status == 200, await resp.text()
    resp = await msg_client.post("/api/v1/numbers", headers=auth,
                                 json={"phone_number": random_number()})
    assert resp.status == 201, await resp.text()
    # a first message sent (a conversation reply: no broadcast was queued)
    async with tenant_db(pg_admin, registry_conn, church.tenant_id) as db:
        await db.execute("INSERT INTO outbox (to_phone, body, state, sent_at)"
                         " VALUES ('+12025550173', 'Hi', 'sent', now())")

    async def complete() -> Any:  # the number is `pending` until its carrier order completes
        doc = await (await msg_client.get("/api/v1/onboarding", headers=auth)).json()
        return doc if doc["is_complete"] else None

    now = await wait_until(complete, timeout=15)
    for step in now["steps"]:
        assert step["completed_at"] is not None, step
        at = datetime.fromisoformat(step["completed_at"])
        assert before - timedelta(seconds=5) <= at <= datetime.now(UTC), step
