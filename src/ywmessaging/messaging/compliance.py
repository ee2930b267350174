"""10DLC registration: the church registers its brand, then its campaign, at the carrier;
what the carrier decides comes back by signed webhooks (or the worker's poll,
compliance_sync.py); `GET /api/v1/church/compliance` shows where it stands and what to fix.

The sending rule (kept simple): a church that never registered sends as before. Once its
campaign is `suspended` or `expired` at the carrier, sends are refused with 423
`campaign_suspended` and the worker holds its queued rows (the billing hold, same mechanism);
STOP/START/HELP replies still go. Approval puts the church's number on the campaign.

Registration is idempotent per church: one brand row and one campaign row. A rejected brand
submitted again is corrected at the carrier (PUT, the same brandId), never duplicated; a
rejected campaign submitted again is a new campaign (Telnyx does not re-vet a failed one),
the old one marked `replaced` in the registry. While the carrier is being asked, the row is
`submitting` under the row lock's protection, so a second request gets 409.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from ..church import Actor, audit
from ..church.settings import EIN_PURPOSE
from ..config import Settings
from ..crypto import SecretBox
from ..errors import AppError, Conflict
from ..sqlq import registry as rq
from ..sqlq import tenant as tq
from .carrier import Carrier, CarrierError
from .compliance_forms import brand_form, campaign_form, telnyx_brand, telnyx_campaign
from .compliance_view import compliance_json
from .numbers_service import CarrierUnavailable
from .tendlc import Observed, brand_from_record, campaign_from_record

log = structlog.get_logger("ywm.compliance")
# a row `submitting` this long lost its request (the process died while asking the carrier):
# it no longer blocks a new submission
SUBMITTING_STALE = timedelta(minutes=5)


class CampaignSuspended(AppError):
    status, code, title = (423, "campaign_suspended",
                           "The carrier suspended this church's 10DLC campaign")


class BrandInReview(Conflict):
    code, title = "brand_pending", "The brand is being reviewed by the carrier"


class BrandApproved(Conflict):
    code, title = "brand_approved", "The brand is already approved"


class BrandNotApproved(Conflict):
    code, title = "brand_not_approved", "Register the brand and wait for its approval first"


class CampaignExists(Conflict):
    code, title = "campaign_exists", "The church already has a campaign"


class CarrierRefused(AppError):
    status, code, title = 422, "carrier_refused", "The carrier refused the registration"


def _failure(exc: CarrierError) -> AppError:
    if exc.retryable or exc.http_status is None or exc.http_status >= 500:
        return CarrierUnavailable(headers={"Retry-After": f"{exc.retry_after or 5:g}"})
    return CarrierRefused(f"carrier error {exc.code}: {exc}")


def _prior(before: Any) -> str | None:
    """The brand's status to go back to when the carrier refused (None: no brand)."""
    if before is None:
        return None
    if before["status"] == "submitting":   # a stale submission
        return "pending" if before["carrier_brand_id"] else None
    return str(before["status"])


def _busy(row: Any, statuses: tuple[str, ...]) -> bool:
    """Whether `row` blocks a new submission: in one of `statuses`, or being submitted (and
    not for so long that its request must have died)."""
    if row["status"] == "submitting":
        return bool(datetime.now(UTC) - row["updated_at"] < SUBMITTING_STALE)
    return row["status"] in statuses


async def require_sending(conn: Any, settings: Settings) -> None:
    """423 `campaign_suspended` while the church's campaign is suspended or expired."""
    hold = await tq(settings.sql_dir).cp_sending_hold(conn)
    if hold is not None:
        raise CampaignSuspended(
            f"the carrier {'expired' if hold == 'expired' else 'suspended'} the 10DLC "
            "campaign: sending is stopped until it is approved again; STOP/HELP replies "
            "still work (GET /api/v1/church/compliance)", reason=hold)


async def sending_hold(conn: Any, settings: Settings) -> str | None:
    """Why the worker holds the church's rows because of 10DLC (None: it does not)."""
    hold: str | None = await tq(settings.sql_dir).cp_sending_hold(conn)
    return hold


async def get(conn: Any, settings: Settings) -> dict[str, Any]:
    """The church's brand, campaign, sending state and next steps."""
    q = tq(settings.sql_dir)
    return compliance_json(await q.cp_brand(conn), await q.cp_campaign(conn))


async def _save_brand(conn: Any, settings: Settings, box: SecretBox, actor: Actor,
                      tenant_id: uuid.UUID, form: dict[str, Any]) -> Any:
    """Lock, check and save the brand's details (the legal ones in `settings`); the brand
    row as it was before (None: first registration)."""
    q = tq(settings.sql_dir)
    async with conn.transaction():
        before = await q.cp_lock_brand(conn)
        if before is not None and _busy(before, ("pending",)):
            raise BrandInReview("wait for the carrier's decision (GET /api/v1/church/compliance)")
        if before is not None and before["status"] == "approved":
            raise BrandApproved()
        c = dict(await q.lock_settings(conn))
        await q.update_settings(
            conn, c["church_name"], c["time_zone"], c["default_region"],
            c["quiet_hours_start"], c["quiet_hours_end"], c["help_reply"], c["stop_reply"],
            c["start_reply"], form["legal_name"], box.seal(form["ein"], EIN_PURPOSE),
            form["ein"][-4:], form["website"], form["address_line1"], form["address_line2"],
            form["city"], form["state"], form["postal_code"], c["welcome_enabled"],
            c["welcome_message"])
        await q.cp_begin_brand(conn, form["entity_type"], form["vertical"],
                               form["display_name"], form["email"], form["phone"])
        await audit(conn, settings, actor, "compliance.brand_submit", "church", tenant_id,
                    {"resubmission": before is not None})
    return before


async def register_brand(conn: Any, registry_pool: Any, carrier: Carrier, settings: Settings,
                         box: SecretBox, actor: Actor, tenant_id: uuid.UUID,
                         body: Any) -> dict[str, Any]:
    """Register the brand (or correct a rejected one) at the carrier; the compliance view."""
    form = brand_form(body)
    q = tq(settings.sql_dir)
    before = await _save_brand(conn, settings, box, actor, tenant_id, form)
    brand_id = None if before is None else before["carrier_brand_id"]
    try:
        doc = await (carrier.update_brand(brand_id, telnyx_brand(form, settings)) if brand_id
                     else carrier.create_brand(telnyx_brand(form, settings)))
        seen = brand_from_record(doc)
        if seen is None:
            raise CarrierError("the carrier answered a brand without brandId", retryable=True,
                               code="bad_response")
    except CarrierError as exc:
        await q.cp_brand_restore(conn, _prior(before))
        raise _failure(exc) from exc
    # a corrected brand is vetted again: pending until the carrier says otherwise
    status = "approved" if seen.status == "approved" else "pending"
    await rq(settings.sql_dir).tendlc_register(registry_pool, seen.carrier_id, "brand",
                                               tenant_id, timeout=5.0)
    await q.cp_brand_submitted(conn, seen.carrier_id, seen.tcr_id, status, seen.identity,
                               None, datetime.now(UTC))
    log.info("tendlc_brand_submitted", tenant_id=str(tenant_id), brand_id=seen.carrier_id,
             resubmission=brand_id is not None)
    return await get(conn, settings)


async def submit_campaign(conn: Any, registry_pool: Any, carrier: Carrier, settings: Settings,
                          actor: Actor, tenant_id: uuid.UUID, body: Any) -> dict[str, Any]:
    """Submit the campaign for the approved brand; the compliance view."""
    q = tq(settings.sql_dir)
    brand = await q.cp_brand(conn)
    if brand is None or brand["status"] != "approved":
        raise BrandNotApproved()
    form = campaign_form(body, await q.get_settings(conn))
    async with conn.transaction():
        before = await q.cp_lock_campaign(conn)
        if before is not None and _busy(before, ("pending", "approved", "suspended",
                                                 "expired")):
            raise CampaignExists(f"the campaign is {before['status']}")
        await q.cp_begin_campaign(conn, form["usecase"], form["description"],
                                  form["message_flow"], form["sample_messages"],
                                  form["help_message"], form["optin_message"],
                                  form["optout_message"])
        await audit(conn, settings, actor, "compliance.campaign_submit", "church", tenant_id,
                    {"usecase": form["usecase"], "resubmission": before is not None})
    try:
        seen = campaign_from_record(await carrier.create_campaign(
            telnyx_campaign(form, brand["carrier_brand_id"], settings)))
        if seen is None:
            raise CarrierError("the carrier answered a campaign without campaignId",
                               retryable=True, code="bad_response")
    except CarrierError as exc:
        await q.cp_campaign_restore(conn)
        raise _failure(exc) from exc
    await _record_campaign(conn, registry_pool, settings, tenant_id, seen)
    return await get(conn, settings)


async def _record_campaign(conn: Any, registry_pool: Any, settings: Settings,
                           tenant_id: uuid.UUID, seen: Observed) -> None:
    r = rq(settings.sql_dir)
    await r.tendlc_register(registry_pool, seen.carrier_id, "campaign", tenant_id, timeout=5.0)
    await r.tendlc_replace_campaigns(registry_pool, tenant_id, seen.carrier_id, timeout=5.0)
    await r.tendlc_set_status(registry_pool, seen.carrier_id, tenant_id, seen.status,
                              timeout=5.0)
    await tq(settings.sql_dir).cp_campaign_submitted(
        conn, seen.carrier_id, seen.tcr_id, seen.status, seen.carrier_status, seen.reasons,
        datetime.now(UTC))
    log.info("tendlc_campaign_submitted", tenant_id=str(tenant_id),
             campaign_id=seen.carrier_id, status=seen.status)
