"""`/sim/*`: add, change and remove people (each sends its webhook), lists, bulk people for
benchmarks, the token lifetime and rate limit, and what the simulator saw."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .api import error, jsonapi, state_of
from .jsonapi import person_resource
from .keys import PCO_SIM_SENDER
from .state import RateWindow

EVENT = "people.v2.events.person.{}"


def _emit(request: web.Request, what: str, resource: dict[str, Any]) -> None:
    request.app[PCO_SIM_SENDER].emit(EVENT.format(what), resource)


async def add_person(request: web.Request) -> web.Response:
    """POST /sim/people {first_name, last_name, phone, phone_location, email}."""
    state = state_of(request)
    p = state.add_person(await request.json())
    doc = person_resource(state, p)
    _emit(request, "created", doc)
    return jsonapi({"data": doc}, 201)


async def bulk_people(request: web.Request) -> web.Response:
    """POST /sim/people/bulk {count}: that many people with distinct mobile numbers (no
    webhooks); for benchmarks."""
    state = state_of(request)
    count = int((await request.json()).get("count", 0))
    start = len(state.people)
    for i in range(start, start + count):
        state.add_person({"first_name": f"Person{i}", "last_name": "Bulk",
                          "phone": f"+1212{2000000 + i:07d}", "email": f"p{i}@example.org"})
    return web.json_response({"people": len(state.people)})


async def change_person(request: web.Request) -> web.Response:
    """PATCH /sim/people/{id}: names, phone(s), email; updated_at moves."""
    state = state_of(request)
    p = state.people.get(request.match_info["id"])
    if p is None:
        return error(404, "Not Found", "no such person")
    state.change_person(p, await request.json())
    doc = person_resource(state, p)
    _emit(request, "updated", doc)
    return jsonapi({"data": doc})


async def remove_person(request: web.Request) -> web.Response:
    """DELETE /sim/people/{id}: gone from the API, `person.destroyed` sent."""
    state = state_of(request)
    p = state.people.pop(request.match_info["id"], None)
    if p is None:
        return error(404, "Not Found", "no such person")
    for lst in state.lists.values():
        lst["person_ids"] = [i for i in lst["person_ids"] if i != p.id]
    _emit(request, "destroyed", {"type": "Person", "id": p.id, "attributes": {}})
    return web.Response(status=204)


async def add_list(request: web.Request) -> web.Response:
    """POST /sim/lists {name, person_ids}."""
    state = state_of(request)
    body = await request.json()
    lst: dict[str, Any] = {"id": state.next_id(), "name": str(body["name"]),
           "person_ids": [str(i) for i in body.get("person_ids", [])]}
    state.lists[lst["id"]] = lst
    return web.json_response(lst, status=201)


async def configure(request: web.Request) -> web.Response:
    """POST /sim/config {token_ttl, rate_limit, rate_period}."""
    state = state_of(request)
    body = await request.json()
    if "token_ttl" in body:
        state.token_ttl = float(body["token_ttl"])
    if "rate_limit" in body or "rate_period" in body:
        state.window = RateWindow(int(body.get("rate_limit", state.window.limit)),
                                  float(body.get("rate_period", state.window.period)))
    return web.json_response({"token_ttl": state.token_ttl, "rate_limit": state.window.limit,
                              "rate_period": state.window.period})


async def stats(request: web.Request) -> web.Response:
    """GET /sim/stats: requests served and refused, refreshes, revocations, the most
    requests seen in one window, live tokens, subscriptions."""
    state = state_of(request)
    live = {t.access for t in state.tokens.values() if state.valid_access(t.access)}
    return web.json_response({
        **state.stats, "max_in_window": state.window.max_seen,
        "rate_limit": state.window.limit, "rate_period": state.window.period,
        "live_tokens": len(live), "people": len(state.people),
        "subscriptions": [{"id": s["id"], "name": s["name"], "url": s["url"]}
                          for s in state.subscriptions.values()],
    })


async def home(request: web.Request) -> web.Response:
    """GET /: what this is."""
    return web.json_response({"simulator": "planning-center", "organization":
                              state_of(request).organization_id})


def add_control_routes(app: web.Application) -> None:
    """The `/sim/*` routes."""
    app.router.add_get("/", home)
    app.router.add_post("/sim/people", add_person)
    app.router.add_post("/sim/people/bulk", bulk_people)
    app.router.add_patch("/sim/people/{id}", change_person)
    app.router.add_delete("/sim/people/{id}", remove_person)
    app.router.add_post("/sim/lists", add_list)
    app.router.add_post("/sim/config", configure)
    app.router.add_get("/sim/stats", stats)
