"""The request contract, read from `openapi.yaml`: one source for what the API accepts.

At boot the spec is parsed (once per process) and every operation's JSON request body and query
parameters are compiled with jsonschema-rs, the engine schemathesis judges this API with, and
with the same options (formats checked, fancy-regex patterns). A handler's `json_body(request)`
and `query_params(request)` validate against the operation of the route that matched, and a
bad request gets one 422 listing every bad field (`errors: [{field, code, detail}]`).

What a schema cannot say (a row that must exist, a time relative to now, a time zone or region
the libraries know) stays in the handlers and data functions, with its own `code`.

Stable codes: `required`, `unknown_field`, `null`, `wrong_type`, `too_short`, `too_long`,
`too_few`, `too_many`, `too_small`, `too_large`, `not_allowed`, `invalid_format`, `empty`,
`repeated`, `invalid`. The detail of a failed pattern is the `error` its entry in the spec's
`x-patterns` gives; a schema may also carry `x-error` (the end of a sentence after the
field's name, e.g. "must be a colour like #1A2B3C") for its pattern, format and one-of failures.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import jsonschema_rs
import yaml
from aiohttp import web

from .config import REPO_ROOT
from .errors import FieldError, ValidationFailed

SPEC_PATH = REPO_ROOT / "openapi.yaml"
BASE_URI = "urn:ywmessaging:openapi"
MAX_ERRORS = 100
METHODS = ("get", "put", "post", "delete", "patch")
_TYPE_NAMES = {"string": "a string", "integer": "an integer", "number": "a number",
               "boolean": "true or false", "array": "an array", "object": "an object"}


@dataclass(frozen=True, slots=True)
class Operation:
    """The compiled request shape of one operation (None: nothing to check)."""

    body: Any
    query: Any
    integer_params: frozenset[str]


class Contract:
    """Every operation of the spec by (METHOD, path template), compiled."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.doc = doc
        self._registry = jsonschema_rs.Registry([(BASE_URI, dict(doc))])
        self._ops: dict[tuple[str, str], Operation] = {}
        self._pattern_errors = {p["pattern"]: p["error"] for p in doc.get("x-patterns", ())}
        for path, item in doc.get("paths", {}).items():
            for method in METHODS:
                if method in item:
                    self._ops[(method.upper(), path)] = self._compile(path, method, item)

    def operation(self, method: str, path: str) -> Operation | None:
        """The operation serving `method path` (a template such as `/api/v1/members/{id}`)."""
        return self._ops.get((method, path))

    def _validator(self, schema: dict[str, Any]) -> Any:
        return jsonschema_rs.Draft202012Validator(
            schema, registry=self._registry, validate_formats=True,
            pattern_options=jsonschema_rs.FancyRegexOptions())

    def _compile(self, path: str, method: str, item: Mapping[str, Any]) -> Operation:
        op = item[method]
        where = f"{BASE_URI}#/paths/{_escape(path)}/{method}"
        body = None
        if "application/json" in op.get("requestBody", {}).get("content", {}):
            body = self._validator(
                {"$ref": f"{where}/requestBody/content/application~1json/schema"})
        props: dict[str, Any] = {}
        required: list[str] = []
        integers: set[str] = set()
        for param, pointer in self._params(path, method, item, op):
            if param["in"] != "query":
                continue
            props[param["name"]] = {"$ref": f"{pointer}/schema"}
            if param.get("required"):
                required.append(param["name"])
            if param["schema"].get("type") == "integer":
                integers.add(param["name"])
        query = self._validator({"type": "object", "properties": props, "required": required,
                                 "additionalProperties": False})
        return Operation(body, query, frozenset(integers))

    def _params(self, path: str, method: str, item: Mapping[str, Any],
                op: Mapping[str, Any]) -> Iterable[tuple[Any, str]]:
        """Each parameter of the operation and the absolute pointer to it."""
        for owner, where in ((item, f"/paths/{_escape(path)}"),
                             (op, f"/paths/{_escape(path)}/{method}")):
            for i, param in enumerate(owner.get("parameters", ())):
                pointer = f"{BASE_URI}#{where}/parameters/{i}"
                if "$ref" in param:
                    pointer = BASE_URI + param["$ref"]
                    param = self.resolve(param["$ref"])
                yield param, pointer

    def resolve(self, ref: str) -> Any:
        """The node a local `#/...` reference points at."""
        node: Any = self.doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def errors(self, validator: Any, instance: Any) -> list[FieldError]:
        """Every way `instance` breaks the schema (at most MAX_ERRORS), in document order."""
        out: dict[str, FieldError] = {}
        for error in validator.iter_errors(instance):
            for found in self._field_errors(error):
                out.setdefault(found.field, found)   # the first failure of each field
            if len(out) >= MAX_ERRORS:
                break
        return list(out.values())[:MAX_ERRORS]

    def _field_errors(self, error: Any) -> list[FieldError]:
        where = ".".join(str(p) for p in error.instance_path)
        kind = error.kind
        name = type(kind).__name__
        if name == "Required":
            f = _join(where, kind.property)
            return [FieldError(f, "required", f"{f} is required")]
        if name == "AdditionalProperties":
            return [FieldError(_join(where, p), "unknown_field", f"unknown field {p!r}")
                    for p in kind.unexpected]
        label = where or "the request"
        if name == "Type":
            if error.instance is None:
                return [FieldError(where, "null", f"{label} cannot be null")]
            types = [str(t) for t in (kind.types if isinstance(kind.types, list) else [kind.types])]
            wanted = " or ".join(_TYPE_NAMES.get(t, t) for t in types if t != "null")
            return [FieldError(where, "wrong_type", f"{label} must be {wanted}")]
        if name in _LIMITS:
            code, template, unit = _LIMITS[name]
            return [FieldError(where, code, f"{label} {template} {_count(kind.limit, unit)}")]
        if name in ("Enum", "Constant"):
            options = getattr(kind, "options", None) or [getattr(kind, "expected_value", None)]
            allowed = ", ".join(str(o) for o in options if o is not None)
            return [FieldError(where, "not_allowed", f"{label} must be one of {allowed}")]
        if name == "MinProperties":
            return [FieldError(where, "empty", "give at least one field to change")]
        hint = self._hint(error.absolute_keyword_location)
        if hint is None and name == "Pattern":
            hint = self._pattern_errors.get(kind.pattern)
        code = "invalid_format" if name in ("Pattern", "Format") else "invalid"
        if hint is None:
            hint = (_FORMATS.get(kind.format, f"must be a valid {kind.format}")
                    if name == "Format" else "is not in the expected form")
        return [FieldError(where, code, f"{label} {hint}")]

    def _hint(self, location: str | None) -> str | None:
        """The `x-error` of the schema whose keyword failed, if it has one."""
        if not location or not location.startswith(BASE_URI + "#/"):
            return None
        parts = location[len(BASE_URI) + 1:].rsplit("/", 1)[0]
        try:
            node = self.resolve(unquote(parts))
        except (KeyError, IndexError, TypeError):
            return None
        hint = node.get("x-error") if isinstance(node, dict) else None
        return hint if isinstance(hint, str) else None


_FORMATS = {"email": "must be an email address", "uuid": "must be a UUID",
            "date-time": "must be an ISO-8601 time with an offset"}
_LIMITS = {
    "MinLength": ("too_short", "must be at least", "character"),
    "MaxLength": ("too_long", "must be at most", "character"),
    "MinItems": ("too_few", "must have at least", "item"),
    "MaxItems": ("too_many", "must have at most", "item"),
    "Minimum": ("too_small", "must be at least", ""),
    "Maximum": ("too_large", "must be at most", ""),
    "ExclusiveMinimum": ("too_small", "must be more than", ""),
    "ExclusiveMaximum": ("too_large", "must be less than", ""),
}


def _count(n: Any, unit: str) -> str:
    """`1 character`, `2 characters`; a bare number without a unit."""
    if not unit:
        return str(n)
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _escape(path: str) -> str:
    """A path as one JSON-pointer token inside a URI fragment (`{` and `}` percent-encoded)."""
    return quote(path.replace("~", "~0").replace("/", "~1"), safe="~-._")


@functools.cache
def load(path: Path = SPEC_PATH) -> Contract:
    """The compiled contract of the spec at `path` (parsed once per process)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return Contract(yaml.load(path.read_text(encoding="utf-8"), Loader=loader))


def operation_of(request: web.Request, contract: Contract) -> Operation | None:
    """The operation of the route that matched `request`."""
    route = request.match_info.route
    resource = route.resource
    if resource is None:
        return None
    return contract.operation(route.method, resource.canonical)


def check_body(contract: Contract, op: Operation | None, body: Any) -> None:
    """422 listing every bad field when `body` breaks the operation's body schema."""
    if op is None or op.body is None or op.body.is_valid(body):
        return
    raise ValidationFailed(errors=contract.errors(op.body, body))


def check_query(contract: Contract, op: Operation | None,
                query: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The query string as a dict, checked against the operation's parameters (422)."""
    raw: dict[str, str] = {}
    errors: list[FieldError] = []
    for name, value in query:
        if name in raw:
            errors.append(FieldError(name, "repeated", f"{name} is given more than once"))
        raw[name] = value
    if op is not None and op.query is not None:
        typed: dict[str, Any] = {k: _typed(v) if k in op.integer_params else v
                                 for k, v in raw.items()}
        if not op.query.is_valid(typed):
            errors.extend(contract.errors(op.query, typed))
    if errors:
        raise ValidationFailed(errors=errors)
    return raw


def _typed(value: str) -> int | str:
    digits = value[1:] if value[:1] == "-" else value
    return int(value) if digits.isascii() and digits.isdigit() and len(digits) < 19 else value
