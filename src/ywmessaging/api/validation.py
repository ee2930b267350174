"""Small explicit JSON body validation: unknown fields, wrong types and oversize strings → 422.

A handler names every field it accepts with a check::

    body = await json_body(request)
    data = fields(body, required={"email": email()}, optional={"timezone": text(64)})

Each check takes (field name, raw value) and returns the cleaned value or raises
ValidationFailed naming the field.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from ..errors import BadRequest, NotFound, UnsupportedMediaType, ValidationFailed

Check = Callable[[str, Any], Any]
MAX_EMAIL = 254
# A path's `{id}` that only a UUID matches, so that `/members/export` is never read as a member id
# (a wrong method on it is then 405 with `Allow`, not a 404 for a member "export").
UUID_ID = "{id:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}}"


class InvalidJson(BadRequest):
    code, title = "invalid_json", "The body is not a JSON object"


async def json_body(request: web.Request, *, allow_empty: bool = False) -> dict[str, Any]:
    """The request body as a JSON object (400 `invalid_json`, 415 for another media type)."""
    raw = await request.read()
    if not raw.strip():
        if allow_empty:
            return {}
        raise InvalidJson("the request needs a JSON body")
    if request.content_type != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidJson("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidJson("the body must be a JSON object")
    return body


def fields(body: Mapping[str, Any], *, required: Mapping[str, Check] | None = None,
           optional: Mapping[str, Check] | None = None) -> dict[str, Any]:
    """The cleaned fields; refuses unknown and missing ones. Absent optional fields are None."""
    required = required or {}
    optional = optional or {}
    for name in body:
        if name not in required and name not in optional:
            raise ValidationFailed(f"unknown field {name!r}", field=name)
    out: dict[str, Any] = {}
    for name, check in required.items():
        if body.get(name) is None:
            raise ValidationFailed(f"{name} is required", field=name)
        out[name] = check(name, body[name])
    for name, check in optional.items():
        value = body.get(name)
        out[name] = None if value is None else check(name, value)
    return out


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


def email() -> Check:
    """An email address, normalized."""

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


def uuid_path(request: web.Request, name: str) -> uuid.UUID:
    """A UUID from the URL path; anything else is 404 (an id that cannot exist)."""
    try:
        return uuid.UUID(request.match_info[name])
    except (KeyError, ValueError):
        raise NotFound() from None
