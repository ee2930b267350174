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
