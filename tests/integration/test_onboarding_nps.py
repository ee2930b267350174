"""Onboarding derived from real data, and NPS answers and score, over HTTP."""

from __future__ import annotations

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import Client, problem, register


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
