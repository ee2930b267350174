"""Deleting a church for good, in steps that can resume after a crash at any point.

The church turns `deleting` first: from then on no lease is given for it (every access token
of it is refused with 404 `tenant_not_found`, a refresh fails, login finds no church). Then,
in this order, each step safe to run twice, the last one finished recorded in
`tenants.teardown_step` (a second run starts after it; a failed step is simply run again):

1. `stripe`     cancel the subscription now (a subscription Stripe no longer has counts as done)
2. `numbers`    release every number at the carrier at once (no recovery window for a deleted
                church), dropping each mapping right after its release
3. `tendlc`     the church's 10DLC registrations (registry `tendlc_registrations`)
4. `logins`     `admin_logins`: the emails may sign up again
5. `inbox`      its stored webhook events (they hold phone numbers and texts), its work-queue
                entry and outbound message index
6. `exports`    its export files (`YWM_EXPORT_DIR/<church id>/`)
7. `database`   DROP DATABASE … WITH (FORCE) on its server
8. `role`       DROP ROLE
9. `tombstone`  the registry row keeps id, plan, dates and the transitions; name, Stripe ids and
                the role's password go; status `deleted`

The carrier and Stripe are called before anything that would let us forget what to release
or cancel, so a crash never leaves a number billed to nobody.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from ..billing.stripe_client import StripeBilling
from ..church import exports
from ..config import Settings
from ..crypto import SecretBox
from ..db import pg
from ..errors import Conflict, TenantNotFound
from ..messaging.carrier import Carrier
from ..registry.servers import admin_target
from ..sqlq import registry as rq
from ..tenants.lifecycle import TenantStatusConflict, record

log = structlog.get_logger("ywm.teardown")
STEPS = ("stripe", "numbers", "tendlc", "logins", "inbox", "exports", "database", "role",
         "tombstone")
DROP_TIMEOUT = 60.0
CLAIM_S = 900.0   # longer than any teardown takes (each step is bounded)
StepHook = Callable[[uuid.UUID, str], Awaitable[None]]


class TeardownInProgress(Conflict):
    code, title = "teardown_in_progress", "Another process is tearing this church down"


@dataclass
class Teardown:
    """What a teardown needs; `after_step` (tests) runs after each finished step."""

    registry: Any
    settings: Settings
    box: SecretBox
    carrier: Carrier
    stripe: StripeBilling
    after_step: StepHook | None = None

    async def run(self, tenant_id: uuid.UUID, *, actor: str,
                  due_by: datetime | None = None) -> list[str]:
        """Tear the church down (or finish an interrupted teardown); the steps run now.
        One process at a time per church (a claim on its registry row, CLAIM_S long, so a
        crashed process's claim lapses): another one meanwhile gets 409
        `teardown_in_progress`. `due_by` (the worker's round): only a church whose deletion
        is still scheduled by then, checked under the row's lock (the owner may have cancelled
        since the round listed it), or whose teardown already began."""
        q = rq(self.settings.sql_dir)
        owner = f"{socket.gethostname()[:100]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        if not await q.lc_claim_teardown(self.registry, tenant_id, CLAIM_S, owner):
            if await q.lc_tenant(self.registry, tenant_id) is None:
                raise TenantNotFound()
            raise TeardownInProgress()
        try:
            return await self._run(tenant_id, actor, due_by)
        finally:
            await q.lc_release_teardown(self.registry, tenant_id, owner)

    async def _run(self, tenant_id: uuid.UUID, actor: str,
                   due_by: datetime | None) -> list[str]:
        q = rq(self.settings.sql_dir)
        row = await self._begin(tenant_id, actor, due_by)
        if row is None:
            return []
        done = row["teardown_step"]
        todo = STEPS[STEPS.index(done) + 1:] if done in STEPS else STEPS
        for step in todo:
            await getattr(self, f"_{step}")(tenant_id, row)
            if step != "tombstone":
                await q.lc_step_done(self.registry, tenant_id, step)
            log.info("teardown_step_done", tenant_id=str(tenant_id), step=step)
            if self.after_step is not None:
                await self.after_step(tenant_id, step)
        return list(todo)

    async def _begin(self, tenant_id: uuid.UUID, actor: str, due_by: datetime | None) -> Any:
        """Mark the church `deleting` (recorded once); its row, or None if already deleted
        (or, with `due_by`, no longer due: its deletion was cancelled)."""
        q = rq(self.settings.sql_dir)
        async with self.registry.acquire() as conn, conn.transaction():
            row = await q.lc_lock_tenant(conn, tenant_id)
            if row is None:
                raise TenantNotFound()
            if row["status"] == "deleted":
                return None
            if due_by is not None and row["status"] != "deleting" and (
                    row["deletion_due_at"] is None or row["deletion_due_at"] > due_by):
                log.info("teardown_skipped", tenant_id=str(tenant_id), reason="not_due")
                return None
            if row["status"] not in ("active", "suspended", "deleting"):
                raise TenantStatusConflict(f"the church is {row['status']}")
            if row["status"] != "deleting":
                await q.lc_start_teardown(conn, tenant_id)
                await record(conn, self.settings, tenant_id, "teardown_started",
                             old=row["status"], new="deleting", actor=actor,
                             reason="deletion due" if row["deletion_due_at"] else "operator")
            return await q.lc_lock_tenant(conn, tenant_id)

    async def _stripe(self, tenant_id: uuid.UUID, row: Any) -> None:
        if row["stripe_subscription_id"]:
            await self.stripe.cancel_subscription(row["stripe_subscription_id"])

    async def _numbers(self, tenant_id: uuid.UUID, row: Any) -> None:
        q = rq(self.settings.sql_dir)
        for n in await q.lc_numbers(self.registry, tenant_id):
            await self.carrier.release_number(n["e164"])
            await q.lc_drop_number(self.registry, n["e164"], tenant_id)
            log.info("number_released", tenant_id=str(tenant_id), reason="church_deleted")

    async def _tendlc(self, tenant_id: uuid.UUID, row: Any) -> None:
        await rq(self.settings.sql_dir).lc_drop_registrations(self.registry, tenant_id)

    async def _logins(self, tenant_id: uuid.UUID, row: Any) -> None:
        await rq(self.settings.sql_dir).lc_drop_logins(self.registry, tenant_id)

    async def _inbox(self, tenant_id: uuid.UUID, row: Any) -> None:
        q = rq(self.settings.sql_dir)
        await q.lc_drop_inbox(self.registry, tenant_id)
        await q.lc_drop_work(self.registry, tenant_id)

    async def _exports(self, tenant_id: uuid.UUID, row: Any) -> None:
        where = exports.folder(self.settings, tenant_id)
        await asyncio.to_thread(shutil.rmtree, where, ignore_errors=True)
        if where.exists():
            raise OSError(f"could not remove {where}")

    async def _database(self, tenant_id: uuid.UUID, row: Any) -> None:
        await self._on_server(tenant_id, pg.drop_database, row["db_name"])

    async def _role(self, tenant_id: uuid.UUID, row: Any) -> None:
        await self._on_server(tenant_id, pg.drop_role, row["db_role"])

    async def _tombstone(self, tenant_id: uuid.UUID, row: Any) -> None:
        q = rq(self.settings.sql_dir)
        async with self.registry.acquire() as conn, conn.transaction():
            await q.lc_tombstone(conn, tenant_id)
            await record(conn, self.settings, tenant_id, "deleted", old="deleting",
                         new="deleted", actor="worker", reason=None)

    async def _on_server(self, tenant_id: uuid.UUID,
                         drop: Callable[[Any, str], Awaitable[None]], name: str) -> None:
        server = await rq(self.settings.sql_dir).lc_server(self.registry, tenant_id)
        conn = await pg.connect(admin_target(server, self.box))
        try:
            await asyncio.wait_for(drop(conn, name), DROP_TIMEOUT)
        finally:
            await conn.close()
