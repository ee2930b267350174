"""Issue 13 parts 2-4 over real HTTP with the carrier simulator: inbound and outbound MMS,
a second number for a branch (its broadcasts go from it, a member's reply to it lands in the
conversation on it, releasing it leaves the other alone), conversations started by staff,
welcome texts, and the NPS answers listed."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from tests.integration.sending_fixtures import *  # noqa: F403
from tests.integration.sending_fixtures import (
    Sending,
    problem,
    random_number,
    running_worker,
    sim_inbound,
    wait_until,
)
from ywmessaging.config import Settings

PHOTO = "https://cdn.example.org/picnic/photo.jpg"


def _phone() -> str:
    """A number phonenumbers takes for a real one (members added through the API)."""
    return f"+1206{secrets.choice('2346789')}{secrets.randbelow(10**6):06d}"


async def _call(sending: Sending, church: Any, method: str, path: str,
                status: int = 200, **kw: Any) -> Any:
    resp = await sending.client.request(method, path, headers=church.auth, **kw)
    doc = await resp.json(content_type=None)
    assert resp.status == status, doc
    return doc


async def _second_number(sending: Sending, church: Any) -> str:
    """Another active number of the church, owned by the simulator's account."""
    number = random_number()
    await sending.registry_conn.execute(
        "INSERT INTO phone_numbers (e164, tenant_id) VALUES ($1, $2)",
        number, uuid.UUID(church.tenant_id))
    sending.sim.state.add_number(number)
    return number


def _sent(sending: Sending) -> list[tuple[str, str, str, list[str]]]:
    """(from, to, text, media URLs) of every message the simulator accepted."""
    return [(m["from"]["phone_number"], m["to"][0]["phone_number"], m["text"],
             [x["url"] for x in m["media"]]) for m in sending.sim.state.messages]


async def test_inbound_mms_is_stored_and_an_mms_reply_goes_out(
        sending: Sending, send_settings: Settings) -> None:
    church, number, [phone] = await sending.church(members=1)
    await sim_inbound(sending.client, sending.sim, phone, number, "Look!", media=[
        {"url": "https://media.telnyx.example/inbound/abc.jpg", "content_type": "image/jpeg",
         "size": 1234, "hash_sha256": "ab" * 32}])

    async def thread() -> Any:
        page = await _call(sending, church, "GET", "/api/v1/conversations")
        return page["items"] or None

    [conv] = await wait_until(thread)
    assert conv["church_number"] == number
    msgs = await _call(sending, church, "GET", f"/api/v1/conversations/{conv['id']}/messages")
    [inbound] = msgs["items"]
    assert inbound["body"] == "Look!" and inbound["church_number"] == number
    assert inbound["media"] == [{"url": "https://media.telnyx.example/inbound/abc.jpg",
                                 "content_type": "image/jpeg", "size": 1234,
                                 "hash_sha256": "ab" * 32}]

    # media only (no text): still stored, the preview says so
    await sim_inbound(sending.client, sending.sim, phone, number, "",
                      media=["https://media.telnyx.example/inbound/b.png"])

    async def two() -> Any:
        page = await _call(sending, church, "GET",
                           f"/api/v1/conversations/{conv['id']}/messages")
        return page["items"] if len(page["items"]) == 2 else None

    newest = (await wait_until(two))[0]
    assert newest["body"] == "" and newest["media"][0]["content_type"] == "image/png"

    # refused by the spec's MediaUrls rule (tests/unit/test_media.py: the server's is the same)
    for bad in (["http://cdn.example.org/a.jpg"], [PHOTO] * 11, ["https://cdn.example.org/a.exe"]):
        resp = await sending.client.post(f"/api/v1/conversations/{conv['id']}/messages",
                                         headers=church.auth,
                                         json={"body": "x", "media_urls": bad})
        await problem(resp, 422, "validation_failed")
    reply = await _call(sending, church, "POST", f"/api/v1/conversations/{conv['id']}/messages",
                        201, json={"body": "Lovely picnic", "media_urls": [PHOTO]})
    assert reply["media"][0] == {"url": PHOTO, "content_type": "image/jpeg", "size": None,
                                 "hash_sha256": None}
    async with running_worker(sending.client, send_settings):
        await wait_until(lambda: _async(len(sending.sim.state.messages) == 1))
    assert _sent(sending) == [(number, phone, "Lovely picnic", [PHOTO])]
    assert sending.sim.state.messages[0]["type"] == "MMS"


async def _async(value: Any) -> Any:
    return value


async def test_broadcast_mms_is_priced_as_one_message_each(sending: Sending,
                                                           send_settings: Settings) -> None:
    church, number, _ = await sending.church(members=3)
    body = {"body": "A" * 200, "target": {"all": True}}
    sms = await _call(sending, church, "POST", "/api/v1/broadcasts/preview", json=body)
    assert (sms["message_type"], sms["segments"], sms["messages"]) == ("sms", 2, 3)
    assert sms["estimated_cost"] == round(3 * 2 * send_settings.cost_per_segment, 4)
    mms = await _call(sending, church, "POST", "/api/v1/broadcasts/preview",
                      json={**body, "media_urls": [PHOTO, PHOTO]})
    assert (mms["message_type"], mms["media_count"], mms["messages"]) == ("mms", 2, 3)
    assert mms["estimated_cost"] == round(3 * send_settings.cost_per_mms, 4)
    made = await sending.broadcast(church, {**body, "media_urls": [PHOTO]})
    assert made["media_urls"] == [PHOTO]
    async with running_worker(sending.client, send_settings):
        await wait_until(lambda: _async(len(sending.sim.state.messages) == 3))
    assert {(f, media[0]) for f, _, _, media in _sent(sending)} == {(number, PHOTO)}


async def test_a_second_number_serves_its_branch(sending: Sending,
                                                 send_settings: Settings) -> None:
    church, main, phones = await sending.church(members=2)
    second = await _second_number(sending, church)
    branch = await _call(sending, church, "POST", "/api/v1/branches", 201,
                         json={"name": "North campus"})
    async with sending.db(church) as db:
        await db.execute("UPDATE members SET branch_id = $1 WHERE phone = $2",
                         uuid.UUID(branch["id"]), phones[0])
    resp = await sending.client.patch(f"/api/v1/numbers/{second}", headers=church.auth,
                                      json={"branch_id": str(uuid.uuid4())})
    await problem(resp, 422, "validation_failed")
    assigned = await _call(sending, church, "PATCH", f"/api/v1/numbers/{second}",
                           json={"branch_id": branch["id"]})
    assert (assigned["branch_id"], assigned["default"]) == (branch["id"], False)
    listed = {n["phone_number"]: n for n in
              (await _call(sending, church, "GET", "/api/v1/numbers"))["numbers"]}
    assert listed[main]["default"] and listed[main]["branch_id"] is None
    assert listed[second]["branch_id"] == branch["id"]

    await sending.broadcast(church, {"body": "North only", "target": {
        "branch_ids": [branch["id"]]}})
    await sending.broadcast(church, {"body": "Everyone", "target": {"all": True}})
    async with running_worker(sending.client, send_settings):
        await wait_until(lambda: _async(len(sending.sim.state.messages) == 3))
        assert sorted(_sent(sending)) == sorted([
            (second, phones[0], "North only", []), (main, phones[0], "Everyone", []),
            (main, phones[1], "Everyone", [])])
        # the member answers the branch's number: the conversation runs on it
        await sim_inbound(sending.client, sending.sim, phones[0], second, "Count me in")

        async def conv() -> Any:
            page = await _call(sending, church, "GET", "/api/v1/conversations")
            return page["items"][0] if page["items"] else None

        found = await wait_until(conv)
        assert found["church_number"] == second
        await _call(sending, church, "POST", f"/api/v1/conversations/{found['id']}/messages",
                    201, json={"body": "Great"})
        await wait_until(lambda: _async(len(sending.sim.state.messages) == 4))
    assert _sent(sending)[-1] == (second, phones[0], "Great", [])

    # a stranger who texts the branch's number joins the branch
    stranger = random_number()
    await sim_inbound(sending.client, sending.sim, stranger, second, "Who is this?")
    async with sending.db(church) as db:
        joined = await wait_until(lambda: db.fetchval(
            "SELECT branch_id FROM members WHERE phone = $1", stranger))
    assert str(joined) == branch["id"]

    # deleting a branch frees its number (GET shows no branch); assign it again
    other = await _call(sending, church, "POST", "/api/v1/branches", 201,
                        json={"name": "Old annex"})
    await _call(sending, church, "PATCH", f"/api/v1/numbers/{second}",
                json={"branch_id": other["id"]})
    resp = await sending.client.delete(f"/api/v1/branches/{other['id']}", headers=church.auth)
    assert resp.status == 204, await resp.text()
    listed = {n["phone_number"]: n for n in
              (await _call(sending, church, "GET", "/api/v1/numbers"))["numbers"]}
    assert listed[second]["branch_id"] is None
    await _call(sending, church, "PATCH", f"/api/v1/numbers/{second}",
                json={"branch_id": branch["id"]})

    # releasing the branch's number leaves the main one alone
    resp = await sending.client.delete(f"/api/v1/numbers/{second}", headers=church.auth)
    assert resp.status == 204
    church_doc = await _call(sending, church, "GET", "/api/v1/church")
    assert church_doc["sender_number"] == main
    listed = {n["phone_number"]: n for n in
              (await _call(sending, church, "GET", "/api/v1/numbers"))["numbers"]}
    assert listed[main]["status"] == "active" and listed[second]["status"] == "archived"
    assert listed[second]["branch_id"] is None
    resp = await sending.client.patch(f"/api/v1/numbers/{second}", headers=church.auth,
                                      json={"default": True})
    await problem(resp, 409, "number_not_active")
    # releasing the default makes the remaining active number the default
    third = await _second_number(sending, church)
    resp = await sending.client.delete(f"/api/v1/numbers/{main}", headers=church.auth)
    assert resp.status == 204
    assert (await _call(sending, church, "GET", "/api/v1/church"))["sender_number"] == third


async def test_staff_start_a_conversation(sending: Sending, send_settings: Settings) -> None:
    church, _, phones = await sending.church(members=2, opted_out=1)
    second = await _second_number(sending, church)
    async with sending.db(church) as db:
        ids = {r["phone"]: str(r["id"]) for r in await db.fetch("SELECT id, phone FROM members")}
    opted_out, opted_in = ids[phones[0]], ids[phones[1]]
    resp = await sending.client.post("/api/v1/conversations", headers=church.auth,
                                      json={"member_id": opted_out, "body": "Hi"})
    await problem(resp, 409, "member_opted_out")
    resp = await sending.client.post("/api/v1/conversations", headers=church.auth,
                                      json={"member_id": str(uuid.uuid4()), "body": "Hi"})
    await problem(resp, 404, "not_found")
    resp = await sending.client.post("/api/v1/conversations", headers=church.auth, json={
        "member_id": opted_in, "body": "Hi", "from_number": random_number()})
    await problem(resp, 422, "validation_failed")

    made = await _call(sending, church, "POST", "/api/v1/conversations", 201, json={
        "member_id": opted_in, "body": "Welcome to small group!", "media_urls": [PHOTO],
        "from_number": second})
    conv, msg = made["conversation"], made["message"]
    assert conv["church_number"] == second and conv["member"]["id"] == opted_in
    assert msg["direction"] == "outbound" and msg["delivery_status"] == "queued"
    again = await _call(sending, church, "POST", "/api/v1/conversations", 201, json={
        "member_id": opted_in, "body": "Second note"})
    assert again["conversation"]["id"] == conv["id"]              # one conversation per member
    assert again["conversation"]["church_number"] == second       # it keeps its number
    async with running_worker(sending.client, send_settings):
        await wait_until(lambda: _async(len(sending.sim.state.messages) == 2))
    assert sorted(_sent(sending)) == sorted([
        (second, phones[1], "Welcome to small group!", [PHOTO]),
        (second, phones[1], "Second note", [])])


async def test_welcome_text_once_when_enabled(sending: Sending, send_settings: Settings) -> None:
    church, number, _ = await sending.church()
    add = {"first_name": "Ann", "last_name": "Lee", "phone": _phone()}
    first = await _call(sending, church, "POST", "/api/v1/members", 201, json=add)
    await _call(sending, church, "PATCH", "/api/v1/church", json={
        "welcome_enabled": True, "welcome_message": "Welcome to Grace Church texts!"})
    profile = await _call(sending, church, "GET", "/api/v1/church")
    assert profile["welcome_enabled"] is True
    second = await _call(sending, church, "POST", "/api/v1/members", 201,
                         json={**add, "phone": _phone()})
    # opting out and in again does not welcome twice; the member added before is welcomed
    # when they opt in
    for mid in (second["id"], first["id"]):
        await _call(sending, church, "POST", f"/api/v1/members/{mid}/opt-out", json={})
        await _call(sending, church, "POST", f"/api/v1/members/{mid}/opt-in", json={})
    # a member who texts START (after STOP) is welcomed too, once
    stranger = random_number()
    await sim_inbound(sending.client, sending.sim, stranger, number, "STOP")
    await sim_inbound(sending.client, sending.sim, stranger, number, "START",
                      occurred_at="2030-01-01T00:00:00.000+00:00")
    async with sending.db(church) as db:
        await wait_until(lambda: db.fetchval("SELECT count(*) = 3 FROM welcome_texts"))
        async with running_worker(sending.client, send_settings):
            await wait_until(lambda: db.fetchval(
                "SELECT count(*) = 3 FROM outbox WHERE welcome AND state IN ('sent', "
                "'delivered')"))
    welcomes = [t for _, t, text, _ in _sent(sending) if text == "Welcome to Grace Church texts!"]
    assert sorted(welcomes) == sorted([second["phone"], first["phone"], stranger])


async def test_welcome_waits_for_quiet_hours(sending: Sending, send_settings: Settings) -> None:
    church, _, _ = await sending.church()
    await _call(sending, church, "PATCH", "/api/v1/church", json={
        "welcome_enabled": True, "timezone": "UTC",
        "quiet_hours": {"start": "00:00", "end": "23:59"}})
    await _call(sending, church, "POST", "/api/v1/members", 201, json={
        "first_name": "Bo", "last_name": "Ng", "phone": _phone()})
    async with sending.db(church) as db, running_worker(sending.client, send_settings):
        await wait_until(lambda: db.fetchval(
            "SELECT next_attempt_at > now() + interval '1 minute' FROM outbox WHERE welcome"))
        assert await db.fetchval("SELECT state FROM outbox WHERE welcome") == "queued"
    assert sending.sim.state.messages == []


async def test_nps_answers_are_listed_newest_first(sending: Sending) -> None:
    church, _, _ = await sending.church()
    for score, category in ((9, "general"), (3, "bug"), (10, "general")):
        await _call(sending, church, "POST", "/api/v1/nps", 201,
                    json={"score": score, "category": category})
    page = await _call(sending, church, "GET", "/api/v1/nps?limit=2")
    assert [r["score"] for r in page["items"]] == [10, 3] and page["next_cursor"]
    rest = await _call(sending, church, "GET", f"/api/v1/nps?limit=2&cursor={page['next_cursor']}")
    assert [r["score"] for r in rest["items"]] == [9] and rest["next_cursor"] is None
    bugs = await _call(sending, church, "GET", "/api/v1/nps?category=bug")
    assert [r["score"] for r in bugs["items"]] == [3]
