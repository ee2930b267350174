"""Checks of single values, shared by the HTTP handlers and the domain (which must not import
the HTTP layer): text, email addresses, UUIDs, message bodies, instants.

Each check takes (field name, raw value) and returns the cleaned value or raises
ValidationFailed naming the field; `api.validation.fields` gathers every field's failure of a
request body into one 422. Phone numbers are checked in church/phones.py (they need the
church's region).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import FieldError, ValidationFailed

# A phone number in E.164 as stored everywhere (the members table's CHECK, numbers, forms)
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")

Check = Callable[[str, Any], Any]
MAX_EMAIL = 254
MAX_IDS = 1000
MAX_BODY = 1600
MAX_AHEAD = timedelta(days=366)
PAST_SLACK = timedelta(minutes=1)
_ALLOWED_CONTROLS = {"\n", "\r"}


def text(max_len: int, *, min_len: int = 1, strip: bool = True) -> Check:
    """A string of `min_len`..`max_len` characters without control characters."""

    def check(name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise ValidationFailed(f"{name} must be a string", field=name)
        cleaned: str = value.strip() if strip else value
        if len(cleaned) > max_len:
            raise ValidationFailed(f"{name} must be at most {max_len} characters", field=name)
        if len(cleaned) < min_len:
            raise ValidationFailed(f"{name} must be at least {min_len} characters", field=name)
        if any(unicodedata.category(c) == "Cc" for c in cleaned):
            raise ValidationFailed(f"{name} must not contain control characters", field=name)
        return cleaned

    return check


def secret(max_len: int = 1024) -> Check:
    """A password or token: a non-empty string, kept exactly as sent."""

    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise ValidationFailed(f"{name} must be a non-empty string", field=name)
        if len(value) > max_len:
            raise ValidationFailed(f"{name} must be at most {max_len} characters", field=name)
        return value

    return check


def integer() -> Check:
    """A JSON integer, bounded by the spec; `3.0` is the integer 3, as JSON Schema says."""

    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise ValidationFailed(f"{name} must be an integer", field=name,
                                   error_code="wrong_type")
        return int(value)

    return check


def boolean() -> Check:
    """true or false (not 0/1, not strings)."""

    def check(name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationFailed(f"{name} must be true or false", field=name)
        return value

    return check


def choice(*allowed: str) -> Check:
    """One of a fixed set of strings."""

    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise ValidationFailed(f"{name} must be one of {', '.join(allowed)}", field=name)
        return value

    return check


def normalize_email(value: str) -> str:
    """NFKC, trimmed, lower-case: the form stored and looked up."""
    return unicodedata.normalize("NFKC", value).strip().lower()


def spec_email() -> Check:
    """An email address whose form the spec checked (its `email` pattern), normalized only.

    Normalizing may still make an odd address odder (NFKC turns U+00B4 into a space and an
    accent): it is stored so, never refused after the spec accepted it."""

    def check(name: str, value: Any) -> str:
        return normalize_email(value)

    return check


def email() -> Check:
    """An email address, normalized and checked (CSV rows, which no spec describes)."""

    def check(name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise ValidationFailed(f"{name} must be a string", field=name)
        addr = normalize_email(value)
        local, at, domain = addr.rpartition("@")
        if (not at or not local or "." not in domain.strip(".") or len(addr) > MAX_EMAIL
                or len(addr) < 3 or any(c.isspace() or unicodedata.category(c) == "Cc"
                                        for c in addr)):
            raise ValidationFailed(f"{name} must be an email address", field=name)
        return addr

    return check


def uuid_value() -> Check:
    """A UUID in its canonical text form."""

    def check(name: str, value: Any) -> uuid.UUID:
        try:
            if not isinstance(value, str) or len(value) != 36:
                raise ValueError
            return uuid.UUID(value)
        except ValueError:
            raise ValidationFailed(f"{name} must be a UUID", field=name) from None

    return check


def uuid_list(*, min_items: int = 0) -> Check:
    """A JSON array of UUIDs (duplicates collapse), at most MAX_IDS long."""
    one = uuid_value()

    def check(name: str, value: Any) -> tuple[uuid.UUID, ...]:
        if not isinstance(value, list) or not min_items <= len(value) <= MAX_IDS:
            raise ValidationFailed(
                f"{name} must be an array of {min_items} to {MAX_IDS} UUIDs", field=name)
        return tuple(dict.fromkeys(one(name, v) for v in value))

    return check


def message_body(max_len: int = MAX_BODY) -> Check:
    """A message text: 1..max_len characters after trimming; line breaks allowed, other
    control characters not."""

    def check(name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise ValidationFailed(f"{name} must be a string", field=name)
        cleaned = value.strip()
        if not 1 <= len(cleaned) <= max_len:
            raise ValidationFailed(f"{name} must be 1 to {max_len} characters", field=name)
        if any(unicodedata.category(c) == "Cc" and c not in _ALLOWED_CONTROLS for c in cleaned):
            raise ValidationFailed(f"{name} must not contain control characters", field=name)
        return cleaned

    return check


def future_instant() -> Check:
    """An ISO-8601 instant with an offset, not in the past, at most a year ahead."""

    def check(name: str, value: Any) -> datetime:
        try:
            if not isinstance(value, str) or len(value) > 40:
                raise ValueError
            at = datetime.fromisoformat(value)
            if at.tzinfo is None:
                raise ValueError
        except ValueError:
            raise ValidationFailed(f"{name} must be an ISO-8601 time with an offset",
                                   field=name) from None
        now = datetime.now(UTC)
        if not now - PAST_SLACK <= at <= now + MAX_AHEAD:
            raise ValidationFailed(f"{name} must be in the future and within a year",
                                   field=name, error_code="out_of_range")
        return at.astimezone(UTC)

    return check


def fields(body: Mapping[str, Any], *, required: Mapping[str, Check] | None = None,
           optional: Mapping[str, Check] | None = None) -> dict[str, Any]:
    """The cleaned fields; refuses unknown and missing ones. Absent optional fields are None."""
    required = required or {}
    optional = optional or {}
    errors = [FieldError(name, "unknown_field", f"unknown field {name!r}")
              for name in body if name not in required and name not in optional]
    out: dict[str, Any] = {}
    failed: list[ValidationFailed] = []
    for name, check in (*required.items(), *optional.items()):
        value = body.get(name)
        if value is None:
            out[name] = None
            if name in required:
                errors.append(FieldError(name, "required", f"{name} is required"))
            continue
        try:
            out[name] = check(name, value)
        except ValidationFailed as exc:
            failed.append(exc)
            errors.extend(exc.errors)
    if len(failed) == 1 and len(errors) == len(failed[0].errors):
        raise failed[0]   # one failure keeps its own problem code (e.g. `invalid_phone`)
    if errors:
        raise ValidationFailed(errors=errors)
    return out
