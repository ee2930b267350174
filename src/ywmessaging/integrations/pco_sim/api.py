"""The simulator's Planning Center API: OAuth 2 (authorization code with PKCE, refresh,
revoke), People v2 and webhook subscriptions, behind its rate limit."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import orjson
from aiohttp import web

from .jsonapi import BadQuery, included, page, person_resource, select
from .keys import PCO_SIM_STATE
from .state import PcoSimState

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def state_of(request: web.Request) -> PcoSimState:
    """The simulator's state."""
    return request.app[PCO_SIM_STATE]


def jsonapi(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON:API answer."""
    return web.Response(body=orjson.dumps(doc), status=status, headers=headers,
                        content_type="application/vnd.api+json")


def error(status: int, title: str, detail: str, headers: dict[str, str] | None = None
          ) -> web.Response:
    """A JSON:API error document."""
    return jsonapi({"errors": [{"status": str(status), "title": title, "detail": detail}]},
                   status, headers)


@web.middleware
async def api_gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """API routes (not /oauth, /sim): a live Bearer token, then the rate limit (a 429 is
    not counted), with Planning Center's rate headers on every answer."""
    path = request.path
    if path.startswith(("/oauth/", "/sim/")) or path == "/":
        return await handler(request)
    state = state_of(request)
    state.stats["api_requests"] += 1
    token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not state.valid_access(token):
        state.stats["unauthorized"] += 1
        return error(401, "Unauthorized", "the access token is missing, expired or revoked")
    win = state.window
    wait = win.take(time.monotonic())
    rate = {"X-PCO-API-Request-Rate-Limit": str(win.limit),
            "X-PCO-API-Request-Rate-Period": str(int(win.period)),
            "X-PCO-API-Request-Rate-Count": str(len(win.times))}
    if wait > 0:
        state.stats["rate_limited"] += 1
        return error(429, "Too Many Requests", f"Rate limit exceeded: {win.limit} requests "
                     f"per {int(win.period)} seconds",
                     {**rate, "Retry-After": win.retry_after(wait)})
    state.stats["served"] += 1
    try:
        resp = await handler(request)
    except BadQuery as exc:
        resp = error(400, "Bad Request", str(exc))
    resp.headers.update(rate)
    return resp


async def authorize(request: web.Request) -> web.Response:
    """GET /oauth/authorize: the organization's admin approves at once (no login page) and
    the browser goes back to redirect_uri with a code and the state. A `code_challenge`
    (S256) binds the code to its PKCE verifier."""
    state, q = state_of(request), request.query
    if q.get("client_id") != state.client_id or q.get("response_type") != "code":
        return error(400, "invalid_request", "unknown client_id or response_type")
    if q.get("code_challenge") and q.get("code_challenge_method", "S256") != "S256":
        return error(400, "invalid_request", "PKCE supports S256 only")
    code = secrets.token_hex(16)
    state.codes[code] = {"redirect_uri": q.get("redirect_uri", ""), "scope": q.get("scope", ""),
                         "challenge": q.get("code_challenge"), "expires": time.time() + 600}
    sep = "&" if "?" in q.get("redirect_uri", "") else "?"
    back = urlencode({"code": code, "state": q.get("state", "")})
    target = f"{q.get('redirect_uri', '')}{sep}{back}"
    raise web.HTTPFound(target)


async def _form(request: web.Request) -> dict[str, str]:
    if request.content_type == "application/json":
        body = await request.json()
        return {k: str(v) for k, v in body.items()}
    return {k: str(v) for k, v in (await request.post()).items()}


def _client_ok(state: PcoSimState, form: dict[str, str]) -> bool:
    return (hmac.compare_digest(form.get("client_id", ""), state.client_id)
            and hmac.compare_digest(form.get("client_secret", ""), state.client_secret))


async def token(request: web.Request) -> web.Response:
    """POST /oauth/token: authorization_code (with code_verifier) or refresh_token."""
    state = state_of(request)
    form = await _form(request)
    if not _client_ok(state, form):
        return web.json_response({"error": "invalid_client"}, status=401)
    grant = form.get("grant_type")
    if grant == "authorization_code":
        code = state.codes.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if (code is None or code["expires"] < time.time()
                or code["redirect_uri"] != form.get("redirect_uri")
                or (code["challenge"] is not None   # PKCE is optional, as at Planning Center
                    and not hmac.compare_digest(challenge, code["challenge"]))):
            return web.json_response({"error": "invalid_grant"}, status=400)
        tok = state.issue(code["scope"])
    elif grant == "refresh_token":
        old = state.tokens.get(form.get("refresh_token", ""))
        if old is None or old.revoked or old.refresh != form.get("refresh_token"):
            return web.json_response({"error": "invalid_grant"}, status=400)
        old.revoked = True   # refresh tokens rotate: the old pair stops working
        tok = state.issue(old.scope)
        state.stats["refreshes"] += 1
    else:
        return web.json_response({"error": "unsupported_grant_type"}, status=400)
    return web.json_response({"access_token": tok.access, "token_type": "bearer",
                              "expires_in": int(state.token_ttl), "refresh_token": tok.refresh,
                              "scope": tok.scope, "created_at": int(time.time())})


async def revoke(request: web.Request) -> web.Response:
    """POST /oauth/revoke (RFC 7009): the token's pair stops working; unknown tokens too
    answer 200."""
    state = state_of(request)
    form = await _form(request)
    if not _client_ok(state, form):
        return web.json_response({"error": "invalid_client"}, status=401)
    tok = state.tokens.get(form.get("token", ""))
    if tok is not None:
        tok.revoked = True
        state.stats["revocations"] += 1
    return web.json_response({})


async def organization(request: web.Request) -> web.Response:
    """GET /people/v2: the organization the token belongs to."""
    state = state_of(request)
    return jsonapi({"data": {"type": "Organization", "id": state.organization_id,
                             "attributes": {"name": state.organization_name}}})


async def people(request: web.Request) -> web.Response:
    """GET /people/v2/people: filtered, ordered, paged, with phone numbers and emails."""
    state = state_of(request)
    query = dict(request.query)
    wanted = {w.strip() for w in query.get("include", "").split(",") if w.strip()}
    if wanted - {"phone_numbers", "emails"}:
        raise BadQuery("include may name phone_numbers and emails")
    rows = select(list(state.people.values()), query)
    return jsonapi(page(state, request.path, rows, query,
                        lambda p: person_resource(state, p), lambda p: included(p, wanted)))


async def person(request: web.Request) -> web.Response:
    """GET /people/v2/people/{id}."""
    state = state_of(request)
    found = state.people.get(request.match_info["id"])
    if found is None:
        return error(404, "Not Found", "no such person")
    wanted = {w.strip() for w in request.query.get("include", "").split(",") if w.strip()}
    return jsonapi({"data": person_resource(state, found), "included": included(found, wanted),
                    "meta": {}})


async def lists(request: web.Request) -> web.Response:
    """GET /people/v2/lists."""
    state = state_of(request)
    rows = sorted(state.lists.values(), key=lambda x: int(x["id"]))
    return jsonapi(page(state, request.path, rows, dict(request.query), lambda x: {
        "type": "List", "id": x["id"], "attributes": {"name": x["name"]}}))


async def list_people(request: web.Request) -> web.Response:
    """GET /people/v2/lists/{id}/people."""
    state = state_of(request)
    found = state.lists.get(request.match_info["id"])
    if found is None:
        return error(404, "Not Found", "no such list")
    rows = [state.people[i] for i in found["person_ids"] if i in state.people]
    return jsonapi(page(state, request.path, rows, dict(request.query),
                        lambda p: person_resource(state, p)))


def _subscription(sub: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Subscription", "id": sub["id"],
            "attributes": {"name": sub["name"], "url": sub["url"], "active": sub["active"],
                           "authenticity_secret": sub["secret"]}}


async def create_subscription(request: web.Request) -> web.Response:
    """POST /webhooks/v2/subscriptions: one event name to one URL, with its secret."""
    state = state_of(request)
    attrs = (await request.json()).get("data", {}).get("attributes", {})
    if not attrs.get("name") or not str(attrs.get("url", "")).startswith(("http://", "https://")):
        return error(422, "Unprocessable Entity", "name and an http(s) url are required")
    sub: dict[str, Any] = {
        "id": state.next_id(), "name": str(attrs["name"]), "url": str(attrs["url"]),
        "active": bool(attrs.get("active", True)), "secret": secrets.token_hex(32)}
    state.subscriptions[sub["id"]] = sub
    return jsonapi({"data": _subscription(sub)}, 201)


async def list_subscriptions(request: web.Request) -> web.Response:
    """GET /webhooks/v2/subscriptions."""
    state = state_of(request)
    rows = list(state.subscriptions.values())
    return jsonapi(page(state, request.path, rows, dict(request.query), _subscription))


async def delete_subscription(request: web.Request) -> web.Response:
    """DELETE /webhooks/v2/subscriptions/{id}."""
    state = state_of(request)
    if state.subscriptions.pop(request.match_info["id"], None) is None:
        return error(404, "Not Found", "no such subscription")
    return web.Response(status=204)


def add_api_routes(app: web.Application) -> None:
    """The Planning Center routes."""
    app.router.add_get("/oauth/authorize", authorize)
    app.router.add_post("/oauth/token", token)
    app.router.add_post("/oauth/revoke", revoke)
    app.router.add_get("/people/v2", organization)
    app.router.add_get("/people/v2/people", people)
    app.router.add_get("/people/v2/people/{id}", person)
    app.router.add_get("/people/v2/lists", lists)
    app.router.add_get("/people/v2/lists/{id}/people", list_people)
    app.router.add_post("/webhooks/v2/subscriptions", create_subscription)
    app.router.add_get("/webhooks/v2/subscriptions", list_subscriptions)
    app.router.add_delete("/webhooks/v2/subscriptions/{id}", delete_subscription)
