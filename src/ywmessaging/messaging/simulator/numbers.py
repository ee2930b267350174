"""The simulator's number API: search (`GET /v2/available_phone_numbers` with Telnyx's filters),
orders that stay `pending` until they complete (`POST /v2/number_orders`,
`GET /v2/number_orders/{id}`, a `number_order.complete` webhook), the account's numbers
(`GET /v2/phone_numbers`, paged, filtered) and release (`DELETE /v2/phone_numbers/{id}`)."""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any

from aiohttp import web

from .events import envelope, iso_now, number_order, settle_order
from .replies import (
    SIM_SENDER,
    SIM_STATE,
    authorized,
    json_body,
    ok,
    telnyx_error,
    unauthorized,
)
from .state import SimState

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
NDC = re.compile(r"^[2-9][0-9]{2}$")
# area code → (locality, state): the simulator's inventory with a place; other valid area
# codes have numbers too, but no locality or state to match a filter on
AREAS: dict[str, tuple[str, str]] = {
    "202": ("Washington", "DC"), "206": ("Seattle", "WA"), "212": ("New York", "NY"),
    "213": ("Los Angeles", "CA"), "214": ("Dallas", "TX"), "303": ("Denver", "CO"),
    "312": ("Chicago", "IL"), "404": ("Atlanta", "GA"), "415": ("San Francisco", "CA"),
    "512": ("Austin", "TX"), "615": ("Nashville", "TN"), "617": ("Boston", "MA"),
    "713": ("Houston", "TX"),
}
FEATURES = ("sms", "mms", "voice", "fax", "emergency")
KNOWN_FEATURES = (*FEATURES, "hd_voice", "international_sms", "local_calling")
PATTERNS = ("starts_with", "ends_with", "contains")
MAX_LIMIT = 100
# the release answer is a slimmer record than the listing's (Telnyx's delete response schema)
NOT_IN_DELETE_ANSWER = frozenset({"country_iso_alpha2", "messaging_campaign_id",
                                  "emergency_status", "inbound_call_screening", "source_type"})
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 20, 250


class BadFilter(ValueError):
    """A filter Telnyx would refuse (answered 400 `10015`)."""


def _features(query: Any) -> list[str]:
    """`filter[features]` as the SDK sends it (comma-separated) or repeated, or with `[]`."""
    raw = [*query.getall("filter[features]", []), *query.getall("filter[features][]", [])]
    wanted = [f.strip() for item in raw for f in item.split(",") if f.strip()]
    unknown = [f for f in wanted if f not in KNOWN_FEATURES]
    if unknown:
        raise BadFilter(f"Unknown feature: {unknown[0]}.")
    return wanted


def _region(area: str) -> list[dict[str, str]]:
    rows = [{"region_type": "country_code", "region_name": "US"}]
    if area in AREAS:
        locality, state = AREAS[area]
        rows[:0] = [{"region_type": "rate_center", "region_name": locality.upper()},
                    {"region_type": "state", "region_name": state}]
    return rows


def _available_row(number: str, area: str) -> dict[str, Any]:
    return {"record_type": "available_phone_number", "phone_number": number,
            "vanity_format": "", "best_effort": False, "quickship": True, "reservable": True,
            "features": [{"name": f} for f in FEATURES], "region_information": _region(area),
            "cost_information": {"monthly_cost": "1.00", "upfront_cost": "1.00",
                                 "currency": "USD"}}


def _matches(subject: str, patterns: dict[str, str]) -> bool:
    return (subject.startswith(patterns.get("starts_with", ""))
            and subject.endswith(patterns.get("ends_with", ""))
            and patterns.get("contains", "") in subject)


def search(query: Any, held: set[str]) -> list[dict[str, Any]]:
    """Numbers for sale matching Telnyx's filters: country_code, national_destination_code,
    locality, administrative_area, features, phone_number_type and
    phone_number[starts_with|ends_with|contains] (after the area code when one is given)."""
    country = (query.get("filter[country_code]") or "US").upper()
    ndc = query.get("filter[national_destination_code]")
    locality = (query.get("filter[locality]") or "").casefold()
    admin = (query.get("filter[administrative_area]") or "").upper()
    kind = query.get("filter[phone_number_type]") or "local"
    raw_limit = query.get("filter[limit]") or "10"
    if ndc is not None and not NDC.match(ndc):
        raise BadFilter("national_destination_code must be three digits, 2-9 first.")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise BadFilter(f"limit must be between 1 and {MAX_LIMIT}.")
    patterns = {p: query[f"filter[phone_number][{p}]"] for p in PATTERNS
                if query.get(f"filter[phone_number][{p}]")}
    if any(not v.isdigit() for v in patterns.values()):
        raise BadFilter("phone_number patterns must be digits.")
    wanted = set(_features(query))
    if country != "US" or kind != "local" or not wanted <= set(FEATURES):
        return []
    limit = int(raw_limit)
    areas = [ndc] if ndc else list(AREAS)
    rows: list[dict[str, Any]] = []
    for area in areas:
        place = AREAS.get(area)
        if locality and (place is None or place[0].casefold() != locality):
            continue
        if admin and (place is None or place[1] != admin):
            continue
        for i in range(100, 10_000):
            if len(rows) >= limit:
                return rows
            number = f"+1{area}555{i:04d}"
            subject = number[5:] if ndc else number[2:]   # Telnyx: the NDC excluded if given
            if number not in held and _matches(subject, patterns):
                rows.append(_available_row(number, area))
    return rows


async def available_numbers(request: web.Request) -> web.Response:
    """GET /v2/available_phone_numbers?filter[...]."""
    if not authorized(request):
        return unauthorized()
    held = {n["phone_number"] for n in request.app[SIM_STATE].numbers.values()}
    try:
        rows = search(request.query, held)
    except BadFilter as exc:
        return telnyx_error(400, "10015", detail=str(exc))
    return ok(rows, meta={"total_results": len(rows), "best_effort_results": 0})


def _complete(state: SimState, order: dict[str, Any], status: str) -> None:
    settle_order(order, status)
    for line in order["phone_numbers"]:
        record = state.number(line["phone_number"])
        if status == "failure":
            state.drop_number(line["phone_number"])
        elif record is not None:
            record.update(status="active", activated_at=iso_now(), updated_at=iso_now())


async def order_numbers(request: web.Request) -> web.Response:
    """POST /v2/number_orders {phone_numbers: [{phone_number}], messaging_profile_id?, ...}:
    answered `pending`; the numbers are `purchase-pending` until the order completes after
    `order_delay` seconds (`failure` when an `order_failure` fault is set), then
    `number_order.complete` is sent. With `order_delay` 0 the order completes before the
    answer, which then reads `success` (or `failure`)."""
    state, sender = request.app[SIM_STATE], request.app[SIM_SENDER]
    if not authorized(request):
        return unauthorized()
    body = await json_body(request) or {}
    lines = body.get("phone_numbers")
    if not isinstance(lines, list) or not lines:
        return telnyx_error(422, "10004", pointer="/phone_numbers")
    wanted = [p.get("phone_number") if isinstance(p, dict) else None for p in lines]
    if not all(isinstance(n, str) and E164.match(n) for n in wanted):
        return telnyx_error(422, "10016", pointer="/phone_numbers")
    numbers = [str(n) for n in wanted]
    if len(set(numbers)) != len(numbers) or any(state.number(n) for n in numbers):
        return telnyx_error(422, "20100", pointer="/phone_numbers")
    order = number_order(numbers, body)
    state.orders[order["id"]] = order
    state.counters["orders"] += 1
    for number in numbers:
        state.add_number(number, "purchase-pending",
                         messaging_profile_id=body.get("messaging_profile_id"),
                         customer_reference=body.get("customer_reference"))
    outcome = "failure" if state.take_fault(("order_failure",)) is not None else "success"
    if state.order_delay <= 0:   # completed before answering: the answer says so
        _complete(state, order, outcome)

    async def complete_later() -> None:
        if order["status"] == "pending":
            await asyncio.sleep(state.order_delay)
            _complete(state, order, outcome)
        if state.order_webhooks:
            await sender.deliver(envelope("number_order.complete", order))

    response = ok(order)   # serialized now, before the order moves on
    sender.spawn(complete_later())
    return response


async def get_order(request: web.Request) -> web.Response:
    """GET /v2/number_orders/{id}: the order and its status now."""
    if not authorized(request):
        return unauthorized()
    order = request.app[SIM_STATE].orders.get(request.match_info["id"])
    return ok(order) if order is not None else telnyx_error(404, "10005")


def _page_param(query: Any, name: str, default: int, top: int) -> int:
    raw = query.get(f"page[{name}]", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= top:
        raise BadFilter(f"page[{name}] must be between 1 and {top}.")
    return int(raw)


async def list_numbers(request: web.Request) -> web.Response:
    """GET /v2/phone_numbers?filter[phone_number]=&filter[status]=&page[number]=&page[size]=:
    the account's numbers, newest first, with Telnyx's pagination `meta`. The phone number
    filter matches digits anywhere in the number; any other character matches nothing."""
    if not authorized(request):
        return unauthorized()
    query = request.query
    try:
        page = _page_param(query, "number", 1, 1_000_000)
        size = _page_param(query, "size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    except BadFilter as exc:
        return telnyx_error(400, "10015", detail=str(exc))
    digits = query.get("filter[phone_number]")
    status = query.get("filter[status]")
    country = query.get("filter[country_iso_alpha2]")
    rows = [r for r in reversed(request.app[SIM_STATE].numbers.values())
            if (digits is None or (digits.isdigit() and digits in r["phone_number"]))
            and (status is None or r["status"] == status)
            and (country is None or r["country_iso_alpha2"] == country.upper())]
    meta = {"total_results": len(rows), "total_pages": math.ceil(len(rows) / size),
            "page_number": page, "page_size": size}
    return ok(rows[(page - 1) * size:page * size], meta=meta)


async def delete_number(request: web.Request) -> web.Response:
    """DELETE /v2/phone_numbers/{id}: the number's final record (status `deleted`); a number
    still `purchase-pending` cannot be released yet."""
    state = request.app[SIM_STATE]
    if not authorized(request):
        return unauthorized()
    record = state.numbers.get(request.match_info["id"])
    if state.take_fault(("release_error",)) is not None:
        return telnyx_error(500, "10007")
    if state.take_fault(("release_not_found",)) is not None or record is None:
        return telnyx_error(404, "10005")
    if record["status"] != "active":
        return telnyx_error(422, "10015", detail="The number's order has not completed yet.")
    del state.numbers[record["id"]]
    gone = {k: v for k, v in record.items() if k not in NOT_IN_DELETE_ANSWER}
    return ok(dict(gone, status="deleted", updated_at=iso_now()))


def add_number_routes(app: web.Application) -> None:
    """The Telnyx-compatible number routes."""
    app.router.add_get("/v2/available_phone_numbers", available_numbers)
    app.router.add_post("/v2/number_orders", order_numbers)
    app.router.add_get("/v2/number_orders/{id}", get_order)
    app.router.add_get("/v2/phone_numbers", list_numbers)
    app.router.add_delete("/v2/phone_numbers/{id}", delete_number)

