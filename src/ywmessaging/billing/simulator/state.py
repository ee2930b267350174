"""The Stripe simulator's in-memory state: the account's objects, idempotent replies, faults,
events and their deliveries."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

API_VERSION = "2026-10-28.endive"   # the version the pinned `stripe` library asks for
FAULT_KINDS = ("429", "500", "delay")
IDEMPOTENCY_KEEP = 10_000           # replies remembered (Stripe: 24 h)
KINDS = ("customer", "product", "price", "checkout.session", "subscription", "invoice",
         "invoiceitem", "billing_portal.session", "event")
DAY = 86_400


def new_id(prefix: str) -> str:
    """A Stripe-looking id (`cus_…`)."""
    return f"{prefix}_{secrets.token_urlsafe(18).replace('-', 'A').replace('_', 'z')}"


@dataclass
class Fault:
    """An injected fault on `/v1/*` calls: the next `count` calls (None: until cleared)."""

    kind: str
    count: int | None = 1
    delay: float = 1.0
    path: str | None = None         # only calls whose path starts with this

    def as_dict(self) -> dict[str, Any]:
        """JSON form for GET /sim/faults."""
        return {"kind": self.kind, "count": self.count, "delay": self.delay, "path": self.path}


@dataclass
class Billing:
    """What the simulator does to a subscription at its next charge."""

    failures: int = 0               # charges still to fail
    reason: str = "card_declined"   # or authentication_required (payment_action_required)


@dataclass
class StripeSimState:
    """Everything the simulator remembers; one per simulator app (no module-level state)."""

    webhook_secret: str
    webhook_url: str
    base_url: str = ""
    api_key: str | None = None              # None: any `sk_test_…`/`rk_test_…` key
    webhook_retry_delays: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    webhook_timeout: float = 5.0
    dunning_attempts: int = 3               # failed charges before the end below
    dunning_end: str = "canceled"           # or "unpaid"
    trial_will_end_days: int = 3
    objects: dict[str, OrderedDict[str, dict[str, Any]]] = field(
        default_factory=lambda: {kind: OrderedDict() for kind in KINDS})
    idempotent: OrderedDict[tuple[str, str], tuple[str, int, bytes]] = field(
        default_factory=OrderedDict)
    faults: list[Fault] = field(default_factory=list)
    billing: dict[str, Billing] = field(default_factory=dict)     # subscription id → plan
    clocks: dict[str, int] = field(default_factory=dict)         # subscription id → its now
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=lambda: {
        "requests": 0, "faulted": 0, "replayed": 0, "webhooks_ok": 0, "webhooks_failed": 0,
        "webhook_attempts": 0})

    def put(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Store an object under its id (newest last)."""
        self.objects[kind][obj["id"]] = obj
        return obj

    def get(self, kind: str, obj_id: str) -> dict[str, Any] | None:
        """One object by id, or None."""
        return self.objects[kind].get(obj_id)

    def newest_first(self, kind: str) -> list[dict[str, Any]]:
        """Every object of a kind, newest first (Stripe's list order)."""
        return list(reversed(self.objects[kind].values()))

    def find_price(self, lookup_key: str) -> dict[str, Any] | None:
        """The price that holds `lookup_key` now."""
        return next((p for p in self.objects["price"].values()
                     if p.get("lookup_key") == lookup_key), None)

    def take_fault(self, path: str) -> Fault | None:
        """The fault that applies to a call of `path`, consuming one of its count."""
        for fault in list(self.faults):
            if fault.path and not path.startswith(fault.path):
                continue
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    self.faults.remove(fault)
            return fault
        return None

    def remember(self, key: tuple[str, str], reply: tuple[str, int, bytes]) -> None:
        """Keep an idempotent reply (bounded, oldest forgotten first)."""
        self.idempotent[key] = reply
        while len(self.idempotent) > IDEMPOTENCY_KEEP:
            self.idempotent.popitem(last=False)

    def now(self, subscription_id: str | None = None) -> int:
        """The time as a subscription sees it (its clock moves on `advance`), else real."""
        real = int(time.time())
        if subscription_id is None:
            return real
        return max(real, self.clocks.get(subscription_id, real))
