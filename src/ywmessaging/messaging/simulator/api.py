"""The simulator's Telnyx API: POST /v2/messages and the number search/order/release endpoints."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from typing import Any

import orjson
from aiohttp import web

from .delivery import WebhookSender
from .events import envelope, iso_now, outbound_message, status_payload
from .state import Fault, SimState

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
SIM_STATE = web.AppKey("carrier_sim_state", SimState)
SIM_SENDER = web.AppKey("carrier_sim_sender", WebhookSender)


def telnyx_error(status: int, code: str, title: str, *, detail: str | None = None,
                 headers: dict[str, str] | None = None) -> web.Response:
    """A Telnyx error body: {"errors": [{"code": "<string>", "title", "detail"}]}."""
    body = {"errors": [{"code": code, "title": title, "detail": detail or title}]}
    return web.Response(body=orjson.dumps(body), status=status, headers=headers,
                        content_type="application/json")


def ok(data: Any, status: int = 200) -> web.Response:
    """A Telnyx success body {"data": ...}."""
    return web.Response(body=orjson.dumps({"data": data}), status=status,
                        content_type="application/json")


def _authorized(request: web.Request, state: SimState) -> bool:
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer ") or not auth[7:].strip():
        return False
    return state.api_key is None or auth[7:].strip() == state.api_key


def _fault_response(fault: Fault) -> web.Response | None:
    if fault.kind == "429":
        headers = {"x-ratelimit-limit": "50", "x-ratelimit-remaining": "0",
                   "x-ratelimit-reset": str(int(time.time()) + 1)}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        return telnyx_error(429, "10011", "Too many requests", headers=headers)
    if fault.kind == "500":
        return telnyx_error(500, "10007", "Unexpected error")
    if fault.kind == "opted_out":
        return telnyx_error(400, "40300", "Blocked due to STOP message")
    return None


async def _body(request: web.Request) -> dict[str, Any] | None:
    try:
        doc = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


def _check_message(body: dict[str, Any] | None) -> web.Response | None:
    if body is None:
        return telnyx_error(400, "10015", "Invalid JSON body")
    for name in ("from", "to"):
        if not isinstance(body.get(name), str) or not E164.match(body[name]):
            return telnyx_error(422, "10016", "Phone number must be in +E.164 format",
                                detail=f"{name} must be +E.164")
    if not isinstance(body.get("text"), str) or not body["text"]:
        return telnyx_error(422, "40009", "Invalid message body")
    return None


async def send_message(request: web.Request) -> web.StreamResponse:
    """POST /v2/messages: record, answer queued, then send message.sent and message.finalized."""
    state, sender = request.app[SIM_STATE], request.app[SIM_SENDER]
    state.counters["requests"] += 1
    if not _authorized(request, state):
        return telnyx_error(401, "10009", "Authentication failed")
    body = await _body(request)
    invalid = _check_message(body)
    if invalid is not None or body is None:
        return invalid or telnyx_error(400, "10015", "Invalid JSON body")
    fault = state.take_fault()
    if fault is not None:
        state.counters["faulted"] += 1
        refused = _fault_response(fault)
        if refused is not None:
            return refused
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay)
            if request.transport is None or request.transport.is_closing():
                return web.Response(status=499)   # caller gave up before we accepted
    webhook_url = body.get("webhook_url") or None
    message = outbound_message(body, webhook_url=webhook_url)
    state.messages.append(message)
    state.counters["accepted"] += 1
    failed = fault is not None and fault.kind == "fail_delivery"
    final = status_payload(message, "delivery_failed", [
        {"code": "40008", "title": "Undeliverable", "detail": "simulated"}]) if failed \
        else status_payload(message, "delivered")
    # the carrier knows the outcome whether or not its webhooks get through
    state.records[message["id"]] = final
    if state.receipts:
        sender.deliver_later(envelope("message.sent", status_payload(message, "sent")),
                             envelope("message.finalized", final), url=webhook_url)
    if fault is not None and fault.kind == "drop" and request.transport is not None:
        request.transport.abort()   # accepted, but the caller never hears back
        raise asyncio.CancelledError()
    return ok(message)


def _available(area: str, limit: int, owned: set[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(100, 10_000):
        if len(rows) >= limit:
            break
        number = f"+1{area}555{i:04d}"
        if number in owned:
            continue
        rows.append({"record_type": "available_phone_number", "phone_number": number,
                     "vanity_format": "", "best_effort": False, "quickship": True,
                     "reservable": True, "features": [{"name": "sms"}, {"name": "voice"}],
                     "cost_information": {"monthly_cost": "1.00", "upfront_cost": "1.00",
                                          "currency": "USD"}})
    return rows


async def available_numbers(request: web.Request) -> web.Response:
    """GET /v2/available_phone_numbers?filter[national_destination_code]=&filter[limit]=."""
    state = request.app[SIM_STATE]
    if not _authorized(request, state):
        return telnyx_error(401, "10009", "Authentication failed")
    area = request.query.get("filter[national_destination_code]") or "206"
    raw_limit = request.query.get("filter[limit]") or "10"
    if not re.fullmatch(r"[2-9][0-9]{2}", area) or not raw_limit.isdigit():
        return telnyx_error(422, "10015", "Invalid filter")
    rows = _available(area, min(int(raw_limit), 100), set(state.numbers.values()))
    return web.Response(body=orjson.dumps({"data": rows, "meta": {"total_results": len(rows)}}),
                        content_type="application/json")


async def order_numbers(request: web.Request) -> web.Response:
    """POST /v2/number_orders {phone_numbers: [{phone_number}]}."""
    state = request.app[SIM_STATE]
    if not _authorized(request, state):
        return telnyx_error(401, "10009", "Authentication failed")
    body = await _body(request) or {}
    wanted = [p.get("phone_number") for p in body.get("phone_numbers") or []
              if isinstance(p, dict)]
    if not wanted or not all(isinstance(n, str) and E164.match(n) for n in wanted):
        return telnyx_error(422, "10016", "Phone number must be in +E.164 format")
    if any(n in state.numbers.values() for n in wanted):
        return telnyx_error(422, "20100", "Number not available")
    ordered = []
    for number in map(str, wanted):
        state.numbers[str(uuid.uuid4())] = number
        ordered.append({"id": str(uuid.uuid4()), "record_type": "number_order_phone_number",
                        "phone_number": number, "status": "success"})
    return ok({"id": str(uuid.uuid4()), "record_type": "number_order", "status": "success",
               "phone_numbers": ordered, "phone_numbers_count": len(ordered),
               "messaging_profile_id": body.get("messaging_profile_id"),
               "created_at": iso_now()})


async def list_numbers(request: web.Request) -> web.Response:
    """GET /v2/phone_numbers?filter[phone_number]=."""
    state = request.app[SIM_STATE]
    if not _authorized(request, state):
        return telnyx_error(401, "10009", "Authentication failed")
    wanted = request.query.get("filter[phone_number]")
    rows = [{"id": nid, "record_type": "phone_number", "phone_number": number,
             "status": "active"} for nid, number in state.numbers.items()
            if wanted is None or number == wanted]
    return ok(rows)


async def delete_number(request: web.Request) -> web.Response:
    """DELETE /v2/phone_numbers/{id}."""
    state = request.app[SIM_STATE]
    if not _authorized(request, state):
        return telnyx_error(401, "10009", "Authentication failed")
    nid = request.match_info["id"]
    number = state.numbers.pop(nid, None)
    if number is None:
        return telnyx_error(404, "10005", "Resource not found")
    return ok({"id": nid, "record_type": "phone_number", "phone_number": number,
               "status": "deleted"})


async def get_message(request: web.Request) -> web.Response:
    """GET /v2/messages/{id}: the message with its current per-recipient status (injected
    faults apply to sends only)."""
    state = request.app[SIM_STATE]
    if not _authorized(request, state):
        return telnyx_error(401, "10009", "Authentication failed")
    state.counters["lookups"] += 1
    record = state.records.get(request.match_info["id"])
    if record is None:
        return telnyx_error(404, "10005", "Resource not found")
    return ok(record)


def add_api_routes(app: web.Application) -> None:
    """The Telnyx-compatible routes."""
    app.router.add_post("/v2/messages", send_message)
    app.router.add_get("/v2/messages/{id}", get_message)
    app.router.add_get("/v2/available_phone_numbers", available_numbers)
    app.router.add_post("/v2/number_orders", order_numbers)
    app.router.add_get("/v2/phone_numbers", list_numbers)
    app.router.add_delete("/v2/phone_numbers/{id}", delete_number)
