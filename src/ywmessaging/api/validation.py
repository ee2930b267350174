"""Request bodies and query strings: checked against `openapi.yaml`, then cleaned.

`json_body(request)` and `query_params(request)` check the request against the operation of the
route that matched (see `contract`): one 422 lists every bad field. A handler then names every
field it reads with a check that cleans it (trims, normalizes, parses)::

    body = await json_body(request)
    data = fields(body, required={"email": email()}, optional={"timezone": text(64)})

Each check takes (field name, raw value) and returns the cleaned value or raises
ValidationFailed naming the field; `fields` gathers every field's failure into one 422.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from .. import contract
from ..church.pagination import InvalidCursor
from ..errors import BadRequest, FieldError, NotFound, UnsupportedMediaType, ValidationFailed
from ..keys import CONTRACT

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
    spec = contract_of(request)
    contract.check_body(spec, contract.operation_of(request, spec), body)
    return body


def contract_of(request: web.Request) -> contract.Contract:
    """The compiled `openapi.yaml` (the app's, else the repository's)."""
    found = request.config_dict.get(CONTRACT)
    return found if found is not None else contract.load()


def query_params(request: web.Request) -> dict[str, str]:
    """The query string as a dict, checked against the operation's parameters (422 listing
    unknown, repeated and malformed ones)."""
    spec = contract_of(request)
    try:
        return contract.check_query(spec, contract.operation_of(request, spec),
                                    request.query.items())
    except ValidationFailed as exc:
        # A cursor is opaque: any bad one is 400 `invalid_cursor` (start from the first page).
        if any(e.field == "cursor" for e in exc.errors):
            raise InvalidCursor() from None
        raise


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


def uuid_path(request: web.Request, name: str) -> uuid.UUID:
    """A UUID from the URL path; anything else is 404 (an id that cannot exist)."""
    try:
        return uuid.UUID(request.match_info[name])
    except (KeyError, ValueError):
        raise NotFound() from None
