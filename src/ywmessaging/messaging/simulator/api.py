"""The simulator's Telnyx messaging API (POST /v2/messages, GET /v2/messages/{id}) and the
route table (the number routes live in `numbers.py`)."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from .events import envelope, outbound_message, status_payload
from .numbers import E164, add_number_routes
from .replies import (
    SIM_SENDER,
    SIM_STATE,
    authorized,
    json_body,
    ok,
    telnyx_error,
    unauthorized,
)
from .state import Fault
from .tendlc import add_tendlc_routes

MAX_MEDIA = 10
__all__ = ["E164", "SIM_SENDER", "SIM_STATE", "add_api_routes", "ok", "telnyx_error"]


def _fault_response(fault: Fault) -> web.Response | None:
    if fault.kind == "429":
        headers = {"x-ratelimit-limit": "50", "x-ratelimit-remaining": "0",
                   "x-ratelimit-reset": str(int(time.time()) + 1)}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        return telnyx_error(429, "10011", headers=headers)
    if fault.kind == "500":
        return telnyx_error(500, "10007")
    if fault.kind == "opted_out":
        return telnyx_error(400, "40300")
    return None


def _media_ok(urls: Any) -> bool:
    return (isinstance(urls, list) and 1 <= len(urls) <= MAX_MEDIA
            and all(isinstance(u, str) and urlsplit(u).scheme in ("http", "https")
                    and bool(urlsplit(u).netloc) for u in urls))


def _check_message(body: dict[str, Any] | None, request: web.Request) -> web.Response | None:
    """Telnyx's request-time refusals of a message (SMS needs `text`, MMS `media_urls`; the
    sender must be an active number of the account)."""
    if body is None:
        return telnyx_error(400, "10015", detail="The request body must be a JSON object.")
    for name in ("from", "to"):
        if name not in body or body[name] in (None, ""):
            return telnyx_error(422, "10004", pointer=f"/{name}")
        if not isinstance(body[name], str) or not E164.match(body[name]):
            return telnyx_error(422, "10016", pointer=f"/{name}")
    media = body.get("media_urls")
    if media is not None and not _media_ok(media):
        return telnyx_error(422, "10015", pointer="/media_urls",
                            detail=f"media_urls must hold 1 to {MAX_MEDIA} http(s) URLs.")
    text = body.get("text")
    if text is not None and not isinstance(text, str):
        return telnyx_error(422, "10015", pointer="/text", detail="text must be a string.")
    if not text and not media:
        return telnyx_error(422, "10004", pointer="/text")
    if not request.app[SIM_STATE].owns(body["from"]):
        return telnyx_error(400, "40305", pointer="/from")
    return None


async def send_message(request: web.Request) -> web.StreamResponse:
    """POST /v2/messages: record, answer queued, then send message.sent and message.finalized."""
    state, sender = request.app[SIM_STATE], request.app[SIM_SENDER]
    state.counters["requests"] += 1
    if not authorized(request):
        return unauthorized()
    body = await json_body(request)
    invalid = _check_message(body, request)
    if invalid is not None or body is None:
        return invalid or telnyx_error(400, "10015")
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
        {"code": "40008", "title": "Undeliverable",
         "detail": "The recipient carrier did not accept the message."}]) if failed \
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


async def get_message(request: web.Request) -> web.Response:
    """GET /v2/messages/{id}: the message with its current per-recipient status (injected
    faults apply to sends only)."""
    state = request.app[SIM_STATE]
    if not authorized(request):
        return unauthorized()
    state.counters["lookups"] += 1
    record = state.records.get(request.match_info["id"])
    if record is None:
        return telnyx_error(404, "10005")
    return ok(record)


def add_api_routes(app: web.Application) -> None:
    """The Telnyx-compatible routes."""
    app.router.add_post("/v2/messages", send_message)
    app.router.add_get("/v2/messages/{id}", get_message)
    add_number_routes(app)
    add_tendlc_routes(app)
