"""Isolation matrix (issue #16, item 9), generated from the route table at test time: for every
`/api/v1` route that takes an id, church A's tokens with church B's ids, B's ids inside A's
request bodies, A's lists and B's cursors on them. Pass: never B's data, never a change to B,
the expected 404 or 403 every time, never a 5xx. See probe.py for the phases.
"""

from __future__ import annotations

import pytest

from tests.integration.auth_fixtures import build_app
from tests.isolation.routes import (
    KINDS,
    Route,
    Sampler,
    Unmapped,
    api_routes,
    field_kind,
    id_fields,
    json_body_schema,
    operation,
    placeholder_kinds,
    query_params,
)
from ywmessaging.config import Settings


def test_every_route_is_mapped_and_documented() -> None:
    """Without a database: each id placeholder, id body field and id query parameter of the
    assembled router maps to a kind, and every JSON body can be sampled from openapi.yaml."""
    routes = api_routes(build_app(Settings()))
    # every kind the matrix knows is named by some route (no stale vocabulary)
    assert {kind for r in routes for _, kind in r.slots} == KINDS
    for route in routes:
        operation(route)
        schema = json_body_schema(route)
        if schema is not None:
            for path in id_fields(schema):
                field_kind(route, path[-1])
                Sampler(route, lambda kind: "00000000-0000-4000-8000-000000000000").body(
                    schema, path)
        for name, param in query_params(route).items():
            if param.get("format") == "uuid":
                field_kind(route, name)


def test_an_unknown_id_route_is_refused_not_skipped() -> None:
    with pytest.raises(Unmapped, match=r"GET /api/v1/widgets/\{id\}"):
        placeholder_kinds("GET", "/api/v1/widgets/{id}")
    with pytest.raises(Unmapped, match="widget_ids"):
        field_kind(Route("POST", "/api/v1/x", "members.write", ()), "widget_ids")
