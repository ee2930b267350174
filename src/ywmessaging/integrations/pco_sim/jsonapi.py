"""People v2 as JSON:API: resources, includes, paging links, filters and order."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from .state import PcoSimState, Person, iso

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 25
ORDERS = {"id", "-id", "updated_at", "-updated_at", "created_at", "-created_at",
          "last_name", "-last_name"}


class BadQuery(ValueError):
    """A parameter Planning Center would refuse (400)."""


def person_resource(state: PcoSimState, p: Person) -> dict[str, Any]:
    """A Person with its relationships to phone numbers and emails."""
    base = f"{state.base_url}/people/v2/people/{p.id}"
    return {
        "type": "Person", "id": p.id,
        "attributes": {"first_name": p.first_name, "last_name": p.last_name,
                       "name": f"{p.first_name} {p.last_name}".strip(), "status": "active",
                       "created_at": iso(p.created_at), "updated_at": iso(p.updated_at)},
        "relationships": {
            "phone_numbers": {"data": [{"type": "PhoneNumber", "id": ph["id"]}
                                       for ph in p.phones]},
            "emails": {"data": [{"type": "Email", "id": e["id"]} for e in p.emails]},
        },
        "links": {"self": base},
    }


def included(p: Person, wanted: set[str]) -> list[dict[str, Any]]:
    """The PhoneNumber and Email resources of a person that `include` asked for."""
    out: list[dict[str, Any]] = []
    if "phone_numbers" in wanted:
        out.extend({"type": "PhoneNumber", "id": ph["id"],
                    "attributes": {"number": ph["number"], "location": ph["location"],
                                   "primary": ph["primary"]}} for ph in p.phones)
    if "emails" in wanted:
        out.extend({"type": "Email", "id": e["id"],
                    "attributes": {"address": e["address"], "location": e["location"],
                                   "primary": e["primary"]}} for e in p.emails)
    return out


def _when(raw: str) -> datetime.datetime:
    try:
        at = datetime.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadQuery(f"not a timestamp: {raw}") from None
    return at if at.tzinfo else at.replace(tzinfo=datetime.UTC)


def select(people: list[Person], query: dict[str, str]) -> list[Person]:
    """`where[updated_at][gte|gt|lte|lt]` filters, then `order`."""
    ops: dict[str, Callable[[datetime.datetime, datetime.datetime], bool]] = {
        "gte": lambda a, b: a >= b, "gt": lambda a, b: a > b,
        "lte": lambda a, b: a <= b, "lt": lambda a, b: a < b}
    for op, test in ops.items():
        raw = query.get(f"where[updated_at][{op}]")
        if raw is not None:
            bound = _when(raw)
            people = [p for p in people if test(p.updated_at, bound)]
    order = query.get("order", "id")
    if order not in ORDERS:
        raise BadQuery(f"cannot order by {order}")
    name = order.lstrip("-")

    def key(p: Person) -> Any:
        if name == "id":
            return int(p.id)
        value = getattr(p, name)
        return (value, int(p.id))

    return sorted(people, key=key, reverse=order.startswith("-"))


def page(state: PcoSimState, path: str, rows: list[Any], query: dict[str, str],
         render: Any, extra: Any = None) -> dict[str, Any]:
    """One page of `rows` (per_page up to 100, offset) with links.next while more remain."""
    try:
        per_page = int(query.get("per_page", DEFAULT_PER_PAGE))
        offset = int(query.get("offset", 0))
    except ValueError:
        raise BadQuery("per_page and offset are integers") from None
    if not 1 <= per_page <= MAX_PER_PAGE or offset < 0:
        raise BadQuery("per_page is 1 to 100; offset is not negative")
    chunk = rows[offset:offset + per_page]
    base = {k: v for k, v in query.items() if k not in ("offset",)}
    links: dict[str, Any] = {"self": f"{state.base_url}{path}?{urlencode(query)}"}
    meta: dict[str, Any] = {"total_count": len(rows), "count": len(chunk),
                            "can_order_by": sorted(o for o in ORDERS if o[0] != "-")}
    if offset + per_page < len(rows):
        nxt = {**base, "offset": str(offset + per_page)}
        links["next"] = f"{state.base_url}{path}?{urlencode(nxt)}"
        meta["next"] = {"offset": offset + per_page}
    if offset > 0:
        meta["prev"] = {"offset": max(0, offset - per_page)}
    doc: dict[str, Any] = {"links": links, "data": [render(r) for r in chunk],
                           "included": [], "meta": meta}
    if extra is not None:
        doc["included"] = [inc for r in chunk for inc in extra(r)]
    return doc
