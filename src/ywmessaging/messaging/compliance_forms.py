"""The 10DLC registration forms: the brand's and the campaign's fields, checked all at once
(one 422 listing every bad field), and the Telnyx request bodies made from them."""

from __future__ import annotations

import re
from typing import Any

from ..church.settings import ein_digits
from ..config import Settings
from ..errors import ValidationFailed
from ..values import E164, Check, choice, email, fields, text

ENTITY_TYPES = ("NON_PROFIT", "PRIVATE_PROFIT", "PUBLIC_PROFIT", "GOVERNMENT", "SOLE_PROPRIETOR")
VERTICALS = ("NGO", "EDUCATION", "COMMUNICATION", "ENTERTAINMENT", "GOVERNMENT", "HEALTHCARE",
             "HOSPITALITY", "PROFESSIONAL", "REAL_ESTATE", "RETAIL", "TECHNOLOGY", "POLITICAL",
             "AGRICULTURE", "CONSTRUCTION", "ENERGY", "FINANCIAL", "HUMAN_RESOURCES",
             "INSURANCE", "LEGAL", "MANUFACTURING", "POSTAL", "TRANSPORTATION")
USECASES = ("MIXED", "LOW_VOLUME", "ACCOUNT_NOTIFICATION", "CUSTOMER_CARE", "MARKETING",
            "PUBLIC_SERVICE_ANNOUNCEMENT", "POLLING_VOTING", "CHARITY")
SAMPLES_MIN, SAMPLES_MAX = 2, 5
_STATE = re.compile(r"^[A-Z]{2}$")
_ZIP = re.compile(r"^[0-9]{5}(-[0-9]{4})?$")
_WEBSITE = re.compile(r"^https?://[^\s/$.?#][^\s]*\.[^\s]+$", re.IGNORECASE)
OPTOUT_KEYWORDS = "STOP,STOPALL,UNSUBSCRIBE,CANCEL,END,QUIT"


def _pattern(max_len: int, pattern: re.Pattern[str], what: str) -> Check:
    base = text(max_len)

    def check(name: str, value: Any) -> str:
        cleaned: str = base(name, value)
        if not pattern.fullmatch(cleaned):
            raise ValidationFailed(f"{name} must be {what}", field=name)
        return cleaned

    return check


def _ein(name: str, value: Any) -> str:
    try:
        return ein_digits(value)
    except ValidationFailed:
        raise ValidationFailed(f"{name} must be nine digits (12-3456789)", field=name) from None


def _samples(name: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not SAMPLES_MIN <= len(value) <= SAMPLES_MAX:
        raise ValidationFailed(f"{name} must list {SAMPLES_MIN} to {SAMPLES_MAX} messages",
                               field=name)
    return [text(1024, min_len=20)(f"{name}[{i}]", v) for i, v in enumerate(value)]


BRAND_REQUIRED: dict[str, Check] = {
    "legal_name": text(200, min_len=2), "ein": _ein,
    "entity_type": choice(*ENTITY_TYPES), "vertical": choice(*VERTICALS),
    "website": _pattern(200, _WEBSITE, "a web address such as https://example.org"),
    "address_line1": text(200), "city": text(100),
    "state": _pattern(2, _STATE, "a two-letter US state code such as WA"),
    "postal_code": _pattern(10, _ZIP, "a US ZIP code (12345 or 12345-6789)"),
    "phone": _pattern(16, E164, "an E.164 number such as +12065550100"),
    "email": email(),
}
BRAND_OPTIONAL: dict[str, Check] = {"display_name": text(100, min_len=2),
                                    "address_line2": text(200)}
CAMPAIGN_REQUIRED: dict[str, Check] = {
    "usecase": choice(*USECASES), "description": text(4096, min_len=40),
    "message_flow": text(2048, min_len=40), "sample_messages": _samples,
}
CAMPAIGN_OPTIONAL: dict[str, Check] = {
    "help_message": text(255, min_len=20), "optin_message": text(255, min_len=20),
    "optout_message": text(255, min_len=20),
}


def checked(body: Any, required: dict[str, Check], optional: dict[str, Check]) -> dict[str, Any]:
    """Every field cleaned, or a 422 naming each unknown, missing or bad field."""
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object", field="")
    return fields(body, required=required, optional=optional)


def brand_form(body: Any) -> dict[str, Any]:
    """The brand's fields (display name defaults to the legal name)."""
    form = checked(body, BRAND_REQUIRED, BRAND_OPTIONAL)
    form["display_name"] = form["display_name"] or form["legal_name"][:100]
    return form


def campaign_form(body: Any, church: Any) -> dict[str, Any]:
    """The campaign's fields; the HELP/START/STOP texts default to the church's replies."""
    form = checked(body, CAMPAIGN_REQUIRED, CAMPAIGN_OPTIONAL)
    for key, reply in (("help_message", "help_reply"), ("optin_message", "start_reply"),
                       ("optout_message", "stop_reply")):
        form[key] = form[key] or church[reply]
    return form


def _webhooks(settings: Settings) -> dict[str, str]:
    url = settings.telnyx_webhook_url
    return {"webhookURL": url} if url else {}


def telnyx_brand(form: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The body of POST (or PUT) /v2/10dlc/brand."""
    street = form["address_line1"]
    if form.get("address_line2"):
        street = f"{street} {form['address_line2']}"
    return {"entityType": form["entity_type"], "displayName": form["display_name"],
            "companyName": form["legal_name"], "ein": form["ein"], "phone": form["phone"],
            "street": street, "city": form["city"], "state": form["state"],
            "postalCode": form["postal_code"], "country": "US", "email": form["email"],
            "website": form["website"], "vertical": form["vertical"], **_webhooks(settings)}


def telnyx_campaign(form: dict[str, Any], brand_id: str, settings: Settings) -> dict[str, Any]:
    """The body of POST /v2/10dlc/campaignBuilder (STOP/START/HELP are answered by us)."""
    samples = {f"sample{i}": s for i, s in enumerate(form["sample_messages"], start=1)}
    return {"brandId": brand_id, "usecase": form["usecase"],
            "description": form["description"], "messageFlow": form["message_flow"],
            **samples, "helpMessage": form["help_message"],
            "optinMessage": form["optin_message"], "optoutMessage": form["optout_message"],
            "helpKeywords": "HELP,INFO", "optinKeywords": "START,UNSTOP",
            "optoutKeywords": OPTOUT_KEYWORDS, "subscriberHelp": True,
            "subscriberOptin": True, "subscriberOptout": True, "embeddedLink": False,
            "embeddedPhone": False, "numberPool": False, "ageGated": False,
            "directLending": False, "termsAndConditions": True, **_webhooks(settings)}
