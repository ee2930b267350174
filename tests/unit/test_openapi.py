"""openapi.yaml is valid OpenAPI 3.1 and describes exactly the routes the application serves."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from ywmessaging.app import create_app
from ywmessaging.config import REPO_ROOT, Settings

SPEC = REPO_ROOT / "openapi.yaml"
METHODS = {"get", "put", "post", "delete", "options", "patch", "trace"}  # HEAD comes with GET


def _load() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    doc: dict[str, Any] = yaml.safe_load(SPEC.read_text())
    return doc


def _served(app: web.Application) -> set[tuple[str, str]]:
    """(method, path template) of every route, sub-applications included."""
    out: set[tuple[str, str]] = set()
    for resource in app.router.resources():
        sub = getattr(resource, "_app", None)
        if isinstance(sub, web.Application):
            out |= _served(sub)
            continue
        for route in resource:
            if route.method.lower() in METHODS:
                out.add((route.method.lower(), resource.canonical))
    return out


def test_spec_is_valid_openapi_31() -> None:
    doc = _load()
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(doc)
    assert doc["openapi"].startswith("3.1")
    assert {"type", "title", "status", "code", "detail", "instance"} <= set(
        doc["components"]["schemas"]["Problem"]["properties"]
    )


def test_routes_and_spec_in_step() -> None:
    doc = _load()
    documented = {
        (method, path)
        for path, item in doc["paths"].items()
        for method in item
        if method in METHODS
    }
    served = _served(create_app(Settings()))
    assert served - documented == set(), "routes missing from openapi.yaml"
    assert documented - served == set(), "openapi.yaml documents routes nobody serves"


def test_cursors_the_spec_allows_are_the_ones_lists_give() -> None:
    """`cursor=0` was schema-valid and refused (issue #16, item 7): now only the shape every
    cursor has (base64url of `{"k":...`) passes, and every cursor a list gives does."""
    from ywmessaging.church.pagination import encode_cursor
    from ywmessaging.contract import Contract

    contract = Contract(_load())
    cursor_ops = [("GET", "/api/v1/members"), ("GET", "/api/v1/audit-log"),
                  ("GET", "/api/v1/broadcasts"), ("GET", "/api/v1/conversations")]
    given = encode_cursor("members:name:asc",
                          ["Ada", "Owner", "0b4f0e8c-4a8e-4d5e-9f43-1c2b3a4d5e6f"])
    for method, path in cursor_ops:
        op = contract.operation(method, path)
        assert op is not None and op.query is not None
        assert not op.query.is_valid({"cursor": "0"}), path
        assert op.query.is_valid({"cursor": given}), path


def test_every_shared_pattern_explains_itself() -> None:
    doc = _load()
    for entry in doc["x-patterns"]:
        assert entry["error"] and entry["pattern"].startswith("^"), entry
