"""The simulator's in-memory state: what it was asked to send, numbers, faults, deliveries."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

FAULT_KINDS = ("429", "500", "slow", "drop", "fail_delivery", "opted_out")


@dataclass
class Fault:
    """One injected fault: applies to the next `count` sends (None: until cleared) at `rate`."""

    kind: str
    count: int | None = None
    rate: float = 1.0
    delay: float = 1.0
    retry_after: float | None = 1.0

    def as_dict(self) -> dict[str, Any]:
        """JSON form for GET /sim/faults."""
        return {"kind": self.kind, "count": self.count, "rate": self.rate,
                "delay": self.delay, "retry_after": self.retry_after}


@dataclass
class SimState:
    """Everything the simulator remembers; one per simulator app (no module-level state)."""

    key: Ed25519PrivateKey
    public_key: str
    webhook_url: str
    api_key: str | None = None          # None: any non-empty Bearer token is accepted
    receipts: bool = True               # send message.sent / message.finalized automatically
    webhook_retry_delays: tuple[float, ...] = (0.25, 1.0)   # Telnyx: about three tries
    webhook_timeout: float = 2.0
    messages: list[dict[str, Any]] = field(default_factory=list)
    # message id → its current record as GET /v2/messages/{id} answers (the final status)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    numbers: dict[str, str] = field(default_factory=dict)   # number id -> E.164 (owned)
    rng: random.Random = field(default_factory=lambda: random.Random(6))
    counters: dict[str, int] = field(default_factory=lambda: {
        "requests": 0, "accepted": 0, "faulted": 0, "webhooks_ok": 0, "webhooks_failed": 0,
        "lookups": 0})

    def take_fault(self) -> Fault | None:
        """The fault that applies to this send, consuming one of its count (or None)."""
        for fault in list(self.faults):
            if fault.rate < 1.0 and self.rng.random() >= fault.rate:
                continue
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    self.faults.remove(fault)
            return fault
        return None
