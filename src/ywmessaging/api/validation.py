"""Request bodies and query strings: checked against `openapi.yaml`, then cleaned.

`json_body(request)` and `query_params(request)` check the request against the operation of the
route that matched (see `contract`): one 422 lists every bad field. A handler then names every
field it reads with a check that cleans it (trims, normalizes, parses)::

    body = await json_body(request)
    data = fields(body, required={"email": email()}, optional={"timezone": text(64)})

The checks (`text`, `email`, `uuid_value`, ...) are in `ywmessaging.values`, where the domain
uses them too; `fields` gathers every field's failure into one 422.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from typing import Any

import orjson
from aiohttp import web

from .. import contract
from ..church.pagination import InvalidCursor
from ..errors import BadRequest, NotFound, UnsupportedMediaType, ValidationFailed
from ..keys import CONTRACT
from ..values import fields as fields  # handlers take it from here with the other request helpers

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


def uuid_path(request: web.Request, name: str) -> uuid.UUID:
    """A UUID from the URL path; anything else is 404 (an id that cannot exist)."""
    try:
        return uuid.UUID(request.match_info[name])
    except (KeyError, ValueError):
        raise NotFound() from None


def cleared(body: Mapping[str, Any], nullable: Collection[str]) -> frozenset[str]:
    """The fields a PATCH sets to null; null is refused for the others (422)."""
    out = set()
    for name, value in body.items():
        if value is None:
            if name not in nullable:
                raise ValidationFailed(f"{name} cannot be null", field=name)
            out.add(name)
    return frozenset(out)


def query_choice(params: Mapping[str, str], name: str, allowed: Collection[str],
                 default: str | None) -> str | None:
    """An optional query parameter from a fixed set."""
    value = params.get(name, default)
    if value is not None and value not in allowed:
        raise ValidationFailed(f"{name} must be one of {', '.join(allowed)}", field=name)
    return value
