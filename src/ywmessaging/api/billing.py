"""`/api/v1/billing`: the church's plan, limits and usage; checkout, the billing portal and
invoices through Stripe (the owner, `billing.manage`)."""

from __future__ import annotations

from aiohttp import web

from ..auth.state import principal, registry_pool
from ..billing import account
from ..billing import usage as data
from ..billing.keys import STRIPE
from ..church.pagination import parse_limit
from ..tenants.middleware import tenant_conn
from .context import entitlement_of, settings_of, utc_now
from .responses import json_response
from .validation import json_body, query_params

INVOICES_MAX = 100


async def plan(request: web.Request) -> web.Response:
    """Plan, cycle, status, limits, usage, remaining and the subscription's dates."""
    query_params(request)
    ent = await entitlement_of(request)
    return json_response(await data.plan_view(tenant_conn(request), settings_of(request), ent,
                                              utc_now()))


async def usage(request: web.Request) -> web.Response:
    """Messages, segments and cost from the outbox by local day, `from`..`to` included."""
    params = query_params(request)
    return json_response(await data.report(tenant_conn(request), settings_of(request),
                                           params.get("from"), params.get("to"), utc_now()))


async def checkout(request: web.Request) -> web.Response:
    """A Stripe Checkout Session for a plan: `{url, session_id, expires_at}`; the plan changes
    when Stripe's webhook says it was paid."""
    settings = settings_of(request)
    body = await json_body(request)   # the contract: plan and cycle, nothing else
    plan_code, cycle = account.checked_plan(settings, body.get("plan"),
                                              body.get("cycle"))
    ent = await entitlement_of(request)
    session = await account.checkout(
        registry_pool(request), tenant_conn(request), settings, request.config_dict[STRIPE],
        principal(request).tenant_id, ent, plan_code, cycle, utc_now())
    return json_response({"url": session.url, "session_id": session.id,
                          "expires_at": None if session.expires_at is None
                          else session.expires_at.isoformat()})


async def portal(request: web.Request) -> web.Response:
    """A Stripe billing-portal session: `{url}` (card, plan change, invoices, cancel)."""
    await json_body(request, allow_empty=True)
    url = await account.portal(registry_pool(request), tenant_conn(request),
                               settings_of(request), request.config_dict[STRIPE],
                               principal(request).tenant_id, await entitlement_of(request))
    return json_response({"url": url})


async def invoices(request: web.Request) -> web.Response:
    """The church's invoices from Stripe, newest first, `limit` per page."""
    params = query_params(request)
    limit = min(parse_limit(params.get("limit", "10")), INVOICES_MAX)
    return json_response(await account.invoices(request.config_dict[STRIPE],
                                                await entitlement_of(request), limit,
                                                params.get("cursor")))
