"""10DLC status changes from the carrier: signed `10dlc.*` webhooks (routed to the church by
the brandId / campaignId the registry holds), and the worker's polling fallback, which also
puts the church's number on its campaign once the campaign is approved.

Both write the church's row first, then the registry's mirror, so a repeat finds nothing to
change. A status older than the one shown changes nothing (`status_at`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import structlog

from ..config import Settings
from ..errors import AppError
from ..sqlq import registry as rq
from ..sqlq import tenant as tq
from . import queue
from .carrier import Carrier, CarrierError
from .tendlc import (
    BRAND_EVENT,
    CAMPAIGN_EVENT,
    Observed,
    assignment_from,
    brand_from_event,
    brand_from_record,
    campaign_from_event,
    campaign_from_record,
)

log = structlog.get_logger("ywm.compliance")
Lease = Callable[[uuid.UUID], AbstractAsyncContextManager[Any]]
REGISTRY_TIMEOUT = 5.0
POLL_BATCH = 50


class RegistrationNotYetKnown(Exception):
    """A 10DLC event for an id no church records yet (its submission has not stored it)."""


async def apply_observed(conn: Any, registry_pool: Any, settings: Settings,
                         tenant_id: uuid.UUID, kind: str, seen: Observed,
                         at: datetime) -> str | None:
    """Apply a brand's or campaign's status to the church, then the registry; the status now
    (None: the church shows a newer one, or the id is not its current one)."""
    q = tq(settings.sql_dir)
    if kind == "brand":
        status: str | None = await q.cp_apply_brand(conn, seen.carrier_id, seen.status,
                                                    seen.identity, seen.reasons, seen.tcr_id, at)
    else:
        before = await q.cp_campaign(conn)
        status = await q.cp_apply_campaign(conn, seen.carrier_id, seen.status,
                                           seen.carrier_status, seen.reasons, seen.tcr_id, at)
        if status is not None and before is not None and before["status"] != status:
            _log_campaign(tenant_id, seen, before["status"])
            if before["status"] in ("suspended", "expired"):
                # rows held for the suspension may go now, not at the next recheck
                await queue.enqueue(registry_pool, settings, tenant_id, datetime.now(UTC))
    if status is not None:
        await rq(settings.sql_dir).tendlc_set_status(registry_pool, seen.carrier_id, tenant_id,
                                                     status, timeout=REGISTRY_TIMEOUT)
        log.info("tendlc_status", tenant_id=str(tenant_id), kind=kind,
                 carrier_id=seen.carrier_id, status=status, carrier_status=seen.carrier_status)
    return status


def _log_campaign(tenant_id: uuid.UUID, seen: Observed, before: str) -> None:
    if seen.status in ("suspended", "expired"):
        log.warning("tendlc_campaign_sending_held", tenant_id=str(tenant_id),
                    campaign_id=seen.carrier_id, status=seen.status, reasons=seen.reasons)
    elif before in ("suspended", "expired"):
        log.info("tendlc_campaign_sending_resumed", tenant_id=str(tenant_id),
                 campaign_id=seen.carrier_id, status=seen.status)


async def _route(registry_pool: Any, settings: Settings, carrier_id: str,
                 kind: str) -> uuid.UUID:
    row = await rq(settings.sql_dir).tendlc_route(registry_pool, carrier_id,
                                                  timeout=REGISTRY_TIMEOUT)
    if row is None or row["kind"] != kind:
        raise RegistrationNotYetKnown(carrier_id)
    tenant: uuid.UUID = row["tenant_id"]
    return tenant


async def apply_event(registry_pool: Any, lease: Lease, settings: Settings, event_type: str,
                      payload: Any, occurred_at: datetime) -> tuple[str, uuid.UUID | None]:
    """A `10dlc.*` event: (applied | stale | malformed, the church). Raises
    RegistrationNotYetKnown for an id no church records (yet), AppError when the church's
    database cannot be used now."""
    if event_type in (BRAND_EVENT, CAMPAIGN_EVENT):
        kind = "brand" if event_type == BRAND_EVENT else "campaign"
        seen = brand_from_event(payload) if kind == "brand" else campaign_from_event(payload)
        if seen is None:
            return "malformed", None
        tenant_id = await _route(registry_pool, settings, seen.carrier_id, kind)
        async with lease(tenant_id) as conn:
            if await apply_observed(conn, registry_pool, settings, tenant_id, kind, seen,
                                    occurred_at) is not None:
                return "applied", tenant_id
            row = await (tq(settings.sql_dir).cp_brand(conn) if kind == "brand"
                         else tq(settings.sql_dir).cp_campaign(conn))
        if row is not None and row["status"] == "submitting":
            raise RegistrationNotYetKnown(seen.carrier_id)   # its answer is being stored
        return "stale", tenant_id   # older than what is shown, or a replaced campaign
    found = assignment_from(payload)
    if found is None:
        return "malformed", None
    campaign_id, number, status, reasons = found
    tenant_id = await _route(registry_pool, settings, campaign_id, "campaign")
    async with lease(tenant_id) as conn:
        done = await tq(settings.sql_dir).cp_set_assignment(conn, campaign_id, number, status,
                                                            reasons)
    return ("applied" if done is not None else "stale"), tenant_id


async def _poll_one(registry_pool: Any, lease: Lease, carrier: Carrier, settings: Settings,
                    row: Any) -> str:
    carrier_id, kind, tenant_id = row["carrier_id"], row["kind"], row["tenant_id"]
    status: str = row["status"]
    if status == "pending" or kind == "campaign":
        doc = await (carrier.get_brand(carrier_id) if kind == "brand"
                     else carrier.get_campaign(carrier_id))
        seen = brand_from_record(doc) if kind == "brand" else campaign_from_record(doc)
        if seen is None:
            log.warning("tendlc_unknown_at_carrier", tenant_id=str(tenant_id), kind=kind,
                        carrier_id=carrier_id)
            return "unknown"
        async with lease(tenant_id) as conn:
            status = await apply_observed(conn, registry_pool, settings, tenant_id, kind,
                                          seen, datetime.now(UTC)) or status
    number = row["active_number"]
    if kind == "campaign" and status == "approved" and number and \
            number != row["assigned_number"]:
        await assign(registry_pool, lease, carrier, settings, tenant_id, carrier_id, number)
        return "assigned"
    return status


async def assign(registry_pool: Any, lease: Lease, carrier: Carrier, settings: Settings,
                 tenant_id: uuid.UUID, campaign_id: str, number: str) -> None:
    """Put the church's number on its approved campaign at the carrier, and record it."""
    found = assignment_from(await carrier.assign_number(number, campaign_id))
    status, reasons = ("pending", None) if found is None else (found[2], found[3])
    async with lease(tenant_id) as conn:
        await tq(settings.sql_dir).cp_set_assignment(conn, campaign_id, number, status, reasons)
    await rq(settings.sql_dir).tendlc_set_assigned(registry_pool, campaign_id, number,
                                                   tenant_id, timeout=REGISTRY_TIMEOUT)
    log.info("tendlc_number_assigned", tenant_id=str(tenant_id), campaign_id=campaign_id,
             status=status)


async def poll(registry_pool: Any, lease: Lease, carrier: Carrier, settings: Settings,
               limit: int = POLL_BATCH) -> dict[str, int]:
    """Ask the carrier about brands and campaigns still pending, and live campaigns (a
    suspension whose webhook was lost), each at most every YWM_10DLC_POLL_INTERVAL seconds
    (claimed, so several workers share them), and assign numbers to approved campaigns; how
    many rows ended how."""
    rows = await rq(settings.sql_dir).tendlc_claim_due(
        registry_pool, settings.tendlc_poll_interval, limit, timeout=REGISTRY_TIMEOUT)
    outcomes: dict[str, int] = {}
    for row in rows:
        try:
            outcome = await _poll_one(registry_pool, lease, carrier, settings, row)
        except (CarrierError, AppError) as exc:
            log.warning("tendlc_poll_failed", tenant_id=str(row["tenant_id"]),
                        carrier_id=row["carrier_id"], error=repr(exc))
            outcome = "failed"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes
