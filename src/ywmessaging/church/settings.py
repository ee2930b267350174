"""The church profile: name, time zone, phone region, quiet hours, auto-reply texts and the 10DLC
brand details, all in the tenant's single `settings` row.

The EIN is stored only as SecretBox ciphertext (purpose `settings.ein`) plus its last four
digits, and shown only masked (`**-***1234`). A PATCH names just the fields it changes; `null`
clears a clearable one (quiet hours, brand details). It reads the row FOR UPDATE, merges, and
writes it back with its audit row in one transaction.
"""

from __future__ import annotations

import re
import uuid
import zoneinfo
from datetime import time
from functools import lru_cache
from typing import Any

import phonenumbers

from ..config import Settings
from ..crypto import SecretBox
from ..errors import ValidationFailed
from ..sqlq import tenant as tq
from ..values import text
from . import Actor, audit
from .templates import message_text

EIN_PURPOSE = "settings.ein"
REPLY_MAX = 320
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
_EIN = re.compile(r"^([0-9]{2})-?([0-9]{7})$")
_WEBSITE = re.compile(r"^(https?://)?[^\s/$.?#][^\s]*\.[^\s]+$", re.IGNORECASE)
TOP_FIELDS = ("name", "timezone", "default_region", "quiet_hours", "help_reply", "stop_reply",
              "start_reply", "brand", "welcome_enabled", "welcome_message")
BRAND_LIMITS = {"legal_name": 200, "website": 200, "address_line1": 200,
                "address_line2": 200, "city": 100, "state": 50, "postal_code": 20}
BRAND_FIELDS = ("legal_name", "ein", *tuple(k for k in BRAND_LIMITS if k != "legal_name"))
REPLIES = {"help_reply": "help_reply", "stop_reply": "stop_reply", "start_reply": "start_reply",
           "welcome_message": "welcome_message"}


_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(z for z in zoneinfo.available_timezones()
                     if z not in _NOT_ZONES and not z.startswith(("posix/", "right/")))


def time_zone(name: str, value: Any) -> str:
    """An IANA time zone name (`America/Chicago`), 422 otherwise."""
    if not isinstance(value, str) or value not in _zones() or len(value) > 64:
        raise ValidationFailed(f"{name} must be an IANA time zone name", field=name,
                               error_code="unknown_time_zone")
    return value


def region(name: str, value: Any) -> str:
    """A region code phonenumbers knows (`US`, `GB`, ...)."""
    if not isinstance(value, str) or value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationFailed(f"{name} must be a two-letter region code", field=name,
                               error_code="unknown_region")
    return value


def quiet_hours(name: str, value: Any) -> tuple[time, time] | None:
    """`{"start": "HH:MM", "end": "HH:MM"}` (different times; start after end wraps midnight)."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"start", "end"}:
        raise ValidationFailed(f"{name} must be an object with start and end", field=name)
    out = []
    for key in ("start", "end"):
        m = _HHMM.fullmatch(value[key]) if isinstance(value[key], str) else None
        if m is None:
            raise ValidationFailed(f"{name}.{key} must be HH:MM", field=name)
        out.append(time(int(m.group(1)), int(m.group(2))))
    if out[0] == out[1]:
        raise ValidationFailed(f"{name} start and end must differ", field=name,
                               error_code="empty_window")
    return out[0], out[1]


def ein_digits(value: Any) -> str:
    """The nine digits of an EIN given as `12-3456789` or `123456789`."""
    m = _EIN.fullmatch(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise ValidationFailed("brand.ein must be nine digits (12-3456789)", field="brand.ein")
    return m.group(1) + m.group(2)


def _brand(value: Any, current: dict[str, Any], box: SecretBox) -> None:
    """Merge a `brand` object into `current` (the row's columns); null clears a field."""
    if not isinstance(value, dict):
        raise ValidationFailed("brand must be an object", field="brand")
    for key, raw in value.items():
        if key not in BRAND_FIELDS:
            raise ValidationFailed(f"unknown field brand.{key}", field=f"brand.{key}")
        if key == "ein":
            digits = None if raw is None else ein_digits(raw)
            current["ein_encrypted"] = None if digits is None else box.seal(digits, EIN_PURPOSE)
            current["ein_last4"] = None if digits is None else digits[-4:]
            continue
        cleaned = None if raw is None else text(BRAND_LIMITS[key])(f"brand.{key}", raw)
        if key == "website" and cleaned is not None and not _WEBSITE.fullmatch(cleaned):
            raise ValidationFailed("brand.website must be a web address", field="brand.website")
        current[key] = cleaned


def merge(body: dict[str, Any], row: Any, box: SecretBox) -> tuple[dict[str, Any], list[str]]:
    """The settings columns after applying a PATCH body, and the names of the fields it set."""
    current = dict(row)
    for key, value in body.items():
        if key not in TOP_FIELDS:
            raise ValidationFailed(f"unknown field {key!r}", field=key)
        if value is None and key not in ("quiet_hours",):
            raise ValidationFailed(f"{key} cannot be null", field=key)
        if key == "name":
            current["church_name"] = text(100)(key, value)
        elif key == "timezone":
            current["time_zone"] = time_zone(key, value)
        elif key == "default_region":
            current["default_region"] = region(key, value)
        elif key == "quiet_hours":
            hours = quiet_hours(key, value)
            current["quiet_hours_start"], current["quiet_hours_end"] = hours or (None, None)
        elif key in REPLIES:
            current[REPLIES[key]] = message_text(key, value, REPLY_MAX)
        elif key == "welcome_enabled":
            if not isinstance(value, bool):
                raise ValidationFailed(f"{key} must be true or false", field=key)
            current["welcome_enabled"] = value
        else:
            _brand(value, current, box)
    if not body:
        raise ValidationFailed("give at least one field to change", field="name")
    return current, sorted(body)


def profile_json(row: Any, tenant_id: uuid.UUID) -> dict[str, Any]:
    """The church profile as the API shows it (the EIN only masked)."""
    start, end = row["quiet_hours_start"], row["quiet_hours_end"]
    last4 = row["ein_last4"]
    return {
        "id": str(tenant_id), "name": row["church_name"], "timezone": row["time_zone"],
        "default_region": row["default_region"],
        "quiet_hours": None if start is None else {"start": start.strftime("%H:%M"),
                                                   "end": end.strftime("%H:%M")},
        "help_reply": row["help_reply"], "stop_reply": row["stop_reply"],
        "start_reply": row["start_reply"], "sender_number": row["sender_number"],
        "welcome_enabled": row["welcome_enabled"], "welcome_message": row["welcome_message"],
        "brand": {
            "legal_name": row["legal_name"],
            "ein": None if last4 is None else f"**-***{last4}",
            **{k: row[k] for k in BRAND_LIMITS if k != "legal_name"},
            "status": row["brand_status"],
        },
        "updated_at": row["updated_at"],
    }


async def get_profile(conn: Any, settings: Settings, tenant_id: uuid.UUID) -> dict[str, Any]:
    """The church's profile."""
    return profile_json(await tq(settings.sql_dir).get_settings(conn), tenant_id)


async def update_profile(conn: Any, settings: Settings, box: SecretBox, actor: Actor,
                         tenant_id: uuid.UUID, body: dict[str, Any]) -> dict[str, Any]:
    """Apply a PATCH body to the profile; the audit row names the fields, never their values."""
    q = tq(settings.sql_dir)
    async with conn.transaction():
        current, changed = merge(body, await q.lock_settings(conn), box)
        if "timezone" in body and not await q.time_zone_known(conn, current["time_zone"]):
            raise ValidationFailed("timezone is not known to the database", field="timezone",
                                   error_code="unknown_time_zone")
        row = await q.update_settings(
            conn, current["church_name"], current["time_zone"], current["default_region"],
            current["quiet_hours_start"], current["quiet_hours_end"], current["help_reply"],
            current["stop_reply"], current["start_reply"], current["legal_name"],
            current["ein_encrypted"], current["ein_last4"], current["website"],
            current["address_line1"], current["address_line2"], current["city"],
            current["state"], current["postal_code"], current["welcome_enabled"],
            current["welcome_message"])
        brand = sorted(body["brand"]) if isinstance(body.get("brand"), dict) else []
        await audit(conn, settings, actor, "church.update", "church", tenant_id,
                    {"fields": changed, **({"brand_fields": brand} if brand else {})})
    return profile_json(row, tenant_id)
