"""Telnyx's 10DLC API (brands, campaigns, number assignment) as TelnyxCarrier calls it, and
how the carrier's statuses map to the church's.

The church's brand is `pending`, `approved` or `rejected`; its campaign is `pending`,
`approved`, `rejected`, `suspended` or `expired` (the last two hold its sending). Telnyx's
10DLC answers are bare objects (no `data` envelope); its events are `10dlc.brand.update`,
`10dlc.campaign.update` and `10dlc.phone_number.update`, naming a `brandId` / `campaignId`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .carrier import CarrierError

BRAND_EVENT = "10dlc.brand.update"
CAMPAIGN_EVENT = "10dlc.campaign.update"
NUMBER_EVENT = "10dlc.phone_number.update"
EVENTS = (BRAND_EVENT, CAMPAIGN_EVENT, NUMBER_EVENT)
REASONS_MAX = 2000
APPROVED_IDENTITY = frozenset({"VERIFIED", "VETTED_VERIFIED"})
# Telnyx campaignStatus (and the event `status` values) → the church's campaign status
CAMPAIGN_STATUS = {
    "MNO_PROVISIONED": "approved",
    "TCR_FAILED": "rejected", "TELNYX_FAILED": "rejected", "MNO_REJECTED": "rejected",
    "MNO_PROVISIONING_FAILED": "rejected",
    "TCR_SUSPENDED": "suspended", "SUSPENDED": "suspended", "DORMANT": "suspended",
    "TCR_EXPIRED": "expired", "EXPIRED": "expired",
}
HOLDING = frozenset({"suspended", "expired"})
ASSIGNMENT_STATUS = {"ASSIGNED": "assigned", "PENDING_ASSIGNMENT": "pending",
                     "FAILED_ASSIGNMENT": "failed"}


@dataclass(frozen=True)
class Observed:
    """A brand's or campaign's state as the carrier reports it, mapped to ours."""

    carrier_id: str
    status: str
    carrier_status: str | None = None
    reasons: str | None = None
    tcr_id: str | None = None
    identity: str | None = None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def reasons_text(value: Any) -> str | None:
    """Telnyx's failure reasons (a string, a list of strings or of {description}) as text."""
    if isinstance(value, list):
        parts = [str(v.get("description") or v.get("reason") or v) if isinstance(v, dict)
                 else str(v) for v in value]
        value = "; ".join(p for p in parts if p)
    text = _str(value)
    return None if text is None else text[:REASONS_MAX]


def _brand_status(status: str | None, identity: str | None) -> str:
    if status in ("REGISTRATION_FAILED", "failed") or identity == "UNVERIFIED":
        return "rejected"
    if identity in APPROVED_IDENTITY:
        return "approved"
    return "pending"


def brand_from_record(doc: Any) -> Observed | None:
    """A brand as `GET /v2/10dlc/brand/{brandId}` (or its creation) answers it."""
    if not isinstance(doc, dict) or _str(doc.get("brandId")) is None:
        return None
    status, identity = _str(doc.get("status")), _str(doc.get("identityStatus"))
    return Observed(str(doc["brandId"]), _brand_status(status, identity), status,
                    reasons_text(doc.get("failureReasons")), _str(doc.get("tcrBrandId")),
                    identity)


def brand_from_event(payload: Any) -> Observed | None:
    """A `10dlc.brand.update` payload (`status` success/failed, an identity status when TCR
    verified the brand, `reasons` or a `description` when it failed)."""
    if not isinstance(payload, dict) or _str(payload.get("brandId")) is None:
        return None
    identity = _str(payload.get("identityStatus") or payload.get("brandIdentityStatus"))
    status = _str(payload.get("status"))
    reasons = reasons_text(payload.get("reasons") or payload.get("failureReasons"))
    mapped = _brand_status(status, identity)
    if mapped == "rejected" and reasons is None:
        reasons = reasons_text(payload.get("description"))
    return Observed(str(payload["brandId"]), mapped, _str(payload.get("eventType")) or status,
                    reasons, _str(payload.get("tcrBrandId")), identity)


def campaign_status(carrier_status: str | None) -> str:
    """The church's campaign status for a Telnyx campaign status (unknown ones: pending)."""
    return CAMPAIGN_STATUS.get(carrier_status or "", "pending")


def campaign_from_record(doc: Any) -> Observed | None:
    """A campaign as `GET /v2/10dlc/campaign/{campaignId}` (or campaignBuilder) answers it."""
    if not isinstance(doc, dict) or _str(doc.get("campaignId")) is None:
        return None
    carrier_status = _str(doc.get("campaignStatus"))
    if doc.get("status") == "EXPIRED":
        carrier_status = "EXPIRED"
    return Observed(str(doc["campaignId"]), campaign_status(carrier_status), carrier_status,
                    reasons_text(doc.get("failureReasons")), _str(doc.get("tcrCampaignId")))


def campaign_from_event(payload: Any) -> Observed | None:
    """A `10dlc.campaign.update` payload (`status` or `campaignStatus`, reasons)."""
    if not isinstance(payload, dict) or _str(payload.get("campaignId")) is None:
        return None
    carrier_status = _str(payload.get("campaignStatus") or payload.get("status"))
    mapped = campaign_status(carrier_status)
    reasons = reasons_text(payload.get("reasons") or payload.get("failureReasons"))
    if mapped in ("rejected", *HOLDING) and reasons is None:
        reasons = reasons_text(payload.get("description"))
    return Observed(str(payload["campaignId"]), mapped, carrier_status, reasons,
                    _str(payload.get("tcrCampaignId")))


def assignment_from(doc: Any) -> tuple[str, str, str, str | None] | None:
    """(campaign id, number, pending|assigned|failed, reasons) of a phoneNumberCampaign
    record or a `10dlc.phone_number.update` payload (`status` success/failed)."""
    if not isinstance(doc, dict):
        return None
    campaign, number = _str(doc.get("campaignId")), _str(doc.get("phoneNumber"))
    if campaign is None or number is None:
        return None
    raw = _str(doc.get("assignmentStatus")) or _str(doc.get("status"))
    status = {"success": "assigned", "failed": "failed"}.get(raw or "") or \
        ASSIGNMENT_STATUS.get(raw or "", "pending")
    return campaign, number, status, reasons_text(doc.get("failureReasons")
                                                  or doc.get("reasons"))


class TenDlcApi:
    """The 10DLC calls; mixed into TelnyxCarrier, whose `_call` maps failures to
    CarrierError."""

    _call: Callable[..., Awaitable[dict[str, Any]]]

    async def _get_or_none(self, path: str, operation: str) -> dict[str, Any] | None:
        try:
            return await self._call("GET", path, operation=operation)
        except CarrierError as err:
            if err.http_status == 404:
                return None
            raise

    async def create_brand(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /v2/10dlc/brand: the new brand (its `brandId`)."""
        return await self._call("POST", "/v2/10dlc/brand", body=body, operation="10dlc_brand")

    async def update_brand(self, brand_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT /v2/10dlc/brand/{brandId}: corrected details (a rejected brand is vetted
        again)."""
        return await self._call("PUT", f"/v2/10dlc/brand/{quote(brand_id, safe='')}",
                                body=body, operation="10dlc_brand")

    async def get_brand(self, brand_id: str) -> dict[str, Any] | None:
        """GET /v2/10dlc/brand/{brandId} (None when the carrier does not know it)."""
        return await self._get_or_none(f"/v2/10dlc/brand/{quote(brand_id, safe='')}",
                                       "10dlc_get")

    async def create_campaign(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /v2/10dlc/campaignBuilder: the new campaign (its `campaignId`)."""
        return await self._call("POST", "/v2/10dlc/campaignBuilder", body=body,
                                operation="10dlc_campaign")

    async def get_campaign(self, campaign_id: str) -> dict[str, Any] | None:
        """GET /v2/10dlc/campaign/{campaignId} (None when the carrier does not know it)."""
        return await self._get_or_none(f"/v2/10dlc/campaign/{quote(campaign_id, safe='')}",
                                       "10dlc_get")

    async def assign_number(self, e164: str, campaign_id: str) -> dict[str, Any]:
        """POST /v2/10dlc/phone_number_campaigns: put `e164` on the campaign (the path of
        Telnyx's current spec and SDK; older guides spell it `phoneNumberCampaign`)."""
        return await self._call("POST", "/v2/10dlc/phone_number_campaigns",
                                body={"phoneNumber": e164, "campaignId": campaign_id},
                                operation="10dlc_assign")
