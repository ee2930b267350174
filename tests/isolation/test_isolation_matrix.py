"""Isolation matrix (issue #16, item 9), generated from the route table at test time: for every
`/api/v1` route that takes an id, church A's tokens with church B's ids, B's ids inside A's
request bodies, A's lists and B's cursors on them. Pass: never B's data, never a change to B,
the expected 404 or 403 every time, never a 5xx. See probe.py for the phases.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.auth_fixtures import Client, build_app, register
from tests.integration.sending_fixtures import *  # noqa: F403
from tests.integration.stripe_sim_fixtures import (
    billing,
    catalogue_prices,
    stripe_settings,
    stripe_sim,
)
from tests.isolation.probe import Probe, expected_status
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
from tests.isolation.seed import Seeder, differences, settled, snapshot
from ywmessaging.billing.simulator import RunningStripeSim
from ywmessaging.config import Settings
from ywmessaging.db.dsn import PgTarget

__all__ = ["billing", "catalogue_prices", "stripe_settings", "stripe_sim"]


@pytest.fixture
def send_overrides(stripe_sim: RunningStripeSim) -> dict[str, Any]:
    """The app pays through this test's Stripe simulator (the invoice list pages too)."""
    return {"stripe_api_base": stripe_sim.base_url, "stripe_timeout": 2.0,
            "stripe_webhook_secret": stripe_sim.webhook_secret}


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
    route = Route("GET", "/api/v1/admins/{id}", "admins.manage", (("id", "admin"),))
    assert (expected_status(route, "owner"), expected_status(route, "admin")) == (404, 403)


async def test_church_a_never_reaches_church_b(
        send_client: Client, sim: Any, outbox: Path, registry_conn: Any,
        pg_admin: PgTarget, stripe_sim: RunningStripeSim,
        catalogue_prices: dict[str, str]) -> None:
    started = time.monotonic()
    stripe_sim.set_webhook_url(str(send_client.make_url("/webhooks/stripe")))
    seeder = Seeder(send_client, sim, outbox, stripe_sim)
    a = await seeder.church("A")
    b = await seeder.church("B")
    await settled(registry_conn, [a.church.tenant_id, b.church.tenant_id])
    assert send_client.app is not None
    routes = api_routes(send_client.app)
    probe = Probe(send_client, a, b)
    cursors = await probe.b_cursors(routes)     # B's own reads, before B's snapshot
    seeded_at = time.monotonic()
    before = await snapshot(pg_admin, registry_conn, b.church.tenant_id)

    await probe.lists(routes)                   # before A has sent any of B's ids
    await probe.foreign_cursors(routes, cursors)
    await probe.foreign_paths(routes)
    await probe.foreign_bodies(routes)
    await probe.foreign_number(routes, await register(send_client))
    await probe.lists(routes)                   # and after A tried all of them
    await settled(registry_conn, [a.church.tenant_id, b.church.tenant_id])

    after = await snapshot(pg_admin, registry_conn, b.church.tenant_id)
    for change in differences(before, after):
        probe.fail(change)
    for message in await seeder.tokens_work(b):
        probe.fail(f"church B's session ended during the matrix: {message}")
    print(f"\nisolation matrix: {len(routes)} routes, "
          f"{len({r.name for r in routes if r.slots})} taking an id; cases {dict(probe.cases)}; "
          f"seed {seeded_at - started:.1f} s, matrix {time.monotonic() - seeded_at:.1f} s")
    assert not probe.failures, "\n".join(probe.failures)
