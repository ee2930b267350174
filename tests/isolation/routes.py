"""The isolation matrix's view of the application: every `/api/v1` route read from the assembled
router (so a route added later is in the matrix without editing it), the kind of object each
path placeholder names, and request bodies made from `openapi.yaml`'s requestBody schemas.

Nothing here is a list of routes. The only tables are the vocabulary that turns a resource
segment (`members`) or a body field (`group_ids`) into an object kind; a placeholder or an id
field they cannot map raises `Unmapped` naming the route, so a new route is never skipped.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import yaml
from aiohttp import web

from ywmessaging.auth.permissions import route_permission
from ywmessaging.config import REPO_ROOT
from ywmessaging.keys import API_V1

# The resource segment before a placeholder → the kind of object the placeholder names.
SEGMENT_KIND = {
    "members": "member", "groups": "group", "branches": "branch", "templates": "template",
    "broadcasts": "broadcast", "conversations": "conversation", "recurring": "recurring",
    "imports": "import", "admins": "admin", "numbers": "number", "exports": "export",
}
KINDS = frozenset(SEGMENT_KIND.values())
_PLACEHOLDER = re.compile(r"\{(\w+)(?::[^}]*)?\}")
# Strings tried, in order, for a string property with a pattern and no better hint.
_CANDIDATES = ("Isolation check", "09:00", "#1A2B3C", "US", "+12025550100", "12-3456789")


class Unmapped(AssertionError):
    """The matrix cannot tell what a placeholder or body field of a route refers to."""


@dataclass(frozen=True)
class Route:
    """One method of one `/api/v1` resource."""

    method: str
    path: str                              # canonical, e.g. /api/v1/members/{id}/consent
    permission: str | None                 # route_permission() of the handler
    slots: tuple[tuple[str, str], ...]     # (placeholder, kind), in path order

    @property
    def name(self) -> str:
        """`METHOD /path`, how failures name the route."""
        return f"{self.method} {self.path}"

    def url(self, ids: Callable[[str], str]) -> str:
        """The path with each placeholder replaced by `ids(kind)`."""
        kinds = dict(self.slots)
        return _PLACEHOLDER.sub(lambda m: ids(kinds[m.group(1)]), self.path)


def placeholder_kinds(method: str, path: str) -> tuple[tuple[str, str], ...]:
    """(placeholder, kind) of each placeholder, by the path segment before it."""
    out = []
    segments = path.strip("/").split("/")
    for i, segment in enumerate(segments):
        found = _PLACEHOLDER.fullmatch(segment)
        if found is None:
            continue
        before = segments[i - 1] if i else ""
        if before not in SEGMENT_KIND:
            raise Unmapped(f"{method} {path}: placeholder {{{found.group(1)}}} after "
                           f"{before!r} names no kind the isolation matrix knows; add the "
                           f"segment to SEGMENT_KIND and create such an object in seed.py")
        out.append((found.group(1), SEGMENT_KIND[before]))
    return tuple(out)


def api_routes(app: web.Application) -> list[Route]:
    """Every route of the `/api/v1` sub-application (HEAD included), in router order."""
    routes = []
    for route in app[API_V1].router.routes():
        resource = route.resource
        assert resource is not None
        path = resource.canonical
        routes.append(Route(route.method, path, route_permission(route.handler),
                            placeholder_kinds(route.method, path)))
    return routes


def field_kind(route: Route, name: str) -> str:
    """The kind of object an id field (`group_ids`, `branch_id`, `admin_id`) refers to."""
    base = re.sub(r"_ids?$", "", name)
    if base == name or base not in KINDS:
        raise Unmapped(f"{route.name}: id field {name!r} names no kind the isolation matrix "
                       f"knows")
    return base


# --- openapi.yaml --------------------------------------------------------------------------


@cache
def spec() -> dict[str, Any]:
    """openapi.yaml, parsed once."""
    doc: dict[str, Any] = yaml.safe_load((REPO_ROOT / "openapi.yaml").read_text())
    return doc


def resolve(node: Any) -> Any:
    """Follow a local `$ref` (repeatedly)."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def operation(route: Route) -> dict[str, Any]:
    """The route's operation object (HEAD is documented by its GET)."""
    item = spec()["paths"].get(route.path)
    method = "get" if route.method == "HEAD" else route.method.lower()
    if item is None or method not in item:
        raise AssertionError(f"{route.name} is not in openapi.yaml")
    op: dict[str, Any] = item[method]
    return {**op, "parameters": [resolve(p) for p in item.get("parameters", [])]
            + [resolve(p) for p in op.get("parameters", [])]}


def query_params(route: Route) -> dict[str, dict[str, Any]]:
    """The route's query parameters by name, with resolved schemas."""
    return {p["name"]: resolve(p.get("schema", {})) for p in operation(route)["parameters"]
            if p.get("in") == "query"}


def json_body_schema(route: Route) -> dict[str, Any] | None:
    """The JSON requestBody schema (None without one); a route whose only body is another
    media type answers None too (the matrix sends such routes no body)."""
    body = operation(route).get("requestBody")
    if body is None:
        return None
    media = resolve(body).get("content", {}).get("application/json")
    return None if media is None else resolve(media.get("schema", {}))


def _types(schema: dict[str, Any]) -> list[str]:
    t = schema.get("type", [])
    return [x for x in ([t] if isinstance(t, str) else t) if x != "null"]


def _is_uuid(schema: dict[str, Any]) -> bool:
    return schema.get("format") == "uuid"


def id_fields(schema: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Paths (property names from the top) of every uuid field or uuid array in a body schema,
    through objects and oneOf/anyOf alternatives."""
    schema = resolve(schema)
    for alt in schema.get("oneOf", []) + schema.get("anyOf", []):
        yield from id_fields(alt, prefix)
    for name, prop in schema.get("properties", {}).items():
        prop = resolve(prop)
        if _is_uuid(prop) or ("array" in _types(prop) and _is_uuid(resolve(prop.get("items",
                                                                                    {})))):
            yield (*prefix, name)
        else:
            yield from id_fields(prop, (*prefix, name))


@dataclass
class Sampler:
    """Makes a minimal valid body from a schema: required properties (plus the path `want`
    leads to, and `extra` top-level ones), constants, enums and defaults, plausible strings.
    uuid fields get `ids(kind)`."""

    route: Route
    ids: Callable[[str], str]
    extra: set[str] = field(default_factory=set)

    def body(self, schema: Any, want: tuple[str, ...] = ()) -> Any:
        """A body for the whole schema, including the field at `want`."""
        return self.sample(schema, "", want, top=True)

    def sample(self, schema: Any, name: str, want: tuple[str, ...] = (),
               top: bool = False) -> Any:
        """A value for one (sub)schema."""
        s = resolve(schema)
        # Alternatives that only add constraints to an object described here (e.g. "a body or a
        # template_id") are not shapes of their own: sample the object itself.
        alts = [] if "properties" in s else [resolve(a) for a in
                                             s.get("oneOf", []) + s.get("anyOf", [])]
        if alts:
            fits = [a for a in alts if (want[0] in a.get("properties", {}) if want
                                        else a.get("type") != "null")]
            return self.sample(fits[0], name, want, top)
        if "const" in s:
            return s["const"]
        if "enum" in s:
            return next(v for v in s["enum"] if v is not None)
        types = _types(s)
        if "object" in types or "properties" in s:
            return self._object(s, want, top)
        if "array" in types:
            return [self.sample(s.get("items", {}), name)
                    for _ in range(max(1, s.get("minItems", 0)))]
        if _is_uuid(s):
            return self.ids(field_kind(self.route, name))
        if "default" in s and s["default"] is not None:
            return s["default"]
        if "integer" in types or "number" in types:
            return s.get("minimum", 1)
        if "boolean" in types:
            return False
        return self._string(s, name)

    def _object(self, s: dict[str, Any], want: tuple[str, ...], top: bool) -> dict[str, Any]:
        props = s.get("properties", {})
        names = list(s.get("required", []))
        for rule in s.get("anyOf", [])[:1] + s.get("oneOf", [])[:1]:  # "a body or a template"
            names += [n for n in resolve(rule).get("required", []) if n not in names]
        if want and want[0] not in names:
            names.append(want[0])
        if top:
            names += [n for n in sorted(self.extra) if n in props and n not in names]
        for n in props:
            if len(names) >= s.get("minProperties", 0):
                break
            if n not in names:
                names.append(n)
        return {n: self.sample(props.get(n, {}), n, want[1:] if want and n == want[0] else ())
                for n in names}

    def _string(self, s: dict[str, Any], name: str) -> str:
        fmt = s.get("format")
        if fmt == "email":
            return f"iso-{secrets.token_hex(4)}@example.org"
        if fmt == "date-time":
            return (datetime.now(UTC) + timedelta(days=1)).isoformat(timespec="seconds")
        if fmt == "password":
            return "Isolation matrix passphrase 7"
        if name == "phone":
            return fresh_phone()
        if name in ("time_zone", "timezone"):
            return "America/Chicago"
        lo, hi = s.get("minLength", 1), s.get("maxLength", 10_000)
        for c in _CANDIDATES:
            if lo <= len(c) <= hi and re.search(s.get("pattern", ""), c):
                return c
        raise Unmapped(f"{self.route.name}: cannot make a value for {name!r} ({s}); add a "
                       f"candidate to routes._CANDIDATES")


def fresh_phone() -> str:
    """A valid US number (Washington, DC, 555 exchange), random enough for one church."""
    return f"+1202555{secrets.randbelow(10_000):04d}"


def set_at(body: dict[str, Any], path: tuple[str, ...], value: str) -> dict[str, Any]:
    """`body` with the id field at `path` holding `value` (as a one-item list where the field
    is a list)."""
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = [value] if isinstance(node[path[-1]], list) else value
    return body
