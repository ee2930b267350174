"""Phone numbers: search and order through the carrier, follow the order (releasing, with its
recovery window: number_release.py).

The registry's `phone_numbers` is the routing table for inbound SMS (E.164 → church). A number's
life there (`status`):
- `pending`: reserved for the church (under a per-church lock, so the limit of
  YWM_NUMBERS_PER_CHURCH numbers holds) and ordered. Telnyx answers an order `pending`; the
  number is not the church's until the order completes, so it routes nothing and is not a
  sending number yet.
- `active`: the order completed (`number_order.complete` webhook, or the worker's poll of the
  order). It routes inbound texts; the church's first becomes its default sender
  (`settings.sender_number`), later ones may be assigned to a branch (`number_branches`: that
  branch's broadcasts go from it) or made the default (PATCH /api/v1/numbers/{e164}).
- `archived`: released by the church, recoverable until `release_after`; still ours at the
  carrier and still routing to the church, but not its sender and not counted in its limit.
- `releasing`: the window is over; the worker's sweep gives it back to the carrier (asked by
  the id it lists the number under, looked up by E.164 then) and deletes the row.
A failed order removes the row (the church may buy another number).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import orjson
import structlog

from ..config import Settings
from ..errors import AppError, Conflict, NotFound, ValidationFailed
from ..sqlq import registry as rq
from ..sqlq import tenant as tq
from .carrier import Carrier, CarrierError, NumberOrder
from .telnyx import parse_number_order

log = structlog.get_logger("ywm.numbers")
REGISTRY_TIMEOUT = 5.0
ORDER_EVENT = "number_order.complete"
POLL_BATCH = 50
# a pending number with no order id this old lost its order's answer (see `release`)
STALE_RESERVATION_S = 120.0
Lease = Callable[[uuid.UUID], AbstractAsyncContextManager[Any]]


class NumberTaken(Conflict):
    code, title = "number_taken", "Another church already has this number"


class NumberLimit(Conflict):
    code, title = "number_limit", "This church already has as many numbers as it may hold"


class NumberUnavailable(Conflict):
    code, title = "number_unavailable", "The carrier cannot sell this number"


class NumberPending(Conflict):
    code, title = "number_pending", "The carrier has not completed this number's order yet"


class NumberNotActive(Conflict):
    code, title = "number_not_active", "This number is archived; recover it first"


class NumberNotFound(NotFound):
    code, title = "number_not_found", "This church has no such number"


class CarrierUnavailable(AppError):
    status, code, title = 502, "carrier_unavailable", "The carrier did not answer; try again"


class OrderNotYetKnown(Exception):
    """A completed order no number records yet (the purchase has not stored its id)."""


def carrier_failure(exc: CarrierError) -> AppError:
    if exc.retryable or exc.http_status is None or exc.http_status >= 500:
        return CarrierUnavailable(headers={"Retry-After": f"{exc.retry_after or 5:g}"})
    return NumberUnavailable(detail=f"carrier error {exc.code}")


def number_json(row: Any) -> dict[str, Any]:
    """A number as the API shows it (its id is the E.164 number)."""
    return {"id": row["e164"], "phone_number": row["e164"], "status": row["status"],
            "assigned_at": row["assigned_at"], "release_after": row.get("release_after")}


def _json(detail: dict[str, Any]) -> str:
    return orjson.dumps(detail).decode()


async def search(carrier: Carrier, *, area_code: str | None, limit: int) -> list[str]:
    """Numbers the church could buy."""
    try:
        return await carrier.search_numbers(area_code=area_code, limit=limit)
    except CarrierError as exc:
        raise carrier_failure(exc) from exc


async def _uses(conn: Any, settings: Settings) -> tuple[dict[str, str], str | None]:
    """(number → its branch id, the default sender) from the church's database."""
    t = tq(settings.sql_dir)
    branches = {r["e164"]: str(r["branch_id"]) for r in await t.numbers_branch_map(conn)}
    church = await t.get_settings(conn)
    return branches, church["sender_number"]


def _with_uses(row: Any, branches: dict[str, str], default: str | None) -> dict[str, Any]:
    out = number_json(row)
    out["branch_id"] = branches.get(row["e164"])
    out["default"] = row["e164"] == default
    return out


async def list_numbers(conn: Any, registry_pool: Any, settings: Settings,
                       tenant_id: uuid.UUID, status: str | None = None) -> list[dict[str, Any]]:
    """The church's numbers (in one `status` when given), each with its branch and whether it
    is the default sender."""
    rows = await rq(settings.sql_dir).numbers_of_tenant(registry_pool, tenant_id, status,
                                                        timeout=REGISTRY_TIMEOUT)
    branches, default = await _uses(conn, settings)
    return [_with_uses(r, branches, default) for r in rows]


async def assign(conn: Any, registry_pool: Any, settings: Settings, *, tenant_id: uuid.UUID,
                 admin_id: uuid.UUID, e164: str, branch_id: uuid.UUID | None,
                 change_branch: bool, make_default: bool) -> dict[str, Any]:
    """Assign an active number to a branch (or to none), and/or make it the default sender.
    404 not this church's number; 409 `number_pending` / `number_not_active`; 422 no such
    branch."""
    row = await rq(settings.sql_dir).number_of_tenant(registry_pool, e164, tenant_id,
                                                      timeout=REGISTRY_TIMEOUT)
    if row is None:
        raise NumberNotFound()
    if row["status"] == "pending":
        raise NumberPending()
    if row["status"] != "active":
        raise NumberNotActive()
    t = tq(settings.sql_dir)
    async with conn.transaction():
        if change_branch:
            if branch_id is not None and await t.numbers_branch_live(conn, branch_id) is None:
                raise ValidationFailed("no such branch", field="branch_id",
                                       error_code="not_found")
            await t.numbers_unassign_branch(conn, e164, branch_id)
            if branch_id is not None:
                await t.numbers_assign_branch(conn, e164, branch_id)
        if make_default:
            await t.numbers_make_default(conn, e164)
        await t.numbers_audit(conn, admin_id, "number.assign", e164, _json(
            {"branch_id": str(branch_id) if branch_id else None, "changed_branch": change_branch,
             "default": make_default}))
    branches, default = await _uses(conn, settings)
    return _with_uses(row, branches, default)


async def _reserve(registry_pool: Any, settings: Settings, tenant_id: uuid.UUID,
                   e164: str) -> None:
    q = rq(settings.sql_dir)
    async with registry_pool.acquire(timeout=REGISTRY_TIMEOUT) as conn, conn.transaction():
        await q.lock_tenant_numbers(conn, tenant_id, timeout=REGISTRY_TIMEOUT)
        if await q.count_tenant_numbers(conn, tenant_id) >= settings.numbers_per_church:
            raise NumberLimit()
        if await q.reserve_number(conn, e164, tenant_id) is None:
            raise NumberTaken()


def _holding(conn: Any) -> Lease:
    """A lease on the church's database that is the connection the request already holds."""

    @asynccontextmanager
    async def lease(_tenant_id: uuid.UUID) -> AsyncIterator[Any]:
        yield conn

    return lease


async def buy(conn: Any, registry_pool: Any, carrier: Carrier, settings: Settings, *,
              tenant_id: uuid.UUID, admin_id: uuid.UUID, e164: str) -> dict[str, Any]:
    """Reserve (`pending`), order at the carrier, record the order; active at once only if the
    carrier completed the order before answering. 409s; 502 when the carrier failed."""
    q = rq(settings.sql_dir)
    await _reserve(registry_pool, settings, tenant_id, e164)
    try:
        order = await carrier.order_number(e164)
    except CarrierError as exc:
        if exc.outcome_unknown:
            # the order may exist: keep the reservation (pending, no order id) so the number
            # is not sold twice; releasing it later releases whatever the carrier made
            log.warning("number_order_outcome_unknown", tenant_id=str(tenant_id), number=e164)
        else:
            await q.delete_tenant_number(registry_pool, e164, tenant_id, timeout=REGISTRY_TIMEOUT)
        raise carrier_failure(exc) from exc
    if order.status_of(e164) == "failure":
        await q.delete_tenant_number(registry_pool, e164, tenant_id, timeout=REGISTRY_TIMEOUT)
        raise NumberUnavailable(detail="the carrier's order for this number failed")
    t = tq(settings.sql_dir)
    async with conn.transaction():   # before the order is findable, so it comes first
        await t.numbers_audit(conn, admin_id, "number.buy", e164, _json(
            {"carrier_order_id": order.order_id, "order_status": order.status}))
    await q.set_number_order(registry_pool, e164, tenant_id, order.order_id,
                             timeout=REGISTRY_TIMEOUT)
    if order.status_of(e164) != "pending":
        await settle(registry_pool, settings, _holding(conn), order)
    row = await q.number_of_tenant(registry_pool, e164, tenant_id, timeout=REGISTRY_TIMEOUT)
    if row is None:   # released or failed meanwhile
        raise NumberNotFound()
    return number_json(row)


async def settle(registry_pool: Any, settings: Settings, lease: Lease,
                 order: NumberOrder) -> tuple[str, uuid.UUID | None]:
    """Apply a carrier order's status to the number waiting for it: ("activated" | "order_failed"
    | "pending" | "already_settled", the church). Idempotent: the church's database is written
    first (the sender number, an audit line), then the registry row changes; a repeat finds the
    row settled, or the church's database already changed. Raises OrderNotYetKnown when no
    number records the order, AppError when the church's database cannot be used now."""
    q, t = rq(settings.sql_dir), tq(settings.sql_dir)
    row = await q.number_for_order(registry_pool, order.order_id, timeout=REGISTRY_TIMEOUT)
    if row is None:
        raise OrderNotYetKnown(order.order_id)
    e164, tenant_id = row["e164"], row["tenant_id"]
    outcome = order.status_of(e164)
    if row["status"] != "pending":
        return "already_settled", tenant_id
    if outcome == "pending":
        return "pending", tenant_id
    detail = _json({"carrier_order_id": order.order_id})
    async with lease(tenant_id) as conn, conn.transaction():
        if outcome == "success":   # the default sender only if the church has none
            await t.numbers_adopt_sender(conn, e164)
            await t.numbers_active_audit(conn, e164, detail)
        else:
            await t.numbers_clear_sender(conn, e164)
            await t.numbers_carrier_audit(conn, "number.order_failed", e164, detail)
    if outcome == "success":
        await q.activate_number(registry_pool, e164, order.order_id, timeout=REGISTRY_TIMEOUT)
        log.info("number_active", tenant_id=str(tenant_id), order_id=order.order_id)
        return "activated", tenant_id
    await q.drop_failed_order(registry_pool, e164, order.order_id, timeout=REGISTRY_TIMEOUT)
    log.warning("number_order_failed", tenant_id=str(tenant_id), order_id=order.order_id)
    return "order_failed", tenant_id


async def settle_order_event(registry_pool: Any, settings: Settings, lease: Lease,
                             payload: dict[str, Any]) -> tuple[str, uuid.UUID | None]:
    """A `number_order.complete` webhook's payload (the order), applied like `settle`."""
    order = parse_number_order(payload)
    if order is None:
        return "malformed_order", None
    return await settle(registry_pool, settings, lease, order)


async def poll_orders(registry_pool: Any, lease: Lease, carrier: Carrier,
                      settings: Settings, limit: int = POLL_BATCH) -> int:
    """Ask the carrier about orders still pending (each at most every
    YWM_NUMBER_ORDER_POLL_INTERVAL seconds, claimed so several workers share them) and settle
    those that completed; how many settled."""
    rows = await rq(settings.sql_dir).claim_pending_orders(
        registry_pool, settings.number_order_poll_interval, limit, timeout=REGISTRY_TIMEOUT)
    settled = 0
    for row in rows:
        where = {"tenant_id": str(row["tenant_id"]), "order_id": row["carrier_order_id"]}
        try:
            order = await carrier.get_number_order(row["carrier_order_id"])
            if order is None:
                log.warning("number_order_unknown", **where)
                continue
            outcome, _ = await settle(registry_pool, settings, lease, order)
        except (CarrierError, AppError, OrderNotYetKnown) as exc:
            log.warning("number_order_poll_failed", error=repr(exc), **where)
            continue
        if outcome in ("activated", "order_failed"):
            settled += 1
    return settled
