"""`GET /api/v1/church/compliance`: the brand and campaign as the church sees them, whether it
may send, and what to do next (each step a stable `code` and a sentence)."""

from __future__ import annotations

from typing import Any

from .tendlc import HOLDING

BRAND_FIX = ("Correct the brand details the carrier named and submit the brand again "
             "(POST /api/v1/church/compliance/brand): the legal name and EIN must match the "
             "IRS record exactly, the address must be the one on file, and the website must be "
             "live and name the church.")
CAMPAIGN_FIX = ("Correct the campaign and submit it again (POST "
                "/api/v1/church/compliance/campaign): describe who receives messages and how "
                "they opted in, give real sample messages that name the church, and keep the "
                "HELP and STOP texts.")


def _brand(row: Any) -> dict[str, Any]:
    if row is None:
        return {"status": "not_registered"}
    return {"status": "pending" if row["status"] == "submitting" else row["status"],
            "brand_id": row["carrier_brand_id"], "tcr_brand_id": row["tcr_brand_id"],
            "entity_type": row["entity_type"], "vertical": row["vertical"],
            "display_name": row["display_name"], "identity_status": row["identity_status"],
            "rejection_reasons": row["failure_reasons"] if row["status"] == "rejected"
            else None,
            "submitted_at": row["submitted_at"], "updated_at": row["updated_at"]}


def _campaign(row: Any) -> dict[str, Any]:
    if row is None:
        return {"status": "not_submitted"}
    shown = row["status"] in ("rejected", *HOLDING) or row["assignment_status"] == "failed"
    return {"status": "pending" if row["status"] == "submitting" else row["status"],
            "campaign_id": row["carrier_campaign_id"],
            "tcr_campaign_id": row["tcr_campaign_id"], "usecase": row["usecase"],
            "carrier_status": row["carrier_status"],
            "rejection_reasons": row["failure_reasons"] if shown else None,
            "number": None if row["assigned_number"] is None else {
                "phone_number": row["assigned_number"], "status": row["assignment_status"]},
            "submitted_at": row["submitted_at"], "updated_at": row["updated_at"]}


def next_steps(brand: Any, campaign: Any) -> list[dict[str, str]]:
    """What the church should do now, most urgent first."""
    step = _step(brand, campaign)
    return [] if step is None else [{"code": step[0], "detail": step[1]}]


def _step(brand: Any, campaign: Any) -> tuple[str, str] | None:
    if campaign is not None and campaign["status"] in HOLDING:
        return ("appeal_campaign", "The carrier stopped the campaign; sending is held. Read "
                "the reasons, correct what they name, and contact support to appeal or submit "
                "a new campaign once the brand is in good standing.")
    if brand is None:
        return ("register_brand", "Register the church's brand: POST "
                "/api/v1/church/compliance/brand with the legal name, EIN, address, website, "
                "entity type and vertical.")
    if brand["status"] == "rejected":
        return ("fix_brand", BRAND_FIX)
    if brand["status"] != "approved":
        return ("wait_for_brand", "The carrier is reviewing the brand (usually minutes to "
                "a few days); nothing to do.")
    if campaign is None:
        return ("submit_campaign", "Submit the campaign: POST "
                "/api/v1/church/compliance/campaign with its use case, description, message "
                "flow and sample messages.")
    if campaign["status"] == "rejected":
        return ("fix_campaign", CAMPAIGN_FIX)
    if campaign["status"] != "approved":
        return ("wait_for_campaign", "The carriers are reviewing the campaign; nothing to do.")
    if campaign["assignment_status"] == "failed":
        return ("number_assignment_failed", "The carrier could not put the number on the "
                "campaign; it is tried again automatically, contact support if it persists.")
    return None


def compliance_json(brand: Any, campaign: Any) -> dict[str, Any]:
    """The whole view from the two rows (either may be None)."""
    hold = campaign["status"] if campaign is not None and campaign["status"] in HOLDING \
        else None
    return {"brand": _brand(brand), "campaign": _campaign(campaign),
            "sending": {"allowed": hold is None,
                        "reason": None if hold is None else f"campaign_{hold}"},
            "next_steps": next_steps(brand, campaign)}
