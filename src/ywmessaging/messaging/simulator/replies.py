"""How the simulator answers, like Telnyx: `{"data": ...}`, and errors as
`{"errors": [{"code", "title", "detail", "meta": {"url"}}]}` with Telnyx's own texts, for unknown
routes too."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from .delivery import WebhookSender
from .state import SimState

SIM_STATE = web.AppKey("carrier_sim_state", SimState)
SIM_SENDER = web.AppKey("carrier_sim_sender", WebhookSender)
ERRORS_URL = "https://developers.telnyx.com/docs/overview/errors/"

# code → (title, detail) as Telnyx publishes them ("API Error Codes" and "Messaging Error
# Codes" on developers.telnyx.com; "occured" is Telnyx's spelling). The details of 40300, 40305
# and 20100 are the simulator's wording: the published lists give no request-time text for them.
TEXTS: dict[str, tuple[str, str]] = {
    "10004": ("Missing required parameter",
              "A required parameter was missing. Consult the source field on the returned "
              "error to determine the missing field."),
    "10005": ("Resource not found", "The requested resource or URL could not be found."),
    "10007": ("Unexpected error", "An unexpected error occured."),
    "10009": ("Authentication failed",
              "The required authentication headers were either invalid or not included in the "
              "request."),
    "10011": ("Too many requests", "You have exceeded the maximum number of allowed requests."),
    "10015": ("Bad Request", "The request failed because it was not well-formed."),
    "10016": ("Phone number must be in +E.164 format",
              "The specified phone number parameter must be in +E.164 format."),
    "40008": ("Undeliverable",
              "The recipient carrier did not accept the message. This is a general purpose "
              "undeliverable message."),
    "40300": ("Blocked due to STOP message",
              "The recipient replied STOP to this sender; messages to them are blocked until "
              "they reply START."),
    "40305": ("Invalid 'from' address",
              "The 'from' address must be a messaging-enabled phone number, short code or "
              "alphanumeric sender ID on your account."),
    "20100": ("Number not available", "The phone number is not available for purchase."),
}


def telnyx_error(status: int, code: str, *, detail: str | None = None,
                 pointer: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
    """A Telnyx error answer for `code` (its published title and detail unless `detail` says
    more); `pointer` names the offending field (`source.pointer`, e.g. "/from")."""
    title, text = TEXTS.get(code, TEXTS["10015"])
    error: dict[str, Any] = {"code": code, "title": title, "detail": detail or text,
                             "meta": {"url": ERRORS_URL + code}}
    if pointer is not None:
        error["source"] = {"pointer": pointer}
    return web.Response(body=orjson.dumps({"errors": [error]}), status=status, headers=headers,
                        content_type="application/json")


def ok(data: Any, status: int = 200, *, meta: dict[str, Any] | None = None) -> web.Response:
    """A Telnyx success body `{"data": ...}` (with `meta` for lists)."""
    doc: dict[str, Any] = {"data": data}
    if meta is not None:
        doc["meta"] = meta
    return web.Response(body=orjson.dumps(doc), status=status, content_type="application/json")


def authorized(request: web.Request) -> bool:
    """Whether the request carries the account's Bearer key (any non-empty one if unset)."""
    state = request.app[SIM_STATE]
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer ") or not auth[7:].strip():
        return False
    return state.api_key is None or auth[7:].strip() == state.api_key


def unauthorized() -> web.Response:
    """401 as Telnyx answers a missing or wrong API key."""
    return telnyx_error(401, "10009")


async def json_body(request: web.Request) -> dict[str, Any] | None:
    """The request's JSON object, or None when it is not one."""
    try:
        doc = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


@web.middleware
async def telnyx_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Unknown routes and methods answer Telnyx's JSON errors body, not aiohttp's text."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPNotFound:
        return telnyx_error(404, "10005")
    except web.HTTPMethodNotAllowed:
        return telnyx_error(405, "10015", detail=f"{request.method} is not allowed here.")
