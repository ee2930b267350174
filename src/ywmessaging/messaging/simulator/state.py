"""The simulator's in-memory state: what it was asked to send, numbers, orders, faults,
deliveries."""

from __future__ import annotations

import itertools
import random
import secrets
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .events import iso_now, number_order, settle_order

# faults that apply to POST /v2/messages
SEND_FAULTS = ("429", "500", "slow", "drop", "fail_delivery", "opted_out")
# `order_failure`: the next number order completes as `failure`;
# `release_not_found`: the next DELETE /v2/phone_numbers/{id} answers 404 and keeps the number;
# `release_error`: the next DELETE /v2/phone_numbers/{id} answers 500 and keeps the number
NUMBER_FAULTS = ("order_failure", "release_not_found", "release_error")
FAULT_KINDS = (*SEND_FAULTS, *NUMBER_FAULTS)
DEFAULT_ORDER_DELAY = 1.0


@dataclass
class Fault:
    """One injected fault: applies to the next `count` matching calls (None: until cleared) at
    `rate`."""

    kind: str
    count: int | None = None
    rate: float = 1.0
    delay: float = 1.0
    retry_after: float | None = 1.0

    def as_dict(self) -> dict[str, Any]:
        """JSON form for GET /sim/faults."""
        return {"kind": self.kind, "count": self.count, "rate": self.rate,
                "delay": self.delay, "retry_after": self.retry_after}


def phone_number_record(number_id: str, e164: str, status: str, *,
                        messaging_profile_id: str | None = None,
                        customer_reference: str | None = None) -> dict[str, Any]:
    """A number on the account as GET /v2/phone_numbers shows it (every field the SDK's
    `NumbersPhoneNumberDetailed` requires, and the usual optional ones)."""
    now = iso_now()
    return {
        "id": number_id, "record_type": "phone_number", "phone_number": e164,
        "status": status, "country_iso_alpha2": "US", "phone_number_type": "local",
        "created_at": now, "updated_at": now, "purchased_at": now,
        "activated_at": now if status == "active" else None,
        "deletion_lock_enabled": False, "tags": [], "external_pin": None,
        "connection_id": None, "connection_name": None, "billing_group_id": None,
        "customer_reference": customer_reference,
        "messaging_profile_id": messaging_profile_id, "messaging_profile_name": None,
        "messaging_campaign_id": None, "emergency_enabled": False,
        "emergency_address_id": None, "emergency_status": "disabled",
        "call_forwarding_enabled": True, "cnam_listing_enabled": False,
        "caller_id_name_enabled": False, "call_recording_enabled": False,
        "t38_fax_gateway_enabled": False, "hd_voice_enabled": False,
        "inbound_call_screening": "disabled", "source_type": "number_order",
    }


@dataclass
class SimState:
    """Everything the simulator remembers; one per simulator app (no module-level state)."""

    key: Ed25519PrivateKey
    public_key: str
    webhook_url: str
    api_key: str | None = None          # None: any non-empty Bearer token is accepted
    receipts: bool = True               # send message.sent / message.finalized automatically
    order_delay: float = DEFAULT_ORDER_DELAY   # seconds a number order stays `pending`
    order_webhooks: bool = True         # send number_order.complete when an order completes
    webhook_retry_delays: tuple[float, ...] = (0.25, 1.0)   # Telnyx: about three tries
    webhook_timeout: float = 2.0
    messages: list[dict[str, Any]] = field(default_factory=list)
    # message id → its current record as GET /v2/messages/{id} answers (the final status)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    # message id → the last status a receipt webhook told the service (the phones page shows it)
    told: dict[str, str] = field(default_factory=dict)
    # the members' texts sent with POST /sim/inbound, oldest first, with their webhook's status
    inbound: list[dict[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    # phone number id → the number's record (GET /v2/phone_numbers), in the order they came
    numbers: dict[str, dict[str, Any]] = field(default_factory=dict)
    # number order id → the order (GET /v2/number_orders/{id})
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    # 10DLC: brandId → brand, campaignId → campaign, E.164 → its campaign assignment
    brands: dict[str, dict[str, Any]] = field(default_factory=dict)
    campaigns: dict[str, dict[str, Any]] = field(default_factory=dict)
    assignments: dict[str, dict[str, Any]] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(6))
    # Telnyx phone number ids are long decimal strings, unlike order (line) ids, which are UUIDs
    # (a random start: ids of two simulators never meet)
    number_ids: itertools.count[int] = field(
        default_factory=lambda: itertools.count(10**18 + secrets.randbelow(8 * 10**18)))
    counters: dict[str, int] = field(default_factory=lambda: {
        "requests": 0, "accepted": 0, "faulted": 0, "webhooks_ok": 0, "webhooks_failed": 0,
        "lookups": 0, "orders": 0})

    def take_fault(self, kinds: tuple[str, ...] = SEND_FAULTS) -> Fault | None:
        """The fault of one of `kinds` that applies to this call, consuming one of its count
        (or None)."""
        for fault in list(self.faults):
            if fault.kind not in kinds:
                continue
            if fault.rate < 1.0 and self.rng.random() >= fault.rate:
                continue
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    self.faults.remove(fault)
            return fault
        return None

    def number(self, e164: str) -> dict[str, Any] | None:
        """The account's record of `e164` (any status), or None."""
        return next((n for n in self.numbers.values() if n["phone_number"] == e164), None)

    def owns(self, e164: str) -> bool:
        """Whether `e164` is an active number of the account (one it may send from)."""
        record = self.number(e164)
        return record is not None and record["status"] == "active"

    def add_number(self, e164: str, status: str = "active", **extra: Any) -> dict[str, Any]:
        """Put `e164` on the account under a new id (tests, `POST /sim/numbers`, orders)."""
        record = phone_number_record(str(next(self.number_ids)), e164, status, **extra)
        self.numbers[record["id"]] = record
        return record

    def adopt_order(self, order_id: str, e164: str) -> dict[str, Any]:
        """Take on an order placed with an earlier simulator, as completed (`ywm dev` restarted
        while a number was pending: the worker's next poll finds it done)."""
        order = number_order([e164], {})
        order["id"] = order_id
        settle_order(order, "success")
        self.orders[order_id] = order
        if self.number(e164) is None:
            self.add_number(e164)
        return order

    def drop_number(self, e164: str) -> None:
        """Take `e164` off the account (a failed order)."""
        record = self.number(e164)
        if record is not None:
            del self.numbers[record["id"]]
