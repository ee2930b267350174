"""The outbox worker: claims churches from the registry queue and does their due work.

Per claimed church, on one leased connection: queue scheduled broadcasts that are due,
materialize due recurring occurrences, then drain the outbox (crash sweep first). The claim is
renewed while the church is worked on; when it is given back, its next due time comes from the
church's own database. Several workers (on several machines) share the queue: a church is
claimed by one at a time (`FOR UPDATE SKIP LOCKED` plus a lease in the registry).

A reconciliation round (one worker per interval wins the registry timer) re-derives every
active church's next due time, so an enqueue lost between a tenant commit and the registry
write only delays the work. Another round polls phone-number orders still pending at the
carrier (`numbers_service.poll_orders`), another releases at the carrier the archived numbers
whose recovery window is over (`number_release.sweep`), and one reads 10DLC registrations still
pending and assigns numbers to approved campaigns (`compliance_sync.poll`). A church whose
subscription lapsed or whose 10DLC campaign is suspended is held: its rows stay queued, its
STOP/START/HELP replies go. `stop()` (SIGTERM) lets each slot finish its batch in flight, then
every claim is released.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from ..auth.emails import EmailSender
from ..billing import notices
from ..billing.state import entitlement
from ..billing.stripe_client import StripeBilling
from ..config import Settings
from ..crypto import SecretBox
from ..errors import AppError, TenantSuspended
from ..events.publisher import Publisher
from ..observability.metrics import Metrics
from ..ops import housekeeping, lifecycle_rounds
from ..ops.teardown import StepHook, Teardown
from ..sqlq import registry as rq
from ..sqlq import tenant as tq
from . import (
    broadcasts,
    compliance,
    compliance_sync,
    number_release,
    numbers_service,
    queue,
    recurring,
)
from .carrier import Carrier
from .outbox import Drain, DrainStats, Sender

log = structlog.get_logger("ywm.worker")
DRAIN_SLICE_S = 10.0          # then the church goes back to the queue so others get a turn
UNAVAILABLE_RETRY_S = 30.0    # a church whose database is down is tried again after this
ERROR_RETRY_S = 10.0
RECONCILE_CONCURRENCY = 4
STEP_TIMEOUT_S = 300.0        # a bound on one church's step, whatever happens inside
# A church that may not send (billing) is looked at again after this; a subscription that
# becomes active puts it back on the queue at once (billing/subscriptions.py).
HELD_RECHECK_S = 900.0


def retry_after(exc: AppError) -> float:
    """Seconds before trying a church again after `exc` (its Retry-After, bounded)."""
    try:
        return min(UNAVAILABLE_RETRY_S, max(0.5, float(exc.headers.get("Retry-After", ""))))
    except ValueError:
        return UNAVAILABLE_RETRY_S


def utc_now() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


def default_owner() -> str:
    """host:pid:random — unique per worker instance, readable in the registry."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """One worker process's engine (also run in-process by `ywm dev` and the tests)."""

    def __init__(self, settings: Settings, registry_pool: Any, supervisor: Any,
                 carrier: Carrier, *, owner: str | None = None,
                 clock: Callable[[], datetime] = utc_now,
                 inbox_sweep: Callable[[], Any] | None = None,
                 metrics: Metrics | None = None, emails: EmailSender | None = None,
                 events: Publisher | None = None) -> None:
        self.settings = settings
        self.registry_pool = registry_pool
        self.supervisor = supervisor
        self.owner = owner or default_owner()
        self.clock = clock
        self.carrier = carrier
        self.sender = Sender(settings, carrier, registry_pool, self.owner, clock, events=events)
        self.stats = DrainStats()
        self.inbox_sweep = inbox_sweep
        self.metrics = metrics
        self.emails = emails   # billing notices from the housekeeping round (None: none)
        self._stop = asyncio.Event()

    @property
    def stopping(self) -> bool:
        """True once shutdown began."""
        return self._stop.is_set()

    def stop(self) -> None:
        """Begin shutdown: no new claims; batches in flight finish."""
        self._stop.set()

    async def run(self) -> None:
        """Work until `stop()`; then release every claim still held."""
        log.info("worker_started", owner=self.owner, slots=self.settings.worker_concurrency)
        try:
            async with asyncio.TaskGroup() as tg:
                for i in range(self.settings.worker_concurrency):
                    tg.create_task(self._slot(), name=f"worker-slot-{i}")
                tg.create_task(self._every(self.settings.worker_reconcile_interval,
                                           self._reconcile_round), name="worker-reconcile")
                tg.create_task(self._every(min(self.settings.housekeeping_interval, 60.0),
                                           self._housekeeping_round),
                               name="worker-housekeeping")
                tg.create_task(self._every(self.settings.number_order_poll_interval,
                                           self.number_orders_round),
                               name="worker-number-orders")
                tg.create_task(self._every(self.settings.number_release_sweep_interval,
                                           self.number_releases_round),
                               name="worker-number-releases")
                tg.create_task(self._every(min(self.settings.tendlc_poll_interval, 60.0),
                                           self.tendlc_round), name="worker-10dlc")
                if self.inbox_sweep is not None:
                    tg.create_task(self._every(self.settings.webhook_sweep_interval,
                                               self.inbox_sweep), name="worker-inbox-sweep")
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5.0):
                    await queue.release_all(self.registry_pool, self.settings, self.owner)
            log.info("worker_stopped", owner=self.owner, sent=self.stats.sent,
                     failed=self.stats.failed, unknown=self.stats.unknown)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _slot(self) -> None:
        while not self.stopping:
            try:
                worked = await self.step()
            except Exception as exc:  # the registry hiccuped: wait and try again
                log.warning("worker_step_failed", error=repr(exc))
                worked = False
            if not worked:
                await self._pause(self.settings.worker_poll_interval)

    async def _every(self, interval: float, job: Callable[[], Any]) -> None:
        while not self.stopping:
            try:
                await job()
            except Exception as exc:
                log.warning("worker_periodic_failed", job=getattr(job, "__name__", "job"),
                            error=repr(exc))
            await self._pause(interval)

    async def step(self) -> bool:
        """Claim one due church and work on it; False when nothing was due."""
        tenant_id = await queue.claim(self.registry_pool, self.settings, self.owner,
                                      self.clock())
        if tenant_id is None:
            return False
        await self.process(tenant_id)
        return True

    async def drain_all(self, max_steps: int = 1000) -> int:
        """Work until nothing is due (tests and benchmarks drive time this way)."""
        steps = 0
        while steps < max_steps and await self.step():
            steps += 1
        return steps

    async def process(self, tenant_id: uuid.UUID) -> None:
        """Work on a claimed church, then give it back with its next due time."""
        lost = asyncio.Event()
        renewer = asyncio.create_task(self._renew(tenant_id, lost), name="worker-renew")
        next_due: datetime | None = self.clock() + timedelta(seconds=ERROR_RETRY_S)
        try:
            async with asyncio.timeout(STEP_TIMEOUT_S):
                next_due = await self._work(tenant_id, lambda: self.stopping or lost.is_set())
        except TenantSuspended:  # nothing is sent; a resume puts it back on the queue
            next_due = self.clock() + timedelta(seconds=HELD_RECHECK_S)
        except AppError as exc:  # database down or busy, schema behind: try later
            log.warning("worker_tenant_unavailable", tenant_id=str(tenant_id), code=exc.code)
            next_due = self.clock() + timedelta(seconds=retry_after(exc))
        except Exception as exc:
            log.error("worker_tenant_failed", tenant_id=str(tenant_id), error=repr(exc))
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            if not lost.is_set():
                await queue.release(self.registry_pool, self.settings, tenant_id, self.owner,
                                    next_due)

    async def _work(self, tenant_id: uuid.UUID, stopping: Callable[[], bool]) -> datetime | None:
        s = self.settings
        async with self.supervisor.lease(tenant_id) as conn:
            now = self.clock()
            ent = await entitlement(self.registry_pool, s, tenant_id, now)
            queued, occurrences = 0, []
            if ent.sending:  # held while it may not send: nothing scheduled is due yet
                queued = await broadcasts.queue_due_scheduled(conn, s, ent, now)
                occurrences = await recurring.run_due(conn, s, ent, now)

            async def may_send() -> bool:  # re-checked before each batch
                # billing (the subscription) or 10DLC (the campaign suspended or expired)
                billing = (await entitlement(self.registry_pool, s, tenant_id,
                                             self.clock())).sending
                hold = "billing" if not billing else await compliance.sending_hold(conn, s)
                if hold is not None:
                    log.info("worker_tenant_sending_held", tenant_id=str(tenant_id),
                             reason=hold if hold == "billing" else f"campaign_{hold}")
                return hold is None

            stats = await Drain(self.sender, tenant_id, conn, stopping,
                                may_send).run(DRAIN_SLICE_S)
            self.stats.add(stats)
            if self.metrics is not None:
                self.metrics.observe_drain(stats)
            if queued or occurrences or stats.claimed or stats.expired or stats.requeued:
                log.info("worker_tenant_worked", tenant_id=str(tenant_id), scheduled=queued,
                         occurrences=len(occurrences), claimed=stats.claimed, sent=stats.sent,
                         retried=stats.retried, failed=stats.failed, unknown=stats.unknown,
                         skipped=stats.skipped, expired=stats.expired,
                         requeued=stats.requeued)
            due: datetime | None = await tq(s.sql_dir).ob_next_due(conn, s.receipt_check_after > 0)
            if stats.held and due is not None:
                due = max(due, now + timedelta(seconds=HELD_RECHECK_S))
            return due

    async def _renew(self, tenant_id: uuid.UUID, lost: asyncio.Event) -> None:
        every = self.settings.worker_claim_ttl / 3
        while True:
            await asyncio.sleep(every)
            try:
                if not await queue.renew(self.registry_pool, self.settings, tenant_id,
                                         self.owner, self.clock()):
                    log.warning("worker_claim_lost", tenant_id=str(tenant_id))
                    lost.set()
                    return
            except Exception as exc:  # keep trying until the claim would expire
                log.warning("worker_claim_renew_failed", error=repr(exc))

    async def _reconcile_round(self) -> None:
        if await queue.take_timer(self.registry_pool, self.settings, queue.RECONCILE_TIMER,
                                  self.owner, self.clock(),
                                  self.settings.worker_reconcile_interval):
            await self.reconcile()

    async def _housekeeping_round(self) -> None:
        if await queue.take_timer(self.registry_pool, self.settings, queue.HOUSEKEEPING_TIMER,
                                  self.owner, self.clock(),
                                  self.settings.housekeeping_interval):
            await housekeeping.sweep_all(self.registry_pool, self.supervisor, self.settings,
                                         self.metrics)
            try:
                await self.lifecycle_round()
            except Exception as exc:  # the next round tries again
                log.warning("lifecycle_round_failed", error=type(exc).__name__)
            if self.emails is not None:
                try:
                    await notices.send_trial_endings(self.registry_pool, self.supervisor.lease,
                                                     self.settings, self.emails, self.clock())
                except Exception as exc:  # the next round tries again
                    log.warning("billing_notices_failed", error=type(exc).__name__)

    async def lifecycle_round(self,
                              after_step: StepHook | None = None) -> lifecycle_rounds.DeletionRound:
        """Suspend churches whose billing stopped sending too long ago, and tear down those
        whose deletion is due (ops/lifecycle_rounds.py)."""
        now = self.clock()
        await lifecycle_rounds.suspend_lapsed(self.registry_pool, self.settings, now)
        stripe = StripeBilling(self.settings)
        try:
            teardown = Teardown(self.registry_pool, self.settings,
                                SecretBox(self.settings.require_secret_key()), self.carrier,
                                stripe, after_step)
            return await lifecycle_rounds.delete_due(teardown, now)
        finally:
            await stripe.close()

    async def number_orders_round(self) -> int:
        """Poll the carrier for phone-number orders still pending and settle the completed
        ones (each number is claimed in the registry, so several workers share the work)."""
        return await numbers_service.poll_orders(self.registry_pool, self.supervisor.lease,
                                                 self.carrier, self.settings)

    async def number_releases_round(self) -> int:
        """Release at the carrier the archived numbers whose recovery window is over and drop
        their mapping (each claimed in the registry; a carrier fault is retried with backoff)."""
        return await number_release.sweep(self.registry_pool, self.supervisor.lease,
                                          self.carrier, self.settings)

    async def tendlc_round(self) -> dict[str, int]:
        """Read 10DLC brands and campaigns still pending at the carrier (the webhook may never
        come) and assign the church's number to an approved campaign."""
        return await compliance_sync.poll(self.registry_pool, self.supervisor.lease,
                                          self.carrier, self.settings)

    async def reconcile(self) -> int:
        """Re-derive every active church's next due time and enqueue it; how many had work."""
        rows = await self._active_tenants()
        gate = asyncio.Semaphore(RECONCILE_CONCURRENCY)
        found = 0

        async def one(tenant_id: uuid.UUID) -> None:
            nonlocal found
            async with gate:
                try:
                    async with self.supervisor.lease(tenant_id) as conn:
                        due = await tq(self.settings.sql_dir).ob_next_due(
                            conn, self.settings.receipt_check_after > 0)
                except Exception as exc:  # one church's trouble is not the sweep's
                    log.warning("reconcile_tenant_failed", tenant_id=str(tenant_id),
                                error=type(exc).__name__)
                    return
                if due is not None:
                    found += 1
                    await queue.enqueue(self.registry_pool, self.settings, tenant_id, due)

        async with asyncio.TaskGroup() as tg:
            for tenant_id in rows:
                tg.create_task(one(tenant_id))
        log.info("worker_reconciled", tenants=len(rows), with_work=found)
        return found

    async def _active_tenants(self) -> list[uuid.UUID]:
        rows = await rq(self.settings.sql_dir).active_tenant_ids(self.registry_pool)
        return [r["id"] for r in rows]
