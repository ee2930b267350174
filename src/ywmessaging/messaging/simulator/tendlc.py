"""The simulator's 10DLC API: brands (`POST /v2/10dlc/brand`, `GET`/`PUT
/v2/10dlc/brand/{brandId}`), campaigns (`POST /v2/10dlc/campaignBuilder`,
`GET /v2/10dlc/campaign/{campaignId}`) and number assignment (`POST
/v2/10dlc/phone_number_campaigns`, also under the older `phoneNumberCampaign`), with bare
records as Telnyx answers them. The control routes (tendlc_control.py) move a brand or
campaign through its states on request and send the signed `10dlc.*` events: nothing moves by
itself, a test (or a person) decides."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import orjson
from aiohttp import web

from .events import envelope, iso_now
from .replies import SIM_SENDER, SIM_STATE, authorized, json_body, telnyx_error, unauthorized

BRAND_REQUIRED = ("entityType", "displayName", "country", "email", "vertical")
CAMPAIGN_REQUIRED = ("brandId", "description", "usecase")
APPROVED = frozenset({"VERIFIED", "VETTED_VERIFIED"})
CAMPAIGN_STATUSES = frozenset({
    "TCR_PENDING", "TCR_SUSPENDED", "TCR_EXPIRED", "TCR_ACCEPTED", "TCR_FAILED",
    "TELNYX_ACCEPTED", "TELNYX_FAILED", "MNO_PENDING", "MNO_ACCEPTED", "MNO_REJECTED",
    "MNO_PROVISIONED", "MNO_PROVISIONING_FAILED"})
# what a campaign record repeats of its campaignBuilder request (Telnyx's TelnyxCampaignCSP)
CAMPAIGN_FIELDS = ("brandId", "description", "usecase", "ageGated", "autoRenewal",
                   "directLending", "embeddedLink", "embeddedLinkSample", "embeddedPhone",
                   "helpKeywords", "helpMessage", "messageFlow", "numberPool", "optinKeywords",
                   "optinMessage", "optoutKeywords", "optoutMessage", "privacyPolicyLink",
                   "referenceId", "resellerId", "sample1", "sample2", "sample3", "sample4",
                   "sample5", "subscriberHelp", "subscriberOptin", "subscriberOptout",
                   "termsAndConditions", "termsAndConditionsLink", "webhookURL",
                   "webhookFailoverURL")
BRAND_FIELDS = ("entityType", "displayName", "companyName", "ein", "phone", "street", "city",
                "state", "postalCode", "country", "email", "website", "vertical", "webhookURL",
                "webhookFailoverURL", "firstName", "lastName", "referenceId")


def bare(doc: Any, status: int = 200) -> web.Response:
    """A 10DLC answer: the record itself, no `data` envelope."""
    return web.Response(body=orjson.dumps(doc), status=status, content_type="application/json")


def _missing(body: dict[str, Any] | None, names: tuple[str, ...]) -> web.Response | None:
    if body is None:
        return telnyx_error(400, "10015", detail="The request body must be a JSON object.")
    for name in names:
        if body.get(name) in (None, ""):
            return telnyx_error(422, "10004", pointer=f"/{name}")
    return None


def _tcr_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(6))


async def create_brand(request: web.Request) -> web.Response:
    """POST /v2/10dlc/brand: a brand `REGISTRATION_PENDING` (and a BRAND_ADD event)."""
    if not authorized(request):
        return unauthorized()
    body = await json_body(request)
    invalid = _missing(body, BRAND_REQUIRED)
    if invalid is not None or body is None:
        return invalid or telnyx_error(400, "10015")
    now = iso_now()
    brand: dict[str, Any] = {k: body.get(k) for k in BRAND_FIELDS}
    brand.update({"brandId": str(uuid.uuid4()), "tcrBrandId": _tcr_id("B"),
                  "brandRelationship": "BASIC_ACCOUNT", "status": "REGISTRATION_PENDING",
                  "identityStatus": None, "failureReasons": None, "cspId": "SIMCSP",
                  "mock": False, "isReseller": False, "createdAt": now, "updatedAt": now})
    state = request.app[SIM_STATE]
    state.brands[str(brand["brandId"])] = brand
    request.app[SIM_SENDER].deliver_later(envelope("10dlc.brand.update", {
        "brandId": brand["brandId"], "tcrBrandId": brand["tcrBrandId"],
        "brandName": brand["displayName"], "eventType": "BRAND_ADD", "status": "success",
        "type": "TCR_BRAND_UPDATE",
        "description": f"Brand {brand['tcrBrandId']} is added"}))
    return bare(brand)


async def update_brand(request: web.Request) -> web.Response:
    """PUT /v2/10dlc/brand/{brandId}: corrected details; the brand is vetted again."""
    if not authorized(request):
        return unauthorized()
    brand = request.app[SIM_STATE].brands.get(request.match_info["id"])
    if brand is None:
        return telnyx_error(404, "10005")
    body = await json_body(request)
    invalid = _missing(body, BRAND_REQUIRED)
    if invalid is not None or body is None:
        return invalid or telnyx_error(400, "10015")
    brand.update({k: body.get(k) for k in BRAND_FIELDS})
    brand.update({"status": "REGISTRATION_PENDING", "identityStatus": None,
                  "failureReasons": None, "updatedAt": iso_now()})
    return bare(brand)


async def get_brand(request: web.Request) -> web.Response:
    """GET /v2/10dlc/brand/{brandId}."""
    if not authorized(request):
        return unauthorized()
    state = request.app[SIM_STATE]
    brand = state.brands.get(request.match_info["id"])
    if brand is None:
        return telnyx_error(404, "10005")
    count = sum(1 for c in state.campaigns.values() if c["brandId"] == brand["brandId"])
    return bare({**brand, "assignedCampaignsCount": count})


async def create_campaign(request: web.Request) -> web.Response:
    """POST /v2/10dlc/campaignBuilder: a campaign `TCR_ACCEPTED` for a verified brand."""
    if not authorized(request):
        return unauthorized()
    body = await json_body(request)
    invalid = _missing(body, CAMPAIGN_REQUIRED)
    if invalid is not None or body is None:
        return invalid or telnyx_error(400, "10015")
    state = request.app[SIM_STATE]
    brand = state.brands.get(str(body["brandId"]))
    if brand is None or brand["identityStatus"] not in APPROVED:
        return telnyx_error(422, "10015", pointer="/brandId",
                            detail="The brand must exist and be verified.")
    now = iso_now()
    campaign = {**{k: body[k] for k in CAMPAIGN_FIELDS if k in body},
                "subUsecases": [str(u) for u in body.get("subUsecases") or []],
                "cspId": "SIMCSP", "mock": False, "vertical": brand["vertical"],
                "campaignId": str(uuid.uuid4()), "tcrCampaignId": _tcr_id("C"),
                "tcrBrandId": brand["tcrBrandId"], "brandDisplayName": brand["displayName"],
                "campaignStatus": "TCR_ACCEPTED", "submissionStatus": "CREATED",
                "termsAndConditions": bool(body.get("termsAndConditions", True)),
                "status": "ACTIVE", "failureReasons": None, "isTMobileRegistered": False,
                "createDate": now, "autoRenewal": True, "billedDate": now}
    state.campaigns[campaign["campaignId"]] = campaign
    return bare(campaign)


async def get_campaign(request: web.Request) -> web.Response:
    """GET /v2/10dlc/campaign/{campaignId}."""
    if not authorized(request):
        return unauthorized()
    campaign = request.app[SIM_STATE].campaigns.get(request.match_info["id"])
    if campaign is None:
        return telnyx_error(404, "10005")
    return bare(campaign)


async def assign_number(request: web.Request) -> web.Response:
    """POST /v2/10dlc/phone_number_campaigns: `PENDING_ASSIGNMENT`, then `ASSIGNED` with a
    `10dlc.phone_number.update` event."""
    if not authorized(request):
        return unauthorized()
    body = await json_body(request)
    invalid = _missing(body, ("phoneNumber", "campaignId"))
    if invalid is not None or body is None:
        return invalid or telnyx_error(400, "10015")
    state = request.app[SIM_STATE]
    campaign = state.campaigns.get(str(body["campaignId"]))
    if campaign is None or campaign["campaignStatus"] != "MNO_PROVISIONED":
        return telnyx_error(422, "10015", pointer="/campaignId",
                            detail="The campaign must exist and be provisioned.")
    if not state.owns(str(body["phoneNumber"])):
        return telnyx_error(422, "10015", pointer="/phoneNumber",
                            detail="The number must be an active number of the account.")
    now = iso_now()
    record = {"phoneNumber": body["phoneNumber"], "campaignId": campaign["campaignId"],
              "brandId": campaign["brandId"], "tcrBrandId": campaign["tcrBrandId"],
              "tcrCampaignId": campaign["tcrCampaignId"],
              "telnyxCampaignId": campaign["campaignId"],
              "assignmentStatus": "PENDING_ASSIGNMENT", "failureReasons": None,
              "createdAt": now, "updatedAt": now}
    state.assignments[record["phoneNumber"]] = record
    answer = dict(record)
    record.update({"assignmentStatus": "ASSIGNED", "updatedAt": iso_now()})
    number = state.number(record["phoneNumber"])
    if number is not None:
        number["messaging_campaign_id"] = campaign["campaignId"]
    request.app[SIM_SENDER].deliver_later(envelope("10dlc.phone_number.update", {
        "phoneNumber": record["phoneNumber"], "campaignId": campaign["campaignId"],
        "brandId": campaign["brandId"], "type": "ASSIGNMENT", "status": "success",
        "description": "Number assigned to the campaign"}))
    return bare(answer)


def add_tendlc_routes(app: web.Application) -> None:
    """The Telnyx 10DLC routes and their control routes."""
    app.router.add_post("/v2/10dlc/brand", create_brand)
    app.router.add_get("/v2/10dlc/brand/{id}", get_brand)
    app.router.add_put("/v2/10dlc/brand/{id}", update_brand)
    app.router.add_post("/v2/10dlc/campaignBuilder", create_campaign)
    app.router.add_get("/v2/10dlc/campaign/{id}", get_campaign)
    app.router.add_post("/v2/10dlc/phone_number_campaigns", assign_number)
    app.router.add_post("/v2/10dlc/phoneNumberCampaign", assign_number)   # older guides
