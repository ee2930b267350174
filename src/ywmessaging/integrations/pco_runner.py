"""The sync runs of this process (a JobRunner) and the schedule: every few seconds, or at
once when kicked (a webhook, the end of a run), claim the churches whose sync is due from the
registry and queue a run for each; a run's row is its lease, so one church never syncs twice
at once across processes."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import uuid
from typing import Any

import structlog

from ..billing.state import entitlement
from ..church.job_runner import JobRunner
from ..config import Settings
from ..sqlq import registry as rq
from ..sqlq import tenant as tq
from .pco_connection import Pco
from .pco_sync import STALE_S, run_sync

log = structlog.get_logger("ywm.pco")

POLL_S = 5.0
CLAIM_BATCH = 8
HOLD_S = 300.0
DEFER_S = 5.0


class PcoRunner(JobRunner):
    """Planning Center sync runs, and the schedule that queues them."""

    kind = "pco_sync"

    def __init__(self, settings: Settings, supervisor: Any, registry_pool: Any,
                 pco: Pco) -> None:
        super().__init__(settings, supervisor, registry_pool)
        self.pco = pco
        self._kick = asyncio.Event()
        self._scheduler: asyncio.Task[None] | None = None

    async def run(self, tenant_id: uuid.UUID, job_id: uuid.UUID) -> None:
        """One run under the church's current plan; then the church may be claimed again."""
        try:
            ent = await entitlement(self._registry, self.settings, tenant_id,
                                    datetime.datetime.now(datetime.UTC))
            await run_sync(lambda: self.lease(tenant_id), self.pco, ent, tenant_id, job_id)
        finally:
            await rq(self.settings.sql_dir).pco_release(self._registry, tenant_id)
            self.kick()

    def kick(self) -> None:
        """Look for due churches now."""
        self._kick.set()

    def start_schedule(self) -> None:
        """Start the schedule loop in the runner's TaskGroup."""
        if self._group is not None and self._scheduler is None:
            self._scheduler = self._group.create_task(self._schedule(), name="pco_schedule")

    async def stop(self) -> None:
        """Stop the schedule, then the runs."""
        if self._scheduler is not None:
            self._scheduler.cancel()
        await super().stop()

    async def _schedule(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), POLL_S)
            self._kick.clear()
            try:
                await self.round()
            except Exception:  # the registry or a church is down: try again next round
                log.exception("pco_schedule_failed")

    async def round(self) -> int:
        """Queue a run for each church whose sync is due; how many were claimed."""
        due = await rq(self.settings.sql_dir).pco_claim_due(
            self._registry, CLAIM_BATCH, HOLD_S, self.settings.pco_sync_interval)
        for row in due:
            try:
                async with self.lease(row["tenant_id"]) as conn:
                    run = await queue_run(conn, self.settings, row["due_reason"])
                if run["status"] == "running":   # a change may come after its page: again soon
                    await rq(self.settings.sql_dir).pco_defer(self._registry, row["tenant_id"],
                                                              DEFER_S, row["due_reason"])
                self.start_run(row["tenant_id"], run)
            except Exception:
                log.exception("pco_queue_failed", tenant_id=str(row["tenant_id"]))
                await rq(self.settings.sql_dir).pco_release(self._registry, row["tenant_id"])
        return len(due)

    def start_run(self, tenant_id: uuid.UUID, run: Any) -> None:
        """Run a queued (or abandoned) run in this process."""
        age = (datetime.datetime.now(datetime.UTC) - run["updated_at"]).total_seconds()
        if run["status"] == "queued" or age > STALE_S:
            self.start(tenant_id, run["id"])


async def queue_run(conn: Any, settings: Settings, trigger: str, *, full: bool | None = None,
                    admin_id: uuid.UUID | None = None) -> Any:
    """Queue a run (full when asked, or when the last full one is older than
    PCO_FULL_SYNC_INTERVAL), or the run already queued or running."""
    q = tq(settings.sql_dir)
    if full is None:
        last = await q.pco_last_full_at(conn)
        age = datetime.timedelta(seconds=settings.pco_full_sync_interval)
        full = last is None or datetime.datetime.now(datetime.UTC) - last > age
    return await q.pco_queue_run(conn, "full" if full else "incremental", trigger, admin_id)
