"""What happens to a subscription over time: checkout completes it, invoices are charged
(paid, or failed as told by `fail-next-payment`), periods renew on `advance`, dunning ends it;
every change is an event delivered as a webhook."""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from . import objects
from .delivery import StripeWebhookSender
from .replies import STRIPE_SIM_SENDER, STRIPE_SIM_STATE, StripeError, missing
from .state import DAY, Billing, StripeSimState


class Account:
    """The simulated Stripe account: the state and the webhook sender together."""

    def __init__(self, state: StripeSimState, sender: StripeWebhookSender) -> None:
        self.state, self.sender = state, sender

    def emit(self, kind: str, obj: dict[str, Any],
             previous: dict[str, Any] | None = None) -> dict[str, Any]:
        """Record an event about `obj` and deliver it."""
        event = self.state.put("event", objects.event(kind, obj, previous))
        self.sender.send(event)
        return event

    def subscription(self, sub_id: str) -> dict[str, Any]:
        """A subscription by id, or 404."""
        sub = self.state.get("subscription", sub_id)
        if sub is None:
            raise missing("subscription", sub_id)
        return sub

    def change(self, sub: dict[str, Any], **fields: Any) -> None:
        """Update a subscription; customer.subscription.updated with what it was, if changed."""
        previous = {k: copy.deepcopy(sub.get(k)) for k in fields if sub.get(k) != fields[k]}
        sub.update(fields)
        if previous:
            self.emit("customer.subscription.updated", sub, previous)

    def complete_checkout(self, session: dict[str, Any]) -> dict[str, Any]:
        """The customer paid on the hosted page: customer, subscription, first invoice."""
        if session["status"] != "open":
            raise StripeError(400, f"Checkout Session {session['id']} is {session['status']}.",
                              code="checkout_session_not_open")
        state = self.state
        if session["customer"] is None:
            cust = state.put("customer", objects.customer({"email": session["customer_email"]}))
            session["customer"] = cust["id"]
        price = state.get("price", session["_line"]["price"])
        assert price is not None
        data = session["_subscription_data"]
        now = state.now()
        trial_end = _trial_end(data, now)
        metadata = {str(k): str(v) for k, v in (data.get("metadata") or {}).items()}
        sub = state.put("subscription", objects.subscription(
            session["customer"], price, session["_line"]["quantity"], now=now,
            trial_end=trial_end, metadata=metadata))
        state.clocks[sub["id"]] = now
        state.billing.setdefault(sub["id"], Billing())
        self.emit("customer.subscription.created", sub)
        start, end = _period(sub)
        first = self._invoice(sub, "subscription_create", start, end, trial=trial_end is not None)
        paid = self._charge(sub, first)
        session.update(status="complete", subscription=sub["id"], invoice=first["id"],
                       payment_status="no_payment_required" if trial_end else
                       ("paid" if paid else "unpaid"))
        self.emit("checkout.session.completed", session)
        return sub

    def expire_checkout(self, session: dict[str, Any]) -> None:
        """The customer gave up (or the card was refused until the session expired)."""
        if session["status"] != "open":
            raise StripeError(400, f"Checkout Session {session['id']} is {session['status']}.",
                              code="checkout_session_not_open")
        session["status"] = "expired"
        self.emit("checkout.session.expired", session)

    def _invoice(self, sub: dict[str, Any], reason: str, start: int, end: int, *,
                 trial: bool = False) -> dict[str, Any]:
        item = sub["items"]["data"][0]
        price = item["price"]
        amount = 0 if trial else price["unit_amount"] * item["quantity"]
        what = f"Trial period for {price.get('nickname') or price['id']}" if trial else \
            f"{item['quantity']} × {price.get('nickname') or price['id']}"
        lines = [objects.invoice_line(amount, sub["currency"], what, price_id=price["id"],
                                      start=start, end=end)]
        if not trial:   # pending invoice items go on the next real invoice
            for ii in self.state.objects["invoiceitem"].values():
                if ii["customer"] == sub["customer"] and ii["invoice"] is None:
                    lines.append(objects.invoice_line(
                        ii["amount"], ii["currency"], ii["description"] or "Invoice item",
                        price_id=ii["pricing"]["price_details"]["price"], start=start, end=end))
        inv = self.state.put("invoice", objects.invoice(sub, lines, reason=reason, start=start,
                                                        end=end, base_url=self.state.base_url))
        if not trial:
            for ii in self.state.objects["invoiceitem"].values():
                if ii["customer"] == sub["customer"] and ii["invoice"] is None:
                    ii["invoice"] = inv["id"]
        sub["latest_invoice"] = inv["id"]
        return inv

    def _charge(self, sub: dict[str, Any], inv: dict[str, Any]) -> bool:
        """Try to collect `inv`; emit invoice.paid or payment_failed/action_required."""
        plan = self.state.billing.setdefault(sub["id"], Billing())
        inv["attempt_count"] += 1
        inv["attempted"] = True
        if inv["amount_due"] > 0 and plan.failures > 0:
            plan.failures -= 1
            inv["next_payment_attempt"] = self.state.now(sub["id"]) + 3 * DAY
            if plan.reason == "authentication_required":
                self.emit("invoice.payment_action_required", inv)
            self.emit("invoice.payment_failed", inv)
            return False
        inv.update(status="paid", amount_paid=inv["amount_due"], amount_remaining=0,
                   next_payment_attempt=None)
        inv["status_transitions"]["paid_at"] = self.state.now(sub["id"])
        self.emit("invoice.paid", inv)
        return True

    def pay(self, inv: dict[str, Any]) -> None:
        """Collect an open invoice now (the customer fixed the card)."""
        if inv["status"] != "open":
            raise StripeError(400, f"Invoice {inv['id']} is already {inv['status']}.",
                              code="invoice_not_open")
        sub = self.subscription(inv["parent"]["subscription_details"]["subscription"])
        self.state.billing.setdefault(sub["id"], Billing()).failures = 0
        self._charge(sub, inv)
        if sub["status"] in ("past_due", "unpaid"):
            self.change(sub, status="active")

    def advance(self, sub: dict[str, Any], to: str) -> dict[str, Any]:
        """Move the subscription's clock to its next boundary (`period_end`: the trial's or
        the period's end, a dunning retry when past due) or to three days before its trial
        ends (`trial_will_end`)."""
        if sub["status"] in ("canceled", "incomplete_expired"):
            raise StripeError(400, f"Subscription {sub['id']} is {sub['status']}.",
                              code="subscription_canceled")
        end = _period(sub)[1]
        if to == "trial_will_end":
            if sub["status"] != "trialing" or sub["trial_end"] is None:
                raise StripeError(400, "The subscription is not trialing.", code="not_trialing")
            self.state.clocks[sub["id"]] = sub["trial_end"] - self.state.trial_will_end_days * DAY
            self.emit("customer.subscription.trial_will_end", sub)
            return sub
        self.state.clocks[sub["id"]] = end
        if sub["status"] in ("past_due", "unpaid") and sub["latest_invoice"]:
            return self._retry(sub)
        if sub["cancel_at_period_end"]:
            return self.cancel(sub)
        return self._renew(sub, end)

    def _renew(self, sub: dict[str, Any], start: int) -> dict[str, Any]:
        item = sub["items"]["data"][0]
        end = objects.period_end(item["price"], start)
        reason = "subscription_cycle"
        item.update(current_period_start=start, current_period_end=end)
        inv = self._invoice(sub, reason, start, end)
        if self._charge(sub, inv):
            self.change(sub, status="active", latest_invoice=inv["id"])
        else:
            self.change(sub, status="past_due", latest_invoice=inv["id"])
        return sub

    def _retry(self, sub: dict[str, Any]) -> dict[str, Any]:
        inv = self.state.get("invoice", sub["latest_invoice"])
        assert inv is not None
        if inv["status"] == "paid":
            return self._renew(sub, _period(sub)[1])
        if self._charge(sub, inv):
            self.change(sub, status="active")
        elif inv["attempt_count"] >= self.state.dunning_attempts:
            inv["next_payment_attempt"] = None
            if self.state.dunning_end == "unpaid":
                self.change(sub, status="unpaid")
            else:
                inv["status"] = "uncollectible"
                return self.cancel(sub)
        return sub

    def cancel(self, sub: dict[str, Any], *, at_period_end: bool = False) -> dict[str, Any]:
        """Cancel now (customer.subscription.deleted) or at the period's end (updated)."""
        if sub["status"] == "canceled":
            raise StripeError(400, f"Subscription {sub['id']} is already canceled.",
                              code="subscription_canceled")
        now = self.state.now(sub["id"])
        if at_period_end:
            self.change(sub, cancel_at_period_end=True, cancel_at=_period(sub)[1],
                         canceled_at=now)
            return sub
        sub.update(status="canceled", canceled_at=sub["canceled_at"] or now, ended_at=now)
        sub["cancellation_details"]["reason"] = "cancellation_requested"
        self.emit("customer.subscription.deleted", sub)
        return sub


def _period(sub: dict[str, Any]) -> tuple[int, int]:
    item = sub["items"]["data"][0]
    return int(item["current_period_start"]), int(item["current_period_end"])


def _trial_end(data: dict[str, Any], now: int) -> int | None:
    if data.get("trial_end") not in (None, ""):
        end = str(data["trial_end"])
        return None if end == "now" else int(end)
    if data.get("trial_period_days") not in (None, ""):
        return now + int(data["trial_period_days"]) * DAY
    return None


def account(request: web.Request) -> Account:
    """The account the request acts on."""
    return Account(request.app[STRIPE_SIM_STATE], request.app[STRIPE_SIM_SENDER])
