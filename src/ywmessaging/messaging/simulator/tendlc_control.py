"""`/sim/10dlc/...`: move a simulated 10DLC brand or campaign to a state, as TCR and the
carriers would, and send its signed event (or not: `"webhook": false` leaves only the
record changed, for the application's polling fallback)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .events import envelope, iso_now
from .replies import SIM_SENDER, SIM_STATE, json_body, ok, telnyx_error
from .tendlc import CAMPAIGN_STATUSES

BRAND_MOVES = {"approved": ("OK", "VERIFIED"), "vetted": ("OK", "VETTED_VERIFIED"),
               "rejected": ("REGISTRATION_FAILED", "UNVERIFIED"),
               "pending": ("REGISTRATION_PENDING", None)}


async def _deliver(request: web.Request, event: dict[str, Any], send: bool) -> int | None:
    if not send:
        return None
    return await request.app[SIM_SENDER].deliver(event)


async def move_brand(request: web.Request) -> web.Response:
    """POST /sim/10dlc/brand/{brandId} {status: approved|vetted|rejected|pending, reasons?,
    webhook?}: the brand's new state, and its `10dlc.brand.update` delivered."""
    brand = request.app[SIM_STATE].brands.get(request.match_info["id"])
    doc = await json_body(request) or {}
    move = BRAND_MOVES.get(str(doc.get("status")))
    if brand is None or move is None:
        return telnyx_error(404 if brand is None else 422, "10005" if brand is None else "10015",
                            detail=f"status must be one of {', '.join(BRAND_MOVES)}")
    reasons = doc.get("reasons") if move[1] == "UNVERIFIED" else None
    if move[1] == "UNVERIFIED" and not reasons:
        reasons = "The EIN and legal name do not match the IRS record."
    brand.update({"status": move[0], "identityStatus": move[1], "failureReasons": reasons,
                  "updatedAt": iso_now()})
    event = envelope("10dlc.brand.update", {
        "brandId": brand["brandId"], "tcrBrandId": brand["tcrBrandId"],
        "brandName": brand["displayName"], "type": "TCR_BRAND_UPDATE",
        "eventType": "BRAND_IDENTITY_STATUS_UPDATE" if move[1] else "BRAND_ADD",
        "status": "failed" if move[1] == "UNVERIFIED" else "success",
        "identityStatus": move[1], "reasons": [reasons] if reasons else [],
        "description": reasons or f"Brand {brand['tcrBrandId']} identity {move[1]}"},
        event_id=doc.get("event_id"), occurred_at=doc.get("occurred_at"))
    status = await _deliver(request, event, doc.get("webhook", True) is not False)
    return ok({"brand": brand, "event_id": event["data"]["id"], "status": status})


async def move_campaign(request: web.Request) -> web.Response:
    """POST /sim/10dlc/campaign/{campaignId} {status: MNO_PROVISIONED|TCR_SUSPENDED|
    MNO_REJECTED|..., reasons?, webhook?}: the campaign's new Telnyx status, and its
    `10dlc.campaign.update` delivered."""
    campaign = request.app[SIM_STATE].campaigns.get(request.match_info["id"])
    doc = await json_body(request) or {}
    status = str(doc.get("status"))
    if campaign is None:
        return telnyx_error(404, "10005")
    if status not in CAMPAIGN_STATUSES:
        return telnyx_error(422, "10015", detail="status must be a Telnyx campaignStatus")
    reasons = doc.get("reasons")
    campaign.update({"campaignStatus": status, "failureReasons": reasons})
    event = envelope("10dlc.campaign.update", {
        "campaignId": campaign["campaignId"], "brandId": campaign["brandId"],
        "tcrCampaignId": campaign["tcrCampaignId"], "type": "TELNYX_EVENT",
        "status": status, "reasons": [reasons] if reasons else [],
        "description": reasons or f"Campaign {campaign['tcrCampaignId']} is {status}"},
        event_id=doc.get("event_id"), occurred_at=doc.get("occurred_at"))
    delivered = await _deliver(request, event, doc.get("webhook", True) is not False)
    return ok({"campaign": campaign, "event_id": event["data"]["id"], "status": delivered})


async def list_tendlc(request: web.Request) -> web.Response:
    """GET /sim/10dlc: every brand, campaign and number assignment."""
    state = request.app[SIM_STATE]
    return ok({"brands": list(state.brands.values()),
               "campaigns": list(state.campaigns.values()),
               "assignments": list(state.assignments.values())})


def add_tendlc_control_routes(app: web.Application) -> None:
    """The `/sim/10dlc` routes."""
    app.router.add_get("/sim/10dlc", list_tendlc)
    app.router.add_post("/sim/10dlc/brand/{id}", move_brand)
    app.router.add_post("/sim/10dlc/campaign/{id}", move_campaign)
