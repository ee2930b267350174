"""Phone numbers: anything a person types, normalized to E.164 with the church's region."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import phonenumbers

from ..config import Settings
from ..errors import ValidationFailed
from ..sqlq import tenant as tq
from ..values import E164

MAX_INPUT = 32  # "+1 (213) 373-4253 ext. 1234" fits; longer input is not a phone number
_REGION_RE = re.compile(r"^[A-Z]{2}$")
_FRAGMENT_RE = re.compile(r"^[0-9+()\-. ]+$")


class InvalidPhone(ValidationFailed):
    field_code = "invalid_phone"
    code, title = "invalid_phone", "The phone number is not valid"


def normalize_phone(raw: str, region: str, *, field: str = "phone") -> str:
    """The E.164 form of `raw` (national formats read in `region`), or InvalidPhone (422)."""
    text = unicodedata.normalize("NFKC", raw).strip()
    if not text or len(text) > MAX_INPUT:
        raise InvalidPhone(f"{field} must be 1 to {MAX_INPUT} characters", field=field)
    if not _REGION_RE.fullmatch(region):
        region = "US"
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise InvalidPhone(f"{field} is not a phone number", field=field) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(f"{field} is not a valid number", field=field)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if not E164.fullmatch(e164):  # the schema's CHECK; never expected to differ
        raise InvalidPhone(f"{field} is not a valid number", field=field)
    return e164


def needs_region(raw: str) -> bool:
    """Whether `raw` is written in national form (so the church's region is needed)."""
    return not unicodedata.normalize("NFKC", raw).strip().startswith("+")


def digits_fragment(search: str) -> str | None:
    """The part of a phone number a search stands for: its digits, after a `+` when it starts
    with one (`(213) 373-42` → `21337342`, `+44 20` → `+4420`); None for other searches."""
    text = search.strip()
    if not _FRAGMENT_RE.fullmatch(text):
        return None
    digits = "".join(c for c in text if c.isdigit())
    if not digits:
        return None
    return f"+{digits}" if text.startswith("+") else digits


async def to_e164(conn: Any, settings: Settings, raw: str, *, field: str = "phone") -> str:
    """`raw` in E.164, national formats read in the church's default region (settings row)."""
    region = "US"
    if needs_region(raw):
        row = await tq(settings.sql_dir).get_settings(conn)
        region = row["default_region"] if row else region
    return normalize_phone(raw, region, field=field)
