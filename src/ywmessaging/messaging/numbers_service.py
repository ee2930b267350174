"""Phone numbers: search and buy through the carrier, assign in the registry, release.

The registry's `phone_numbers` is the routing table for inbound SMS (E.164 → church), so a
number is reserved there (under a per-church lock, so the one-number limit holds) before it is
ordered, and removed again if the order fails. The church's `settings.sender_number` mirrors it.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson

from ..config import Settings
from ..errors import AppError, Conflict, NotFound
from ..sqlq import registry as rq
from ..sqlq import tenant as tq
from .carrier import Carrier, CarrierError

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
MAX_NUMBERS_PER_CHURCH = 1
REGISTRY_TIMEOUT = 5.0


class NumberTaken(Conflict):
    code, title = "number_taken", "Another church already has this number"


class NumberLimit(Conflict):
    code, title = "number_limit", "This church already has its phone number"


class NumberUnavailable(Conflict):
    code, title = "number_unavailable", "The carrier cannot sell this number"


class NumberNotFound(NotFound):
    code, title = "number_not_found", "This church has no such number"


class CarrierUnavailable(AppError):
    status, code, title = 502, "carrier_unavailable", "The carrier did not answer; try again"


def _carrier_failure(exc: CarrierError) -> AppError:
    if exc.retryable or exc.http_status is None or exc.http_status >= 500:
        return CarrierUnavailable(headers={"Retry-After": f"{exc.retry_after or 5:g}"})
    return NumberUnavailable(detail=f"carrier error {exc.code}")


def number_json(row: Any) -> dict[str, Any]:
    """A number as the API shows it (its id is the E.164 number)."""
    return {"id": row["e164"], "phone_number": row["e164"], "status": row["status"],
            "assigned_at": row["assigned_at"]}


async def search(carrier: Carrier, *, area_code: str | None, limit: int) -> list[str]:
    """Numbers the church could buy."""
    try:
        return await carrier.search_numbers(area_code=area_code, limit=limit)
    except CarrierError as exc:
        raise _carrier_failure(exc) from exc


async def list_numbers(registry_pool: Any, settings: Settings,
                       tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    """The church's numbers."""
    rows = await rq(settings.sql_dir).numbers_of_tenant(registry_pool, tenant_id,
                                                        timeout=REGISTRY_TIMEOUT)
    return [number_json(r) for r in rows]


async def _reserve(registry_pool: Any, settings: Settings, tenant_id: uuid.UUID,
                   e164: str) -> None:
    q = rq(settings.sql_dir)
    async with registry_pool.acquire(timeout=REGISTRY_TIMEOUT) as conn, conn.transaction():
        await q.lock_tenant_numbers(conn, tenant_id, timeout=REGISTRY_TIMEOUT)
        if await q.count_tenant_numbers(conn, tenant_id) >= MAX_NUMBERS_PER_CHURCH:
            raise NumberLimit()
        if await q.reserve_number(conn, e164, tenant_id) is None:
            raise NumberTaken()


async def buy(conn: Any, registry_pool: Any, carrier: Carrier, settings: Settings, *,
              tenant_id: uuid.UUID, admin_id: uuid.UUID, e164: str) -> dict[str, Any]:
    """Reserve, order at the carrier, record its id, make it the sender number; 409s/502."""
    q = rq(settings.sql_dir)
    await _reserve(registry_pool, settings, tenant_id, e164)
    try:
        carrier_id = await carrier.order_number(e164)
    except CarrierError as exc:
        await q.delete_tenant_number(registry_pool, e164, tenant_id, timeout=REGISTRY_TIMEOUT)
        raise _carrier_failure(exc) from exc
    await q.set_number_carrier_id(registry_pool, e164, tenant_id, carrier_id,
                                  timeout=REGISTRY_TIMEOUT)
    t = tq(settings.sql_dir)
    async with conn.transaction():
        await t.numbers_set_sender(conn, e164)
        await t.numbers_audit(conn, admin_id, "number.buy", e164,
                              orjson.dumps({"carrier_number_id": carrier_id}).decode())
    row = await q.set_number_status(registry_pool, e164, tenant_id, "active",
                                    timeout=REGISTRY_TIMEOUT)
    return number_json(row)


async def release(conn: Any, registry_pool: Any, carrier: Carrier, settings: Settings, *,
                  tenant_id: uuid.UUID, admin_id: uuid.UUID, e164: str) -> None:
    """Release at the carrier, unassign, clear the sender number; 404 if not this church's."""
    q = rq(settings.sql_dir)
    row = await q.set_number_status(registry_pool, e164, tenant_id, "releasing",
                                    timeout=REGISTRY_TIMEOUT)
    if row is None:
        raise NumberNotFound()
    if row["carrier_number_id"]:
        try:
            await carrier.release_number(row["carrier_number_id"])
        except CarrierError as exc:
            await q.set_number_status(registry_pool, e164, tenant_id, "active",
                                      timeout=REGISTRY_TIMEOUT)
            raise _carrier_failure(exc) from exc
    await q.delete_tenant_number(registry_pool, e164, tenant_id, timeout=REGISTRY_TIMEOUT)
    t = tq(settings.sql_dir)
    async with conn.transaction():
        await t.numbers_clear_sender(conn, e164)
        await t.numbers_audit(conn, admin_id, "number.release", e164, "{}")
