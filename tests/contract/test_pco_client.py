"""Contract test: the Planning Center simulator as `pypco` (the Python Planning Center client,
pinned in pyproject.toml) sees it, for the calls the sync makes.

pypco is synchronous (requests), so it runs in a thread while the simulator serves on the
test's loop. It exchanges an authorization code and refreshes tokens through its own OAuth
helpers (their fixed Planning Center host pointed at the simulator); reads the organization;
iterates `/people/v2/people` with `include=phone_numbers,emails`, `order` and
`where[updated_at][gte]` across pages (its iterator follows `links.next` and injects each
person's included phone numbers and emails, matched through the relationships); gets a
single person; iterates lists and a list's people; creates, lists and deletes webhook
subscriptions; and waits out 429 answers by their `Retry-After`. A webhook's
`X-PCO-Webhooks-Authenticity` is checked with an HMAC-SHA256 written here from Planning
Center's description, independent of the simulator's code.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import orjson
import pytest
import requests
from aiohttp import web
from pypco import PCO, user_auth_helpers
from pypco.exceptions import PCORequestException

from ywmessaging.integrations.pco_sim import RunningPcoSim, start_pco_sim

REAL = "https://api.planningcenteronline.com"
REDIRECT = "http://127.0.0.1:9/callback"


@pytest.fixture
async def sim() -> AsyncIterator[RunningPcoSim]:
    running = await start_pco_sim(client_id="app-id", client_secret="app-secret")
    yield running
    await running.stop()


@pytest.fixture
def oauth_to_sim(sim: RunningPcoSim, monkeypatch: pytest.MonkeyPatch) -> None:
    """pypco's OAuth helpers post to Planning Center's real host: send them to the sim."""
    original = user_auth_helpers._do_oauth_post

    def post(url: str, **kwargs: Any) -> requests.Response:
        return original(url.replace(REAL, sim.base_url), **kwargs)

    monkeypatch.setattr(user_auth_helpers, "_do_oauth_post", post)


async def _call(sim: RunningPcoSim, method: str, path: str, body: Any = None) -> Any:
    async with aiohttp.ClientSession() as http, http.request(
            method, f"{sim.base_url}{path}", json=body, allow_redirects=False) as resp:
        if resp.status == 302:
            return resp.headers["Location"]
        return await resp.json(content_type=None)


async def _token(sim: RunningPcoSim) -> dict[str, Any]:
    """An authorization code from the simulator's consent page, exchanged by pypco."""
    location = await _call(sim, "GET", "/oauth/authorize?" + "&".join([
        "client_id=app-id", f"redirect_uri={REDIRECT}", "response_type=code",
        "scope=people", "state=s1"]))
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["s1"]
    grant: dict[str, Any] = await asyncio.to_thread(
        user_auth_helpers.get_oauth_access_token, "app-id", "app-secret", query["code"][0],
        REDIRECT)
    return grant


async def test_pypco_exchanges_and_refreshes_tokens(sim: RunningPcoSim,
                                                    oauth_to_sim: None) -> None:
    grant = await _token(sim)
    assert grant["token_type"] == "bearer" and grant["expires_in"] > 0
    fresh = await asyncio.to_thread(user_auth_helpers.get_oauth_refresh_token, "app-id",
                                    "app-secret", grant["refresh_token"])
    assert fresh["access_token"] != grant["access_token"]
    pco = PCO(token=fresh["access_token"], api_base=sim.base_url)
    org = await asyncio.to_thread(pco.get, "/people/v2")
    assert org["data"]["type"] == "Organization"
    stale = PCO(token=grant["access_token"], api_base=sim.base_url)   # rotated away
    with pytest.raises(PCORequestException) as refused:
        await asyncio.to_thread(stale.get, "/people/v2")
    assert refused.value.status_code == 401
    with pytest.raises(PCORequestException):   # a used refresh token is refused
        await asyncio.to_thread(user_auth_helpers.get_oauth_refresh_token, "app-id",
                                "app-secret", grant["refresh_token"])


async def test_pypco_iterates_people_with_their_phones_and_emails(
    sim: RunningPcoSim, oauth_to_sim: None,
) -> None:
    for i in range(7):
        await _call(sim, "POST", "/sim/people", {
            "first_name": f"P{i}", "last_name": "Lee", "email": f"p{i}@example.org",
            "phones": [{"number": f"+1202555{1000 + i}", "location": "Mobile", "primary": True},
                       {"number": f"+1202556{1000 + i}", "location": "Home"}]})
    pco = PCO(token=(await _token(sim))["access_token"], api_base=sim.base_url)

    def everyone(**params: str) -> list[dict[str, Any]]:
        return list(pco.iterate("/people/v2/people", per_page=3,
                                include="phone_numbers,emails", **params))

    records = await asyncio.to_thread(everyone, order="updated_at")
    assert [r["data"]["attributes"]["first_name"] for r in records] == [f"P{i}" for i in range(7)]
    for r in records:
        kinds = sorted(i["type"] for i in r["included"])
        assert kinds == ["Email", "PhoneNumber", "PhoneNumber"]
        mobile = [i for i in r["included"] if i["type"] == "PhoneNumber"
                  and i["attributes"]["location"] == "Mobile"]
        assert len(mobile) == 1 and mobile[0]["attributes"]["primary"] is True
    # incremental: only those updated since the fourth one
    since = records[3]["data"]["attributes"]["updated_at"]
    later = await asyncio.to_thread(everyone, **{"where[updated_at][gte]": since})
    assert [r["data"]["id"] for r in later] == [r["data"]["id"] for r in records[3:]]
    one = await asyncio.to_thread(pco.get, f"/people/v2/people/{records[0]['data']['id']}",
                                  include="phone_numbers,emails")
    assert one["data"]["id"] == records[0]["data"]["id"] and len(one["included"]) == 3
    # a removed person is gone (404), as the full sync's check expects
    await _call(sim, "DELETE", f"/sim/people/{records[0]['data']['id']}")
    with pytest.raises(PCORequestException) as gone:
        await asyncio.to_thread(pco.get, f"/people/v2/people/{records[0]['data']['id']}")
    assert gone.value.status_code == 404


async def test_pypco_reads_lists_and_manages_webhook_subscriptions(
    sim: RunningPcoSim, oauth_to_sim: None,
) -> None:
    ids = []
    for i in range(3):
        doc = await _call(sim, "POST", "/sim/people", {"first_name": f"L{i}", "last_name": "X"})
        ids.append(doc["data"]["id"])
    await _call(sim, "POST", "/sim/lists", {"name": "Choir", "person_ids": ids[:2]})
    pco = PCO(token=(await _token(sim))["access_token"], api_base=sim.base_url)
    lists = await asyncio.to_thread(lambda: list(pco.iterate("/people/v2/lists")))
    assert [x["data"]["attributes"]["name"] for x in lists] == ["Choir"]
    members = await asyncio.to_thread(lambda: list(pco.iterate(
        f"/people/v2/lists/{lists[0]['data']['id']}/people", per_page=1)))
    assert [m["data"]["id"] for m in members] == ids[:2]
    made = await asyncio.to_thread(pco.post, "/webhooks/v2/subscriptions", pco.template(
        "Subscription", {"name": "people.v2.events.person.updated",
                         "url": "https://example.org/hook", "active": True}))
    assert len(made["data"]["attributes"]["authenticity_secret"]) >= 32
    subs = await asyncio.to_thread(lambda: list(pco.iterate("/webhooks/v2/subscriptions")))
    assert [s["data"]["id"] for s in subs] == [made["data"]["id"]]
    resp = await asyncio.to_thread(pco.delete, f"/webhooks/v2/subscriptions/{made['data']['id']}")
    assert resp.status_code == 204


async def test_pypco_waits_out_the_rate_limit(sim: RunningPcoSim, oauth_to_sim: None) -> None:
    for i in range(6):
        await _call(sim, "POST", "/sim/people", {"first_name": f"R{i}", "last_name": "Y"})
    await _call(sim, "POST", "/sim/config", {"rate_limit": 2, "rate_period": 1})
    pco = PCO(token=(await _token(sim))["access_token"], api_base=sim.base_url)
    records = await asyncio.to_thread(lambda: list(pco.iterate("/people/v2/people",
                                                               per_page=2)))
    assert len(records) == 6
    stats = await _call(sim, "GET", "/sim/stats")
    assert stats["rate_limited"] >= 1 and stats["max_in_window"] <= 2


async def test_webhooks_carry_planning_centers_authenticity_signature(
    sim: RunningPcoSim, oauth_to_sim: None,
) -> None:
    got: list[tuple[bytes, dict[str, str]]] = []

    async def hook(request: web.Request) -> web.Response:
        got.append((await request.read(), dict(request.headers)))
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    pco = PCO(token=(await _token(sim))["access_token"], api_base=sim.base_url)
    made = await asyncio.to_thread(pco.post, "/webhooks/v2/subscriptions", pco.template(
        "Subscription", {"name": "people.v2.events.person.created", "url": url}))
    secret = made["data"]["attributes"]["authenticity_secret"]
    await _call(sim, "POST", "/sim/people", {"first_name": "W", "last_name": "Z"})
    await sim.sender.idle()
    await runner.cleanup()
    (body, headers), = got
    want = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-PCO-Webhooks-Authenticity"], want)
    delivery = orjson.loads(body)["data"][0]
    assert delivery["type"] == "EventDelivery"
    assert delivery["attributes"]["name"] == "people.v2.events.person.created"
    person = orjson.loads(delivery["attributes"]["payload"])["data"]
    assert person["type"] == "Person" and person["attributes"]["first_name"] == "W"
    assert delivery["relationships"]["organization"]["data"]["id"] == sim.state.organization_id
