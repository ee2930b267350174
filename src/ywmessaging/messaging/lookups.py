"""Carrier lookups of sends whose final receipt never came (step 4 of outbox.py's docstring).

Telnyx retries a webhook for seconds only, so a receipt can be lost. `ob_mark_sent` plans a
lookup YWM_RECEIPT_CHECK_AFTER seconds after each send (a receipt that arrives cancels it); a
drain looks up the rows that are due (GET /v2/messages/{id}) and applies a final status through
`apply_receipt`, exactly like a webhook (forward only, mirrored onto a conversation reply).
Up to STATUS_CHECKS_MAX lookups at doubling intervals, then the row is left `sent`
(delivery_unconfirmed at the carrier, or a message it no longer knows).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import structlog

from ..config import Settings
from ..events.publisher import Publisher
from .carrier import Carrier, CarrierError
from .receipts import apply_receipt, receipt_from_payload
from .webhooks import parse_time

log = structlog.get_logger("ywm.outbox")
STATUS_LOOKUPS_PER_DRAIN = 100
STATUS_CHECKS_MAX = 3      # lookups of one message before it is left `sent`
STATUS_DEFER_S = 60.0      # the carrier could not be asked: try these rows again this much later


class _Sender(Protocol):
    @property
    def carrier(self) -> Carrier: ...
    @property
    def clock(self) -> Callable[[], datetime]: ...
    @property
    def events(self) -> Publisher | None: ...


class _Counts(Protocol):
    looked_up: int
    settled: int


class Drain(Protocol):
    """What a lookup round uses of the drain it runs in (outbox.Drain, which calls it)."""

    @property
    def db_lock(self) -> asyncio.Lock: ...
    @property
    def conn(self) -> Any: ...
    @property
    def q(self) -> Any: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def tenant_id(self) -> uuid.UUID: ...
    @property
    def stopping(self) -> Callable[[], bool]: ...
    @property
    def s(self) -> _Sender: ...
    @property
    def stats(self) -> _Counts: ...


async def check_statuses(d: Drain, deadline: float) -> None:
    """Look up the drain's church's sends whose final receipt is overdue (bounded by the
    drain's time slice and shutdown); apply what the carrier knows."""
    async with d.db_lock:
        rows = await d.q.ob_status_due(d.conn, STATUS_LOOKUPS_PER_DRAIN)
    gate = asyncio.Semaphore(d.settings.send_concurrency)
    deferred: list[uuid.UUID] = []

    async def one(row: Any) -> None:
        async with gate:
            if deferred or d.stopping() or time.monotonic() >= deadline:
                deferred.append(row["id"])
                return
            try:
                record = await d.s.carrier.get_message(row["carrier_message_id"])
            except CarrierError as err:   # ask again later; the rest of the round too
                log.warning("status_lookup_failed", tenant_id=str(d.tenant_id),
                            code=err.code, http_status=err.http_status)
                deferred.append(row["id"])
                return
        d.stats.looked_up += 1
        await _settle(d, row, record)

    async with asyncio.TaskGroup() as tg:
        for r in rows:
            tg.create_task(one(r))
    if deferred:
        async with d.db_lock:
            await d.q.ob_status_defer(d.conn, deferred, STATUS_DEFER_S)


async def _settle(d: Drain, row: Any, record: dict[str, Any] | None) -> None:
    cid = str(row["carrier_message_id"])
    occurred = (parse_time(record.get("completed_at")) if record else None) or d.s.clock()
    event_id = f"lookup:{cid}" if len(cid) <= 121 else \
        f"lookup:{hashlib.sha256(cid.encode()).hexdigest()}"
    receipt = None if record is None else receipt_from_payload(
        event_id, "carrier.lookup", occurred, record)
    statuses: list[dict[str, Any]] = []
    async with d.db_lock:
        if receipt is not None and receipt.state in ("delivered", "failed") and \
                await apply_receipt(d.conn, d.settings, receipt, statuses) == "applied":
            d.stats.settled += 1
            if d.s.events is not None:   # the church's live events hear it like a receipt
                for status in statuses:
                    d.s.events.status(d.tenant_id, status)
            return
        await d.q.ob_status_checked(d.conn, row["id"], d.settings.receipt_check_after,
                                    STATUS_CHECKS_MAX)
