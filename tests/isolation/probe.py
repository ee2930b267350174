"""The isolation matrix's requests: church A aims at church B through every route the router
serves. Each phase records failures (naming the route) instead of stopping at the first, so
one run shows the whole matrix.

Phases:
- `foreign_paths`: every route whose path takes an id, with B's ids (each of B's objects of
  that kind, up to three), as A's owner (404) and as A's co-admin (403 where the role check
  comes first, else 404);
- `foreign_bodies`: every id field of every JSON request body, holding B's id, on A's own
  objects: 4xx, and when 422 the field named is the one holding B's id. A control request with
  A's own id in the same field must succeed first, so the body is known to be otherwise valid
  (its 422 `field` answers teach the sampler optional fields a valid body needs); and B's
  number in the purchase of a church that has none;
- `lists`: every GET route on A's own objects, plain and with B's ids in each id query
  parameter;
- `foreign_cursors`: B's `next_cursor` of every list that pages, given to A's same list:
  only A's data, or 400 `invalid_cursor`.
Every answer A gets is searched for B's data (ids, phones, emails, names): only B's ids that A
itself sent (in this request, or earlier ones its audit log records) may appear. The lists run
first, before A has sent any of B's ids, and again at the end. A 5xx anywhere is a failure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson

from tests.integration.auth_fixtures import Church, Client, bearer
from tests.isolation.routes import (
    Route,
    Sampler,
    field_kind,
    id_fields,
    json_body_schema,
    operation,
    query_params,
    resolve,
    set_at,
)
from tests.isolation.seed import Seeded
from ywmessaging.auth.permissions import ADMIN, PUBLIC, Permission, allowed

# Body fields where another church's id is documented to be ignored rather than refused:
# (method, path, field path) → why. The answer may then be 2xx; the leak check and B's
# snapshot still hold.
IGNORES_FOREIGN_IDS = {
    ("DELETE", "/api/v1/groups/{id}/members", ("member_ids",)):
        "ids not in the group are ignored (openapi.yaml)",
}
PER_KIND = 3          # B's objects of one kind tried on each id route
CONTROL_TRIES = 4     # control bodies tried while learning optional fields


def pick(church: Seeded, kind: str | None = None, value: str = "") -> Callable[[str], str]:
    """Ids for a route's placeholders: `value` for `kind`, the church's first object else."""
    return lambda k: value if k == kind else church.first(k)


def expected_status(route: Route, role: str) -> int:
    """What A gets for B's id: 403 when A's role lacks the route's permission (checked before
    the handler runs), else 404."""
    need = route.permission
    if need is None:
        return 403
    if need == PUBLIC or role != ADMIN:
        return 404
    return 404 if allowed(ADMIN, Permission(need)) else 403


class Probe:
    """Church A's requests at church B's data, with their failures and case counts."""

    def __init__(self, client: Client, a: Seeded, b: Seeded) -> None:
        self.client, self.a, self.b = client, a, b
        self.b_only = b.secrets() - a.secrets()
        self.b_ids = b.ids() & self.b_only
        # B's ids A itself has sent: A's own records of its requests (its audit log) may
        # repeat them later; B's names, phones and emails are never sent, so never excused
        self.echoes: set[str] = set()
        self.failures: list[str] = []
        self.cases: Counter[str] = Counter()

    def fail(self, message: str) -> None:
        """Record a failure."""
        self.failures.append(message)

    async def call(self, case: str, route: Route, url: str, token: str, *,
                   body: Any = None, params: dict[str, str] | None = None,
                   ) -> tuple[int, dict[str, Any]]:
        """One request; a 5xx or any of B's data in the answer is recorded as a failure."""
        self.cases[case] += 1
        # never follow a redirect: the Planning Center callback sends the browser to the
        # frontend, which is no part of this app
        resp = await self.client.request(route.method, url, headers=bearer(token),
                                         params=params, json=body, allow_redirects=False)
        text = (await resp.read()).decode("utf-8", "replace")   # a ZIP download is binary
        sent = url + orjson.dumps([body, params]).decode()
        leaked = sorted(s for s in self.b_only - self.echoes if s in text and s not in sent)
        self.echoes |= {s for s in self.b_ids if s in sent}
        where = f"[{case}] {route.name} ({url} {body or ''} {params or ''})"
        if leaked:
            at = text.find(leaked[0])
            self.fail(f"{where}: the answer holds church B's {leaked}: "
                      f"…{text[max(0, at - 300):at + 200]}…")
        if resp.status >= 500:
            self.fail(f"{where}: {resp.status} {text[:300]}")
        try:
            doc = orjson.loads(text) if text else {}
        except orjson.JSONDecodeError:
            doc = {}
        return resp.status, doc if isinstance(doc, dict) else {"items": doc}

    def _body(self, route: Route, ids: Callable[[str], str]) -> Any:
        schema = json_body_schema(route)
        if schema is None or route.method in ("GET", "HEAD"):
            return None
        return Sampler(route, ids).body(schema)

    async def foreign_paths(self, routes: list[Route]) -> None:
        """A's tokens with B's ids in the path: 404, or 403 where the role check comes first."""
        for route in (r for r in routes if r.slots):
            kind = route.slots[-1][1]
            if not self.b.objects.get(kind):
                self.fail(f"{route.name}: church B has no {kind} (teach seed.py to make one)")
                continue
            for b_id in self.b.objects[kind][:PER_KIND]:
                url = route.url(pick(self.b, kind, b_id))
                body = self._body(route, self.a.first)
                for role, token in (("owner", self.a.church.access),
                                    (ADMIN, self.a.coadmin_token)):
                    want = expected_status(route, role)
                    status, doc = await self.call("foreign path id", route, url, token,
                                                  body=body)
                    if status != want:
                        self.fail(f"{route.name} as A's {role} with B's {kind} {b_id}: "
                                  f"{status} {doc}, expected {want}")

    async def foreign_bodies(self, routes: list[Route]) -> None:
        """B's ids in every id field of A's request bodies, on A's own objects: 4xx."""
        for route in routes:
            schema = json_body_schema(route)
            if schema is None or route.method in ("GET", "HEAD"):
                continue
            for path in id_fields(schema):
                kind = field_kind(route, path[-1])
                sampler = Sampler(route, self.a.first)
                if not await self._control(route, schema, path, sampler):
                    continue
                body = set_at(sampler.body(schema, path), path, self.b.first(kind))
                status, doc = await self.call("B's id in A's body", route,
                                              route.url(self.a.first), self.a.church.access,
                                              body=body)
                self._judge_body(route, path, status, doc)

    async def _control(self, route: Route, schema: Any, path: tuple[str, ...],
                       sampler: Sampler) -> bool:
        """The same body with A's own id must succeed (learning optional fields it needs)."""
        props = resolve(schema).get("properties", {})
        for _ in range(CONTROL_TRIES):
            status, doc = await self.call("control: A's own id in A's body", route,
                                          route.url(self.a.first), self.a.church.access,
                                          body=sampler.body(schema, path))
            if 200 <= status < 300:
                return True
            needed = str(doc.get("field"))
            if status != 422 or needed not in props or needed in sampler.extra:
                break
            sampler.extra.add(needed)
        self.fail(f"{route.name}: the control body for {'.'.join(path)} (A's own id) answered "
                  f"{status} {doc}; the matrix cannot make a valid body for this route")
        return False

    def _judge_body(self, route: Route, path: tuple[str, ...], status: int,
                    doc: dict[str, Any]) -> None:
        where = f"{route.name} with B's id in {'.'.join(path)}"
        if (route.method, route.path, path) in IGNORES_FOREIGN_IDS and status < 300:
            return
        if not 400 <= status < 500:
            self.fail(f"{where}: {status} {doc}, expected a 4xx")
        elif status == 422 and doc.get("field") not in (path[0], path[-1]):
            self.fail(f"{where}: refused for another field {doc.get('field')!r}: {doc}")

    async def foreign_number(self, routes: list[Route], bare: Church) -> None:
        """A church without a number of its own asks to buy B's: 409 `number_taken` (a
        number's id is its E.164 form, not a uuid field, so the body phase cannot see it)."""
        route = next((r for r in routes if (r.method, r.path) == ("POST", "/api/v1/numbers")),
                     None)
        if route is None:
            self.fail("POST /api/v1/numbers is gone: update foreign_number")
            return
        status, doc = await self.call("B's number in a numberless church's purchase", route,
                                      route.path, bare.access,
                                      body={"phone_number": self.b.number})
        if (status, doc.get("code")) != (409, "number_taken"):
            self.fail(f"{route.name} with B's number {self.b.number}: {status} {doc}, "
                      f"expected 409 number_taken")

    async def lists(self, routes: list[Route]) -> None:
        """A's GET routes (lists, reads of A's own objects): never B's data, also when an id
        query parameter holds B's id."""
        # a WebSocket (documented `101`: /api/v1/events) answers a plain GET 400; its isolation
        # is tests/integration/test_events.py's (another church's events never arrive)
        for route in (r for r in routes if r.method == "GET" and "101" not in operation(r).get(
                "responses", {})):
            url = route.url(self.a.first)
            status, doc = await self.call("A's read", route, url, self.a.church.access)
            # a public GET may be a browser's redirect (the Planning Center OAuth callback
            # sends the browser on to the frontend, saying how it went)
            if status != 200 and not (status == 302 and route.permission == PUBLIC):
                self.fail(f"{route.name} as A's owner on A's own data: {status} {doc}")
            for name, schema in query_params(route).items():
                if schema.get("format") != "uuid":
                    continue
                b_id = self.b.first(field_kind(route, name))
                await self.call("A's read, B's id in the query", route, url,
                                self.a.church.access, params={name: b_id})

    async def b_cursors(self, routes: list[Route]) -> dict[str, str]:
        """B's second-page cursor of every list that pages (read with B's token)."""
        out: dict[str, str] = {}
        for route in (r for r in routes if r.method == "GET" and "cursor" in query_params(r)):
            params = {"limit": "1"} if "limit" in query_params(route) else {}
            kind = route.slots[-1][1] if route.slots else None
            for b_id in (self.b.objects[kind] if kind else [""]):
                url = route.url(pick(self.b, kind, b_id))
                resp = await self.client.get(url, params=params, headers=self.b.church.auth)
                doc = await resp.json(content_type=None)
                if resp.status == 200 and doc.get("next_cursor"):
                    out[route.path] = doc["next_cursor"]
                    break
            else:
                self.fail(f"{route.name}: church B's seed gives this list no second page, so "
                          f"its cursor cannot be tried on A (teach seed.py)")
        return out

    async def foreign_cursors(self, routes: list[Route], cursors: dict[str, str]) -> None:
        """B's cursors on A's same lists: 200 with A's data only, or 400 `invalid_cursor`."""
        for route in (r for r in routes if r.method == "GET" and r.path in cursors):
            status, doc = await self.call("B's cursor on A's list", route,
                                          route.url(self.a.first), self.a.church.access,
                                          params={"cursor": cursors[route.path]})
            if status != 200 and (status, doc.get("code")) != (400, "invalid_cursor"):
                self.fail(f"{route.name} with B's cursor: {status} {doc}")
