"""The simulator's own `/sim/*` routes: inspection, inbound messages, receipts, the account's
numbers, faults, config."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from .api import E164
from .events import envelope, inbound_payload, status_payload
from .replies import SIM_SENDER, SIM_STATE, ok, telnyx_error
from .state import FAULT_KINDS, Fault
from .tendlc_control import add_tendlc_control_routes

RECEIPT_STATUSES = ("sent", "delivered", "delivery_failed", "sending_failed",
                    "delivery_unconfirmed")


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        doc = orjson.loads(await request.read() or b"{}")
    except orjson.JSONDecodeError:
        raise web.HTTPBadRequest(text="body must be JSON") from None
    if not isinstance(doc, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return doc


async def get_messages(request: web.Request) -> web.Response:
    """GET /sim/messages[?to=]: what the simulator was asked to send, in order, each with
    its current status (as GET /v2/messages/{id} answers), not the `queued` of the send."""
    to, state = request.query.get("to"), request.app[SIM_STATE]
    rows = [state.records.get(m["id"], m) for m in state.messages
            if to is None or m["to"][0]["phone_number"] == to]
    return ok(rows)


async def reset_messages(request: web.Request) -> web.Response:
    """DELETE /sim/messages: forget sent messages, the members' texts and delivery records."""
    state = request.app[SIM_STATE]
    state.messages.clear()
    state.deliveries.clear()
    state.told.clear()
    state.inbound.clear()
    return web.Response(status=204)


async def post_inbound(request: web.Request) -> web.Response:
    """POST /sim/inbound {from, to, text, media?, occurred_at?, event_id?}: deliver
    message.received; `media` lists up to 10 items `{url, content_type?, size?, hash_sha256?}`
    (or bare URL strings), sent as an MMS."""
    doc = await _json(request)
    frm, to, text = doc.get("from"), doc.get("to"), doc.get("text", "")
    media = _media(doc.get("media"))
    if not (isinstance(frm, str) and E164.match(frm) and isinstance(to, str) and E164.match(to)
            and isinstance(text, str)) or media is None or not (text or media):
        return telnyx_error(422, "10015", detail="from and to must be +E.164, text a string, "
                            "media up to 10 items with a url; text or media needed")
    event = envelope("message.received", inbound_payload(frm, to, text, media),
                     event_id=doc.get("event_id"), occurred_at=doc.get("occurred_at"))
    payload = event["data"]["payload"]
    shown = {"id": payload["id"], "from": frm, "to": to, "text": text,
             "received_at": payload["received_at"], "status": "sending"}
    request.app[SIM_STATE].inbound.append(shown)
    status = await request.app[SIM_SENDER].deliver(event)
    shown["status"] = "received" if status is not None and 200 <= status < 300 \
        else "not_received"
    return ok({"event_id": event["data"]["id"], "message_id": event["data"]["payload"]["id"],
               "status": status})


def _media(raw: Any) -> list[dict[str, Any]] | None:
    """The media a test asked for, or None when it is malformed."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > 10:
        return None
    items = [{"url": r} if isinstance(r, str) else r for r in raw]
    if not all(isinstance(i, dict) and isinstance(i.get("url"), str) and i["url"]
               for i in items):
        return None
    return items


async def post_receipt(request: web.Request) -> web.Response:
    """POST /sim/receipts {message_id, status, occurred_at?}: deliver one status event now."""
    doc = await _json(request)
    status = doc.get("status")
    found = [m for m in request.app[SIM_STATE].messages if m["id"] == doc.get("message_id")]
    if not found or status not in RECEIPT_STATUSES:
        return telnyx_error(422, "10015", detail="unknown message_id or status")
    kind = "message.sent" if status == "sent" else "message.finalized"
    event = envelope(kind, status_payload(found[0], str(status)),
                     occurred_at=doc.get("occurred_at"))
    code = await request.app[SIM_SENDER].deliver(event, found[0].get("webhook_url"))
    return ok({"event_id": event["data"]["id"], "status": code})


def _fault(doc: dict[str, Any]) -> Fault:
    kind, count, rate = doc.get("kind"), doc.get("count"), doc.get("rate", 1.0)
    delay, retry_after = doc.get("delay", 1.0), doc.get("retry_after", 1.0)
    if kind not in FAULT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
    if count is not None and (not isinstance(count, int) or count < 1):
        raise ValueError("count must be a positive integer")
    if not isinstance(rate, int | float) or not 0 < rate <= 1:
        raise ValueError("rate must be in (0, 1]")
    if not isinstance(delay, int | float) or not 0 <= delay <= 60:
        raise ValueError("delay must be 0..60 seconds")
    if retry_after is not None and (not isinstance(retry_after, int | float) or retry_after < 0):
        raise ValueError("retry_after must be a non-negative number or null")
    return Fault(str(kind), count, float(rate), float(delay),
                 None if retry_after is None else float(retry_after))


async def post_fault(request: web.Request) -> web.Response:
    """POST /sim/faults {kind, count?, rate?, delay?, retry_after?}: inject a fault (send
    faults apply to POST /v2/messages; `order_failure` to the next number order,
    `release_not_found` to the next DELETE /v2/phone_numbers/{id})."""
    try:
        fault = _fault(await _json(request))
    except ValueError as exc:
        return telnyx_error(422, "10015", detail=f"invalid fault: {exc}")
    request.app[SIM_STATE].faults.append(fault)
    return ok(fault.as_dict(), status=201)


async def get_faults(request: web.Request) -> web.Response:
    """GET /sim/faults: the active faults."""
    return ok([f.as_dict() for f in request.app[SIM_STATE].faults])


async def clear_faults(request: web.Request) -> web.Response:
    """DELETE /sim/faults: back to a healthy carrier."""
    request.app[SIM_STATE].faults.clear()
    return web.Response(status=204)


async def patch_config(request: web.Request) -> web.Response:
    """PATCH /sim/config {webhook_url?, receipts?, order_delay?, order_webhooks?}: where and
    whether receipts go; how long number orders stay pending and whether their completion is
    announced by `number_order.complete`."""
    doc, state = await _json(request), request.app[SIM_STATE]
    delay = doc.get("order_delay")
    if delay is not None and (isinstance(delay, bool) or not isinstance(delay, int | float)
                              or not 0 <= delay <= 3600):
        return telnyx_error(422, "10015", detail="order_delay must be 0..3600 seconds")
    if isinstance(doc.get("webhook_url"), str):
        state.webhook_url = doc["webhook_url"]
    if isinstance(doc.get("receipts"), bool):
        state.receipts = doc["receipts"]
    if delay is not None:
        state.order_delay = float(delay)
    if isinstance(doc.get("order_webhooks"), bool):
        state.order_webhooks = doc["order_webhooks"]
    return ok({"webhook_url": state.webhook_url, "receipts": state.receipts,
               "order_delay": state.order_delay, "order_webhooks": state.order_webhooks})


async def get_numbers(request: web.Request) -> web.Response:
    """GET /sim/numbers: every number on the account (any status), oldest first."""
    return ok(list(request.app[SIM_STATE].numbers.values()))


async def post_number(request: web.Request) -> web.Response:
    """POST /sim/numbers {phone_number}: put an active number on the account without an order
    (a number bought before the simulator started; `ywm dev` adopts the registry's this way)."""
    doc, state = await _json(request), request.app[SIM_STATE]
    number = doc.get("phone_number")
    if not isinstance(number, str) or not E164.match(number):
        return telnyx_error(422, "10016", pointer="/phone_number")
    record = state.number(number)
    if record is not None:
        return ok(record)
    return ok(state.add_number(number), status=201)


async def get_stats(request: web.Request) -> web.Response:
    """GET /sim/stats: counters, delivery records and the public key."""
    state = request.app[SIM_STATE]
    return ok({**state.counters, "messages": len(state.messages),
               "public_key": state.public_key, "deliveries": state.deliveries[-100:]})


async def post_idle(request: web.Request) -> web.Response:
    """POST /sim/idle: wait (at most 10 s) until every pending webhook was delivered."""
    return ok({"idle": await request.app[SIM_SENDER].idle(10.0)})


def add_control_routes(app: web.Application) -> None:
    """The `/sim/*` routes."""
    app.router.add_get("/sim/messages", get_messages)
    app.router.add_delete("/sim/messages", reset_messages)
    app.router.add_post("/sim/inbound", post_inbound)
    app.router.add_post("/sim/receipts", post_receipt)
    app.router.add_post("/sim/faults", post_fault)
    app.router.add_get("/sim/faults", get_faults)
    app.router.add_delete("/sim/faults", clear_faults)
    app.router.add_patch("/sim/config", patch_config)
    app.router.add_get("/sim/numbers", get_numbers)
    app.router.add_post("/sim/numbers", post_number)
    app.router.add_get("/sim/stats", get_stats)
    app.router.add_post("/sim/idle", post_idle)
    add_tendlc_control_routes(app)
