"""How Telnyx's 10DLC records and events map to the church's brand and campaign states."""

from __future__ import annotations

import pytest

from ywmessaging.messaging.compliance_view import compliance_json
from ywmessaging.messaging.tendlc import (
    assignment_from,
    brand_from_event,
    brand_from_record,
    campaign_from_event,
    campaign_from_record,
    reasons_text,
)


@pytest.mark.parametrize(("status", "identity", "expected"), [
    ("REGISTRATION_PENDING", None, "pending"),
    ("OK", "VERIFIED", "approved"),
    ("OK", "VETTED_VERIFIED", "approved"),
    ("OK", "SELF_DECLARED", "pending"),
    ("REGISTRATION_FAILED", None, "rejected"),
    ("OK", "UNVERIFIED", "rejected"),
])
def test_brand_records(status: str, identity: str | None, expected: str) -> None:
    seen = brand_from_record({"brandId": "b1", "status": status, "identityStatus": identity,
                              "failureReasons": "EIN mismatch"})
    assert seen is not None and (seen.carrier_id, seen.status) == ("b1", expected)


def test_brand_events_and_their_reasons() -> None:
    added = brand_from_event({"brandId": "b1", "eventType": "BRAND_ADD", "status": "success"})
    assert added is not None and added.status == "pending"
    failed = brand_from_event({"brandId": "b1", "status": "failed",
                               "description": "Brand could not be verified"})
    assert failed is not None and (failed.status, failed.reasons) == (
        "rejected", "Brand could not be verified")
    listed = brand_from_event({"brandId": "b1", "status": "failed",
                               "reasons": [{"description": "EIN"}, "Website offline"]})
    assert listed is not None and listed.reasons == "EIN; Website offline"
    assert brand_from_event({"status": "success"}) is None
    assert brand_from_record("nonsense") is None


@pytest.mark.parametrize(("carrier", "expected"), [
    ("TCR_ACCEPTED", "pending"), ("MNO_PENDING", "pending"), ("MNO_PROVISIONED", "approved"),
    ("MNO_REJECTED", "rejected"), ("TELNYX_FAILED", "rejected"),
    ("TCR_SUSPENDED", "suspended"), ("DORMANT", "suspended"), ("TCR_EXPIRED", "expired"),
    ("SOMETHING_NEW", "pending"),
])
def test_campaign_statuses(carrier: str, expected: str) -> None:
    event = campaign_from_event({"campaignId": "c1", "status": carrier})
    record = campaign_from_record({"campaignId": "c1", "campaignStatus": carrier})
    assert event is not None and record is not None
    assert event.status == record.status == expected


def test_an_expired_campaign_record_and_assignments() -> None:
    seen = campaign_from_record({"campaignId": "c1", "campaignStatus": "MNO_PROVISIONED",
                                 "status": "EXPIRED"})
    assert seen is not None and seen.status == "expired"
    assert assignment_from({"campaignId": "c1", "phoneNumber": "+12065550100",
                            "assignmentStatus": "ASSIGNED"})[2:] == ("assigned", None)
    assert assignment_from({"campaignId": "c1", "phoneNumber": "+12065550100",
                            "status": "failed", "reasons": ["Not a 10DLC number"]})[2:] == (
        "failed", "Not a 10DLC number")
    assert assignment_from({"campaignId": "c1"}) is None
    assert reasons_text("x" * 3000) == "x" * 2000


def test_the_view_says_what_to_do_next() -> None:
    assert compliance_json(None, None)["next_steps"][0]["code"] == "register_brand"
    brand = {"status": "rejected", "carrier_brand_id": "b1", "tcr_brand_id": None,
             "entity_type": "NON_PROFIT", "vertical": "NGO", "display_name": "Grace",
             "identity_status": "UNVERIFIED", "failure_reasons": "EIN mismatch",
             "submitted_at": None, "updated_at": None}
    view = compliance_json(brand, None)
    assert view["brand"]["rejection_reasons"] == "EIN mismatch"
    assert view["next_steps"][0]["code"] == "fix_brand"
    assert view["sending"] == {"allowed": True, "reason": None}
    campaign = {"status": "suspended", "carrier_campaign_id": "c1", "tcr_campaign_id": None,
                "usecase": "MIXED", "carrier_status": "TCR_SUSPENDED",
                "failure_reasons": "Complaints", "assigned_number": None,
                "assignment_status": None, "submitted_at": None, "updated_at": None}
    view = compliance_json({**brand, "status": "approved"}, campaign)
    assert view["sending"] == {"allowed": False, "reason": "campaign_suspended"}
    assert view["next_steps"][0]["code"] == "appeal_campaign"
