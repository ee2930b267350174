"""Drain one church's outbox: claim due rows in batches, send each through the carrier, record
the outcome. At most once per recipient, no silent loss:

1. `ob_claim` (FOR UPDATE SKIP LOCKED) puts this worker's lease on a batch, which stays
   `queued`: nothing has been sent. Opted-out members' rows become `skipped` right there;
   during quiet hours broadcast rows are deferred to the window's end.
2. Each row is paced (per church, per sender number), then marked `sending` (attempts + 1,
   committed) just before its own carrier call, and its outcome stored: `sent` with the
   carrier id (and the registry's carrier id → church index first, so receipts find the
   church); a retry later for 429/5xx/timeouts; `failed` for permanent errors (40300 also opts
   the member out); `unknown` when the request may have reached the carrier.
3. After a lease runs out (the worker died): a row still `sending` may have reached the
   carrier, so the next drain's crash sweep turns it `unknown` and it is never resent
   automatically; a claimed row never tried is still `queued` and is simply claimed again.
   So a crash costs at most the sends in flight (and accepted sends not yet recorded), never
   the rest of the batch. Broadcasts whose last rows a sweep settled are finished at the end
   of the drain.
4. A row left `sent` (its final receipt never came: the carrier retries a webhook for seconds
   only) is looked up at the carrier `YWM_RECEIPT_CHECK_AFTER` seconds after the send, and up to
   twice more at doubling intervals; a final status found there is applied like a receipt
   (lookups.py).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from ..config import Settings
from ..events.publisher import Publisher
from ..sqlq import registry as rq
from ..sqlq import tenant as tq
from .carrier import Carrier, CarrierError, SendRequest, SendResult
from .lookups import check_statuses
from .pacing import Pacer, backoff
from .schedule import quiet_until

log = structlog.get_logger("ywm.outbox")
BACKOFF_CAP_S = 300.0
INDEX_TIMEOUT_S = 5.0
# Successful sends are recorded in small groups (one registry and one tenant statement each):
# when this many are waiting, when they have waited this long, or when no send is in flight.
FLUSH_ROWS = 16
FLUSH_AGE_S = 0.05
PROGRESS_EVERY_S = 1.0   # broadcast.progress events per broadcast at most this often


@dataclass
class DrainStats:
    """What one drain did."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    released: int = 0
    deferred: int = 0
    expired: int = 0
    requeued: int = 0      # claimed by a dead worker, never tried: back in the queue
    looked_up: int = 0     # carrier lookups of sends whose final receipt never came
    settled: int = 0       # ... that found a final status and applied it
    held: int = 0          # batches not begun: the church may not send (billing)

    def add(self, other: DrainStats) -> None:
        """Accumulate another drain's figures."""
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Sender:
    """Everything a drain needs besides the tenant connection."""

    settings: Settings
    carrier: Carrier
    registry_pool: Any
    owner: str
    clock: Callable[[], datetime]
    pacers: dict[uuid.UUID, Pacer] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)
    events: Publisher | None = None   # broadcast progress to the church's live events

    def pacer(self, tenant_id: uuid.UUID) -> Pacer:
        """The church's buckets (kept between drains: a worker owns a church while it drains)."""
        found = self.pacers.get(tenant_id)
        if found is None:
            s = self.settings
            found = Pacer(s.send_rate_per_church, s.send_rate_per_number)
            self.pacers[tenant_id] = found
        return found

    def batch_size(self) -> int:
        """Rows per claim: no more than the pacing lets out within half a lease."""
        s = self.settings
        rates = [r for r in (s.send_rate_per_church, s.send_rate_per_number) if r > 0]
        if not rates:
            return s.send_batch_size
        return max(1, min(s.send_batch_size, int(min(rates) * s.send_lease_seconds / 2)))


class Drain:
    """One pass over one church's outbox, on one leased connection."""

    def __init__(self, sender: Sender, tenant_id: uuid.UUID, conn: Any,
                 stopping: Callable[[], bool],
                 may_send: Callable[[], Awaitable[bool]] | None = None) -> None:
        self.s = sender
        self.settings = sender.settings
        self.q = tq(sender.settings.sql_dir)
        self.tenant_id = tenant_id
        self.conn = conn
        self.stopping = stopping
        # Asked before each batch: a church whose subscription lapsed keeps its broadcast and
        # conversation rows queued (its STOP/START/HELP replies still go).
        self.may_send = may_send
        self.pacer = sender.pacer(tenant_id)
        self.stats = DrainStats()
        self.db_lock = asyncio.Lock()  # one connection: statements take turns
        self._church: Any = None
        self._sent: list[tuple[uuid.UUID, str]] = []   # accepted, not yet recorded
        self._sent_since = 0.0
        self._in_flight = 0
        self._progress_at: dict[uuid.UUID, float] = {}

    async def run(self, slice_s: float) -> DrainStats:
        """Send batches until nothing is due, the time slice ends, or shutdown begins."""
        self._church = await self.q.get_settings(self.conn)
        deadline = time.monotonic() + slice_s
        while not self.stopping() and time.monotonic() < deadline:
            held = self.may_send is not None and not await self.may_send()
            self.stats.held += held
            if not await self._batch(held):
                break
        # Derived again after the sweeps: a broadcast whose last rows a dead worker held (or
        # that it never finished) is complete once no row is left to send.
        await self.q.bc_finish_settled(self.conn, self.s.clock())
        if self.settings.receipt_check_after > 0 and not self.stopping():
            await check_statuses(self, deadline)
        return self.stats

    async def _batch(self, held: bool = False) -> bool:
        """Claim and send one batch; `held`: the church may not send, so only keyword replies
        (STOP/START/HELP) are claimed and its other rows stay queued."""
        now = self.s.clock()
        swept = await self.q.ob_expire_leases(self.conn, now)  # crash sweep
        self.stats.expired += swept["expired"]
        self.stats.requeued += swept["requeued"]
        church = self._church
        quiet_end = quiet_until(now, church["quiet_hours_start"], church["quiet_hours_end"],
                                church["time_zone"])
        if quiet_end is not None:
            self.stats.deferred += await self.q.ob_defer_quiet(self.conn, now, quiet_end)
        lease = self.settings.send_lease_seconds
        rows = await self.q.ob_claim(self.conn, now, self.s.batch_size(), self.s.owner, lease,
                                     quiet_end is not None, held)
        if not rows:
            return False
        self.stats.claimed += len(rows)
        broadcasts = list({r["broadcast_id"] for r in rows if r["broadcast_id"] is not None})
        if broadcasts:
            await self.q.bc_mark_sending(self.conn, broadcasts)
        # A send must start early enough to finish before the lease runs out.
        margin = min(self.settings.telnyx_timeout + 1.0, lease / 2)
        send_by = time.monotonic() + lease - margin
        unsent: list[uuid.UUID] = []
        gate = asyncio.Semaphore(self.settings.send_concurrency)
        # A TaskGroup: if one row's bookkeeping fails, the others stop before the connection
        # goes back to the pool (rows not yet begun stay `queued` and are claimed again after
        # the lease; a row whose send had begun turns `unknown`).
        async with asyncio.TaskGroup() as tg:
            for r in rows:
                tg.create_task(self._one(r, gate, send_by, unsent))
        await self._flush()
        if unsent:  # pacing would have outlasted the lease: back to the queue, due when paced
            at = self.s.clock() + timedelta(seconds=self.pacer.delay(self._any_number(rows)))
            await self.q.ob_release(self.conn, unsent, self.s.owner, at)
            self.stats.released += len(unsent)
        if broadcasts:
            finished = await self.q.bc_finish(self.conn, broadcasts, self.s.clock())
            await self._progress(broadcasts, {r["id"] for r in finished})
        return True

    async def _progress(self, broadcasts: list[uuid.UUID], finished: set[uuid.UUID]) -> None:
        """Publish `broadcast.progress` (at most every PROGRESS_EVERY_S per broadcast) and
        `broadcast.completed` for the broadcasts this batch touched (counting a broadcast's
        rows costs a scan of them: not after every batch)."""
        events = self.s.events
        if events is None:
            return
        now = time.monotonic()
        due = [b for b in broadcasts if b in finished
               or now - self._progress_at.get(b, -PROGRESS_EVERY_S) >= PROGRESS_EVERY_S]
        if not due:
            return
        for row in await self.q.ev_broadcast_progress(self.conn, due):
            done = row["id"] in finished
            self._progress_at[row["id"]] = now
            data = {k: row[k] for k in ("status", "recipient_count", "pending", "sent",
                                        "delivered", "failed", "other")}
            data["broadcast_id"] = row["id"]
            events.emit_in_order(self.tenant_id, [("broadcast.progress", data)] + (
                [("broadcast.completed", data)] if done else []))

    def _any_number(self, rows: list[Any]) -> str:
        return str(rows[0]["from_phone"] or self._church["sender_number"] or "")

    async def _one(self, row: Any, gate: asyncio.Semaphore, send_by: float,
                   unsent: list[uuid.UUID]) -> None:
        if row["state"] == "skipped":
            self.stats.skipped += 1
            return
        number = row["from_phone"] or self._church["sender_number"]
        if not number:
            await self._final(row, "failed", "no_sender_number", "the church has no number")
            return
        async with gate:
            wait = self.pacer.reserve(number)
            if time.monotonic() + wait > send_by:
                unsent.append(row["id"])
                return
            if wait > 0:
                await asyncio.sleep(wait)
            async with self.db_lock:  # from here on, the carrier may receive it
                attempts = await self.q.ob_begin_send(self.conn, row["id"], self.s.owner,
                                                      self.s.clock())
            if attempts is None:  # the lease ran out (or the row was taken): never sent here
                unsent.append(row["id"])
                return
            row = {**dict(row), "attempts": attempts}
            self._in_flight += 1
            try:
                result = await self.s.carrier.send(SendRequest(
                    number, row["to_phone"], row["body"],
                    media_urls=tuple(row["media_urls"] or ())))
            except CarrierError as err:
                await self._failed_send(row, number, err)
                return
            except Exception as exc:  # unexpected: the request may have gone out
                log.error("send_crashed", tenant_id=str(self.tenant_id), error=repr(exc))
                await self._final(row, "unknown", "send_crashed", type(exc).__name__)
                return
            finally:
                self._in_flight -= 1
        await self._sent_one(row, result)

    async def _sent_one(self, row: Any, result: SendResult) -> None:
        if not self._sent:
            self._sent_since = time.monotonic()
        self._sent.append((row["id"], result.carrier_message_id))
        if (len(self._sent) >= FLUSH_ROWS or self._in_flight == 0
                or time.monotonic() - self._sent_since >= FLUSH_AGE_S):
            await self._flush()

    async def _flush(self) -> None:
        """Record accepted sends: the registry's carrier id → church index first (so a fast
        receipt finds the church), then `sent` with the carrier ids in the tenant database."""
        if not self._sent:
            return
        done, self._sent = self._sent, []
        ids, carrier_ids = [d[0] for d in done], [d[1] for d in done]
        try:
            async with asyncio.timeout(INDEX_TIMEOUT_S):
                await rq(self.settings.sql_dir).insert_outbound_index_many(
                    self.s.registry_pool, carrier_ids, self.tenant_id)
        except Exception as exc:  # receipts for these messages will not find the church
            log.warning("outbound_index_failed", tenant_id=str(self.tenant_id),
                        error=type(exc).__name__, messages=len(done))
        async with self.db_lock:
            stored = await self.q.ob_mark_sent(self.conn, ids, carrier_ids, self.s.owner,
                                               self.settings.receipt_check_after or None)
        self.stats.sent += stored
        if stored != len(done):
            log.warning("send_results_not_stored", tenant_id=str(self.tenant_id),
                        missing=len(done) - stored)

    async def _failed_send(self, row: Any, number: str, err: CarrierError) -> None:
        code = err.code or (f"http_{err.http_status}" if err.http_status else "carrier_error")
        if err.outcome_unknown:
            await self._final(row, "unknown", code, str(err))
        elif err.opted_out:   # the row fails and the member is opted out together, or neither
            async with self.db_lock, self.conn.transaction():
                await self.q.ob_mark_final(self.conn, row["id"], "failed", code[:64],
                                           "the recipient opted out at the carrier", self.s.owner)
                if row["member_id"] is not None:
                    await self.q.ob_opt_out_member(self.conn, row["member_id"], self.s.clock())
            self.stats.failed += 1
        elif not err.retryable:
            await self._final(row, "failed", code, str(err))
        elif row["attempts"] >= self.settings.send_max_attempts:
            await self._final(row, "failed", code, f"gave up after {row['attempts']} tries: {err}")
        else:
            delay = backoff(row["attempts"], base=self.settings.send_backoff_base,
                            cap=BACKOFF_CAP_S, retry_after=err.retry_after, rng=self.s.rng)
            if err.http_status == 429:  # slow the whole church down, not just this row
                self.pacer.pause(number, err.retry_after or delay)
            at = self.s.clock() + timedelta(seconds=delay)
            async with self.db_lock:
                await self.q.ob_mark_retry(self.conn, row["id"], at, code, str(err),
                                           self.s.owner)
            self.stats.retried += 1

    async def _final(self, row: Any, state: str, code: str, detail: str) -> None:
        async with self.db_lock:
            await self.q.ob_mark_final(self.conn, row["id"], state, code[:64], detail,
                                       self.s.owner)
        if state == "failed":
            self.stats.failed += 1
        else:
            self.stats.unknown += 1
