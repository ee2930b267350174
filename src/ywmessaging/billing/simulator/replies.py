"""How the simulator answers like Stripe: error objects, list objects, `expand[]`, and the
middleware in front of `/v1/*` (API key, injected faults, `Idempotency-Key`)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from .delivery import StripeWebhookSender
from .forms import as_list, parse_form
from .objects import public
from .state import StripeSimState

STRIPE_SIM_STATE = web.AppKey("stripe_sim_state", StripeSimState)
STRIPE_SIM_SENDER = web.AppKey("stripe_sim_sender", StripeWebhookSender)
PARAMS = web.RequestKey("stripe_sim_params", dict[str, Any])
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
EXPANDABLE = {"customer": "customer", "product": "product", "subscription": "subscription",
              "latest_invoice": "invoice", "invoice": "invoice"}


class StripeError(Exception):
    """An error answer: `{"error": {type, code, message, param}}` with an HTTP status."""

    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = (
            status, message, type_, code, param)

    def response(self) -> web.Response:
        """The JSON answer."""
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        return reply({"error": error}, status=self.status)


def missing(kind: str, obj_id: str, param: str = "id") -> StripeError:
    """404 resource_missing, in Stripe's words."""
    return StripeError(404, f"No such {kind}: '{obj_id}'", code="resource_missing", param=param)


def required(param: str) -> StripeError:
    """400 parameter_missing."""
    return StripeError(400, f"Missing required param: {param}.", code="parameter_missing",
                       param=param)


def reply(doc: dict[str, Any], status: int = 200) -> web.Response:
    """A JSON answer with a request id."""
    return web.Response(body=orjson.dumps(doc), status=status, content_type="application/json",
                        headers={"Request-Id": f"req_{secrets.token_hex(7)}"})


def params(request: web.Request) -> dict[str, Any]:
    """The request's parameters (query string and form body), parsed by the middleware."""
    found: dict[str, Any] = request[PARAMS]
    return found


def expanded(state: StripeSimState, obj: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """`obj` without private fields, with the `expand[]` paths that apply to it replaced by
    the objects they name (`data.` already stripped by the caller for lists)."""
    out = public(obj)
    for path in paths:
        head, _, rest = path.partition(".")
        value = out.get(head)
        if isinstance(value, str) and head in EXPANDABLE:
            found = state.get(EXPANDABLE[head], value)
            if found is not None:
                out[head] = expanded(state, found, [rest] if rest else [])
        elif isinstance(value, dict) and rest:
            if value.get("object") == "list":
                value = dict(value, data=[expanded(state, item, [rest.removeprefix("data.")])
                                          for item in value["data"]])
                out[head] = value
            else:
                out[head] = expanded(state, value, [rest])
    return out


def one(request: web.Request, obj: dict[str, Any]) -> web.Response:
    """One object, with the request's `expand[]` applied."""
    paths = [str(p) for p in as_list(params(request).get("expand"))]
    return reply(expanded(request.app[STRIPE_SIM_STATE], obj, paths))


def page(request: web.Request, items: list[dict[str, Any]], url: str) -> web.Response:
    """A list object of `items` (already newest first and filtered) after `starting_after` /
    before `ending_before`, `limit` long (1..100, default 10)."""
    p = params(request)
    try:
        limit = int(p.get("limit", 10))
    except ValueError:
        raise StripeError(400, "Invalid integer: limit", param="limit") from None
    if not 1 <= limit <= 100:
        raise StripeError(400, "This value must be between 1 and 100.", param="limit")
    ids = [item["id"] for item in items]
    if p.get("starting_after"):
        if p["starting_after"] not in ids:
            raise missing("object", str(p["starting_after"]), "starting_after")
        items = items[ids.index(p["starting_after"]) + 1:]
    elif p.get("ending_before"):
        if p["ending_before"] not in ids:
            raise missing("object", str(p["ending_before"]), "ending_before")
        items = items[:ids.index(p["ending_before"])][-limit:]
    paths = [str(x).removeprefix("data.") for x in as_list(p.get("expand"))
             if str(x).startswith("data.")]
    state = request.app[STRIPE_SIM_STATE]
    return reply({"object": "list", "url": url, "has_more": len(items) > limit,
                  "data": [expanded(state, item, paths) for item in items[:limit]]})


def _authorized(request: web.Request, state: StripeSimState) -> bool:
    auth = request.headers.get("Authorization", "")
    key = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
    if state.api_key is not None:
        return key == state.api_key
    return key.startswith(("sk_test_", "rk_test_"))


async def _fault(state: StripeSimState, path: str) -> web.Response | None:
    fault = state.take_fault(path)
    if fault is None:
        return None
    state.counters["faulted"] += 1
    if fault.kind == "429":
        return StripeError(429, "Request rate limit exceeded. Learn more about rate limits "
                           "here https://stripe.com/docs/rate-limits.", code="rate_limit"
                           ).response()
    if fault.kind == "500":
        return StripeError(500, "An unknown error occurred", type_="api_error").response()
    await asyncio.sleep(fault.delay)   # "delay": slow, then the call goes on
    return None


@web.middleware
async def stripe_api(request: web.Request, handler: Handler) -> web.StreamResponse:
    """In front of every route: Stripe's error shape; for `/v1/*` the API key, faults,
    parameters and idempotent replays."""
    state = request.app[STRIPE_SIM_STATE]
    try:
        if not request.path.startswith("/v1/"):
            return await handler(request)
        state.counters["requests"] += 1
        if not _authorized(request, state):
            raise StripeError(401, "Invalid API Key provided.")
        faulted = await _fault(state, request.path)
        if faulted is not None:
            return faulted
        raw = await request.read()
        pairs = parse_qsl(request.query_string, keep_blank_values=True)
        pairs += parse_qsl(raw.decode(), keep_blank_values=True)
        request[PARAMS] = parse_form(pairs)
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key:
            return await handler(request)
        return await _idempotent(request, handler, state, key, raw)
    except StripeError as exc:
        return exc.response()


async def _idempotent(request: web.Request, handler: Handler, state: StripeSimState, key: str,
                      raw: bytes) -> web.StreamResponse:
    fingerprint = hashlib.sha256(f"{request.method} {request.path} ".encode() + raw).hexdigest()
    slot = (request.headers.get("Authorization", ""), key)
    seen = state.idempotent.get(slot)
    if seen is not None:
        if seen[0] != fingerprint:
            raise StripeError(400, "Keys for idempotent requests can only be used with the "
                              "same parameters they were first used with. Try using a key other "
                              f"than '{key}' if you meant to execute a different request.",
                              type_="idempotency_error")
        state.counters["replayed"] += 1
        return web.Response(body=seen[2], status=seen[1], content_type="application/json",
                            headers={"Idempotent-Replayed": "true", "Idempotency-Key": key})
    try:
        response = await handler(request)
    except StripeError as exc:
        response = exc.response()
    # kept only when the call did something (Stripe keeps no result of a refused request)
    if isinstance(response, web.Response) and response.status < 300 and response.body:
        body = response.body if isinstance(response.body, bytes) else b""
        state.remember(slot, (fingerprint, response.status, body))
    response.headers["Idempotency-Key"] = key
    return response


def found(request: web.Request, kind: str, label: str) -> dict[str, Any]:
    """The object of kind `kind` the path's `{id}` names, or 404."""
    obj_id = request.match_info["id"]
    obj = request.app[STRIPE_SIM_STATE].get(kind, obj_id)
    if obj is None:
        raise missing(label, obj_id)
    return obj


def integer(p: dict[str, Any], name: str) -> int:
    """An integer parameter, or 400."""
    try:
        return int(p[name])
    except (KeyError, TypeError, ValueError):
        raise StripeError(400, f"Invalid integer: {p.get(name)}", param=name) from None
