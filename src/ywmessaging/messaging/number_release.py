"""Releasing a phone number: archived for a recovery window, recovered, or released for good.

`DELETE /api/v1/numbers/{e164}` archives an active number: the registry row turns `archived`
with `release_after` (now + YWM_NUMBER_RECOVERY_DAYS); if it was the church's default sender,
its oldest other active number becomes the default; its branch assignment is removed and the
conversations that ran on it fall back to the default sender. The church's other numbers are
left as they are. Meanwhile the number stays on the carrier account (still billed, never sent from
except the automatic STOP/START/HELP answers to a member who texts it), stays mapped to its
church (inbound keywords are honoured, other texts reach its conversations), no other church
can buy it, and it does not count toward the church's number limit.

`POST /api/v1/numbers/{e164}/recover` makes it `active` again (and the default sender if the
church has none), while the window lasts and if the church has room for it; its branch
assignment is not restored. After the window, `sweep` (the worker)
claims it (`releasing`, held for CLAIM_HOLD_S), releases it at the carrier (a number the
carrier no longer lists counts as released), writes `number.released` in the church's audit
log (once per archiving) and deletes the row. A carrier fault or an unreachable church
database leaves it `releasing` with a backoff; a sweeper that dies lets it go after the hold.
Every step is idempotent, so a crash anywhere is finished by a later sweep.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
import structlog

from ..config import Settings
from ..errors import AppError, Conflict, TenantNotFound, TenantSuspended
from ..sqlq import registry as rq
from ..sqlq import tenant as tq
from .carrier import Carrier, CarrierError
from .numbers_service import (
    REGISTRY_TIMEOUT,
    STALE_RESERVATION_S,
    Lease,
    NumberLimit,
    NumberNotFound,
    NumberPending,
    carrier_failure,
    number_json,
)

log = structlog.get_logger("ywm.numbers")
SWEEP_BATCH = 50
CLAIM_HOLD_S = 600.0          # a claimed release not finished by then is taken again
RETRY_BASE_S, RETRY_CAP_S = 60.0, 3600.0


class NumberRecoveryExpired(AppError):
    status, code, title = (410, "number_recovery_expired",
                           "This number's recovery window is over; it is being released")


class NumberNotArchived(Conflict):
    code, title = "number_not_archived", "This number is not archived"


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def retry_in(attempts: int) -> float:
    """Seconds before the next try of a release that failed `attempts` times (1, 2, …)."""
    return float(min(RETRY_CAP_S, RETRY_BASE_S * 2 ** max(0, attempts - 1)))


async def archive(conn: Any, registry_pool: Any, settings: Settings, *,
                  tenant_id: uuid.UUID, admin_id: uuid.UUID, e164: str) -> None:
    """Archive the church's active number for the recovery window (idempotent: an archived
    number keeps its window). 404 if not this church's; 409 `number_pending` while its order
    is pending (a reservation whose order's answer was lost is released by the next sweep)."""
    q, t = rq(settings.sql_dir), tq(settings.sql_dir)
    row = await q.archive_number(registry_pool, e164, tenant_id, settings.number_recovery_days,
                                 timeout=REGISTRY_TIMEOUT)
    action = "number.release"
    if row is None:
        row = await q.number_of_tenant(registry_pool, e164, tenant_id, timeout=REGISTRY_TIMEOUT)
        if row is None:
            raise NumberNotFound()
        if row["status"] in ("archived", "releasing"):
            return
        if row["carrier_order_id"] is not None or \
                row["age"].total_seconds() < STALE_RESERVATION_S:
            raise NumberPending()
        row = await q.release_reservation(registry_pool, e164, tenant_id,
                                          timeout=REGISTRY_TIMEOUT)
        if row is None:   # its order settled meanwhile
            raise NumberPending()
        action = "number.release_reservation"
    detail = {"archived_at": _iso(row["archived_at"]), "release_after": _iso(row["release_after"])}
    others = await q.numbers_of_tenant(registry_pool, tenant_id, "active",
                                       timeout=REGISTRY_TIMEOUT)
    async with conn.transaction():
        await t.numbers_clear_sender(conn, e164)
        await t.numbers_forget(conn, e164)
        if others:   # the church keeps a default sender: its oldest active number
            await t.numbers_adopt_sender(conn, others[0]["e164"])
        await t.numbers_audit(conn, admin_id, action, e164, orjson.dumps(detail).decode())
    log.info("number_archived", tenant_id=str(tenant_id), release_after=detail["release_after"])


async def recover(conn: Any, registry_pool: Any, carrier: Carrier, settings: Settings, *,
                  tenant_id: uuid.UUID, admin_id: uuid.UUID, e164: str) -> dict[str, Any]:
    """Make the church's archived number active and its sending number again; an active one is
    answered as it is (idempotent). 404 not this church's; 409 `number_pending`,
    `number_limit`; 410 `number_recovery_expired` (the window is over, or the carrier no
    longer lists the number); 502 when the carrier cannot say."""
    q, t = rq(settings.sql_dir), tq(settings.sql_dir)
    row = await q.number_of_tenant(registry_pool, e164, tenant_id, timeout=REGISTRY_TIMEOUT)
    if row is None:
        raise NumberNotFound()
    if row["status"] == "active":
        return number_json(row)
    if row["status"] == "pending":
        raise NumberPending()
    if row["status"] != "archived" or row["window_over"]:
        raise NumberRecoveryExpired()
    try:
        listed = await carrier.find_number(e164)
    except CarrierError as exc:
        raise carrier_failure(exc) from exc
    if listed is None:   # released at the carrier by hand: nothing to recover
        await q.end_recovery_window(registry_pool, e164, tenant_id, timeout=REGISTRY_TIMEOUT)
        log.warning("number_recovery_not_listed", tenant_id=str(tenant_id))
        raise NumberRecoveryExpired(detail="the carrier no longer lists this number")
    async with registry_pool.acquire(timeout=REGISTRY_TIMEOUT) as rconn, rconn.transaction():
        await q.lock_tenant_numbers(rconn, tenant_id, timeout=REGISTRY_TIMEOUT)
        now = await q.number_of_tenant(rconn, e164, tenant_id)
        if now is not None and now["status"] == "active":   # a concurrent recovery won
            return number_json(now)
        if await q.count_tenant_numbers(rconn, tenant_id) >= settings.numbers_per_church:
            raise NumberLimit()
        recovered = await q.recover_number(rconn, e164, tenant_id, timeout=REGISTRY_TIMEOUT)
        if recovered is None:   # the window closed (or the sweep took it) meanwhile
            raise NumberRecoveryExpired()
        # the church's database in the same breath: if it fails, the registry change rolls back
        async with conn.transaction():
            await t.numbers_adopt_sender(conn, e164)
            await t.numbers_audit(conn, admin_id, "number.recover", e164, orjson.dumps(
                {"archived_at": _iso(row["archived_at"])}).decode())
    log.info("number_recovered", tenant_id=str(tenant_id))
    return number_json(recovered)


async def sweep(registry_pool: Any, lease: Lease, carrier: Carrier, settings: Settings,
                limit: int = SWEEP_BATCH) -> int:
    """Release at the carrier the numbers whose window is over (claimed, so several workers
    share them) and remove their mapping; how many were released."""
    q = rq(settings.sql_dir)
    rows = await q.claim_due_releases(registry_pool, CLAIM_HOLD_S, limit,
                                      timeout=REGISTRY_TIMEOUT)
    released = 0
    for row in rows:
        e164, tenant_id = row["e164"], row["tenant_id"]
        where = {"tenant_id": str(tenant_id), "attempts": row["release_attempts"] + 1}
        try:
            await carrier.release_number(e164)
            await _audit_released(lease, settings, row)
        except (CarrierError, AppError) as exc:
            wait = retry_in(row["release_attempts"] + 1)
            error = exc.code if isinstance(exc, AppError) else f"carrier:{exc.code or exc}"
            await q.release_failed(registry_pool, e164, wait, str(error),
                                   timeout=REGISTRY_TIMEOUT)
            log.warning("number_release_failed", error=str(error), retry_in=wait, **where)
            continue
        await q.drop_released_number(registry_pool, e164, timeout=REGISTRY_TIMEOUT)
        log.info("number_released", **where)
        released += 1
    return released


async def _audit_released(lease: Lease, settings: Settings, row: Any) -> None:
    """`number.released` in the church's audit log (skipped for a church no longer active:
    the number is released all the same)."""
    detail = orjson.dumps({"archived_at": _iso(row["archived_at"]),
                           "release_after": _iso(row["release_after"])}).decode()
    try:
        async with lease(row["tenant_id"]) as conn:
            await tq(settings.sql_dir).numbers_released_audit(conn, row["e164"], detail)
    except (TenantNotFound, TenantSuspended):
        log.info("number_released_audit_skipped", tenant_id=str(row["tenant_id"]))
