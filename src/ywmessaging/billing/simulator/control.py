"""The simulator's own `/sim/*` routes: the hosted Checkout and portal pages, completing or
failing a checkout, a subscription's next payments and time, faults, config, inspection."""

from __future__ import annotations

import html
from typing import Any

import orjson
from aiohttp import web

from .lifecycle import account
from .objects import public
from .replies import STRIPE_SIM_SENDER, STRIPE_SIM_STATE, StripeError, missing, reply
from .state import FAULT_KINDS, Billing, Fault

FAIL_REASONS = ("card_declined", "authentication_required")


async def _json(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise StripeError(400, "The body must be JSON.") from None
    if not isinstance(doc, dict):
        raise StripeError(400, "The body must be a JSON object.")
    return doc


def _session(request: web.Request) -> dict[str, Any]:
    obj_id = request.match_info["id"]
    found = request.app[STRIPE_SIM_STATE].get("checkout.session", obj_id)
    if found is None:
        raise missing("checkout.session", obj_id)
    return found


async def checkout_page(request: web.Request) -> web.Response:
    """GET /sim/checkout/{id}: the hosted payment page (two buttons)."""
    s = _session(request)
    base = f"/sim/checkout/{html.escape(s['id'])}"
    body = (f"<!doctype html><title>Checkout (simulator)</title><h1>Subscribe</h1>"
            f"<p>{s['amount_total'] / 100:.2f} {s['currency'].upper()}; status {s['status']}</p>"
            f"<form method=post action='{base}/complete'><button>Pay</button></form>"
            f"<form method=post action='{base}/fail'><button>Card declined</button></form>")
    return web.Response(text=body, content_type="text/html")


def _redirect(url: str | None, session_id: str) -> str | None:
    return url.replace("{CHECKOUT_SESSION_ID}", session_id) if url else None


async def complete_checkout(request: web.Request) -> web.Response:
    """POST /sim/checkout/{id}/complete: the customer paid (or started the trial)."""
    session = _session(request)
    sub = account(request).complete_checkout(session)
    return reply({"session": public(session), "subscription": public(sub),
                  "redirect": _redirect(session["success_url"], session["id"])})


async def fail_checkout(request: web.Request) -> web.Response:
    """POST /sim/checkout/{id}/fail: the card was refused and the customer left; the session
    expires (checkout.session.expired) and no subscription is made."""
    session = _session(request)
    account(request).expire_checkout(session)
    return reply({"session": public(session),
                  "redirect": _redirect(session["cancel_url"], session["id"])})


async def portal_page(request: web.Request) -> web.Response:
    """GET /sim/portal/{id}: the billing portal (the customer's subscriptions)."""
    state, obj_id = request.app[STRIPE_SIM_STATE], request.match_info["id"]
    session = state.get("billing_portal.session", obj_id)
    if session is None:
        raise missing("billing_portal.session", obj_id)
    subs = [s for s in state.newest_first("subscription") if s["customer"] == session["customer"]]
    rows = "".join(f"<li>{html.escape(s['id'])}: {s['status']}</li>" for s in subs)
    return web.Response(text=f"<!doctype html><title>Billing portal (simulator)</title>"
                        f"<ul>{rows}</ul>", content_type="text/html")


async def invoice_page(request: web.Request) -> web.Response:
    """GET /sim/invoices/{id} (and `/pdf`): the hosted invoice."""
    obj_id = request.match_info["id"]
    inv = request.app[STRIPE_SIM_STATE].get("invoice", obj_id)
    if inv is None:
        raise missing("invoice", obj_id)
    return web.Response(text=f"<!doctype html><title>Invoice {html.escape(inv['number'])}</title>"
                        f"<p>{inv['amount_due'] / 100:.2f} {inv['currency'].upper()}: "
                        f"{inv['status']}</p>", content_type="text/html")


async def fail_next_payment(request: web.Request) -> web.Response:
    """POST /sim/subscriptions/{id}/fail-next-payment {count?, reason?}: the next `count`
    charges fail (`authentication_required`: invoice.payment_action_required too)."""
    acct, doc = account(request), await _json(request)
    sub = acct.subscription(request.match_info["id"])
    count, reason = doc.get("count", 1), doc.get("reason", "card_declined")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100:
        raise StripeError(400, "count must be 1..100", param="count")
    if reason not in FAIL_REASONS:
        raise StripeError(400, f"reason must be one of {', '.join(FAIL_REASONS)}",
                          param="reason")
    acct.state.billing[sub["id"]] = Billing(failures=count, reason=reason)
    return reply({"subscription": sub["id"], "failures": count, "reason": reason})


async def advance(request: web.Request) -> web.Response:
    """POST /sim/subscriptions/{id}/advance {to?}: `period_end` (default: the trial's or
    period's end — renew and charge, or retry a past-due invoice) or `trial_will_end`."""
    acct, doc = account(request), await _json(request)
    to = doc.get("to", "period_end")
    if to not in ("period_end", "trial_will_end"):
        raise StripeError(400, "to must be period_end or trial_will_end", param="to")
    sub = acct.advance(acct.subscription(request.match_info["id"]), str(to))
    return reply({"subscription": public(sub), "now": acct.state.now(sub["id"])})


async def cancel(request: web.Request) -> web.Response:
    """POST /sim/subscriptions/{id}/cancel {at_period_end?}: as the customer does in the
    portal."""
    acct, doc = account(request), await _json(request)
    sub = acct.cancel(acct.subscription(request.match_info["id"]),
                      at_period_end=doc.get("at_period_end") is True)
    return reply({"subscription": public(sub)})


async def pay_invoice(request: web.Request) -> web.Response:
    """POST /sim/invoices/{id}/pay: collect an open invoice now (the card was fixed)."""
    acct, obj_id = account(request), request.match_info["id"]
    inv = acct.state.get("invoice", obj_id)
    if inv is None:
        raise missing("invoice", obj_id)
    acct.pay(inv)
    return reply({"invoice": public(inv)})


def _fault(doc: dict[str, Any]) -> Fault:
    kind, count, delay, path = (doc.get("kind"), doc.get("count", 1), doc.get("delay", 1.0),
                                doc.get("path"))
    if kind not in FAULT_KINDS:
        raise StripeError(400, f"kind must be one of {', '.join(FAULT_KINDS)}", param="kind")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int)
                              or count < 1):
        raise StripeError(400, "count must be a positive integer or null", param="count")
    if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay <= 60:
        raise StripeError(400, "delay must be 0..60 seconds", param="delay")
    if path is not None and not (isinstance(path, str) and path.startswith("/v1/")):
        raise StripeError(400, "path must start with /v1/", param="path")
    return Fault(str(kind), count, float(delay), path)


async def post_fault(request: web.Request) -> web.Response:
    """POST /sim/faults {kind: 429|500|delay, count? (1; null: until cleared), delay?, path?}."""
    fault = _fault(await _json(request))
    request.app[STRIPE_SIM_STATE].faults.append(fault)
    return reply(fault.as_dict(), status=201)


async def get_faults(request: web.Request) -> web.Response:
    """GET /sim/faults."""
    return reply({"data": [f.as_dict() for f in request.app[STRIPE_SIM_STATE].faults]})


async def clear_faults(request: web.Request) -> web.Response:
    """DELETE /sim/faults."""
    request.app[STRIPE_SIM_STATE].faults.clear()
    return web.Response(status=204)


async def patch_config(request: web.Request) -> web.Response:
    """PATCH /sim/config {webhook_url?, webhook_retry_delays?, dunning_attempts?,
    dunning_end?}."""
    doc, state = await _json(request), request.app[STRIPE_SIM_STATE]
    if isinstance(doc.get("webhook_url"), str):
        state.webhook_url = doc["webhook_url"]
    delays = doc.get("webhook_retry_delays")
    if delays is not None:
        if not (isinstance(delays, list) and len(delays) <= 10 and all(
                isinstance(d, int | float) and 0 <= d <= 3600 for d in delays)):
            raise StripeError(400, "webhook_retry_delays: up to 10 delays of 0..3600 s")
        state.webhook_retry_delays = tuple(float(d) for d in delays)
    if doc.get("dunning_end") in ("canceled", "unpaid"):
        state.dunning_end = doc["dunning_end"]
    if isinstance(doc.get("dunning_attempts"), int) and 1 <= doc["dunning_attempts"] <= 10:
        state.dunning_attempts = doc["dunning_attempts"]
    return reply({"webhook_url": state.webhook_url,
                  "webhook_retry_delays": list(state.webhook_retry_delays),
                  "dunning_attempts": state.dunning_attempts, "dunning_end": state.dunning_end})


async def get_stats(request: web.Request) -> web.Response:
    """GET /sim/stats: counters and the last deliveries."""
    state = request.app[STRIPE_SIM_STATE]
    return reply({**state.counters, "deliveries": state.deliveries[-100:],
                  "objects": {k: len(v) for k, v in state.objects.items()}})


async def resend_event(request: web.Request) -> web.Response:
    """POST /sim/events/{id}/resend: deliver an event again (signed afresh), as the dashboard's
    "Resend" does: a replay the receiver must recognise."""
    state, obj_id = request.app[STRIPE_SIM_STATE], request.match_info["id"]
    event = state.get("event", obj_id)
    if event is None:
        raise missing("event", obj_id)
    status = await request.app[STRIPE_SIM_SENDER].deliver(event)
    return reply({"event": obj_id, "status": status})


async def post_idle(request: web.Request) -> web.Response:
    """POST /sim/idle: wait (at most 10 s) until every queued webhook was delivered."""
    return reply({"idle": await request.app[STRIPE_SIM_SENDER].idle(10.0)})


def add_control_routes(app: web.Application) -> None:
    """The `/sim/*` routes."""
    r = app.router
    r.add_get("/sim/checkout/{id}", checkout_page)
    r.add_post("/sim/checkout/{id}/complete", complete_checkout)
    r.add_post("/sim/checkout/{id}/fail", fail_checkout)
    r.add_get("/sim/portal/{id}", portal_page)
    r.add_get("/sim/invoices/{id}", invoice_page)
    r.add_get("/sim/invoices/{id}/pdf", invoice_page)
    r.add_post("/sim/subscriptions/{id}/fail-next-payment", fail_next_payment)
    r.add_post("/sim/subscriptions/{id}/advance", advance)
    r.add_post("/sim/subscriptions/{id}/cancel", cancel)
    r.add_post("/sim/invoices/{id}/pay", pay_invoice)
    r.add_post("/sim/faults", post_fault)
    r.add_get("/sim/faults", get_faults)
    r.add_delete("/sim/faults", clear_faults)
    r.add_patch("/sim/config", patch_config)
    r.add_get("/sim/stats", get_stats)
    r.add_post("/sim/events/{id}/resend", resend_event)
    r.add_post("/sim/idle", post_idle)
