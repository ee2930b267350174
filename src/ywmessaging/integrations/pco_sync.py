"""One sync run of one church: removals the webhooks reported, then People pages (all of
them in a full run, ordered by id; those updated since the cursor in an incremental one),
each applied in one transaction with the run's progress, while the next page is fetched; a
full run then checks, one by one, the linked members it did not see (marked only when
Planning Center answers 404), and lists become groups when the church chose so."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import orjson
import structlog

from ..billing.state import Entitlement
from ..sqlq import registry as rq
from ..sqlq import tenant as tq
from .pco_client import PcoAuthError, PcoError, PcoSession, Tokens
from .pco_connection import Pco, save_tokens, tokens_of
from .pco_people import Skip, Tally, apply_page, parse_page, record

log = structlog.get_logger("ywm.pco")

STALE_S = 120.0              # a running run without progress this long is taken over
SLACK = datetime.timedelta(minutes=5)   # clocks differ; re-reading a few people is harmless
PEOPLE = "/people/v2/people"
INCLUDE = "phone_numbers,emails"
Lease = Callable[[], AbstractAsyncContextManager[Any]]


def _iso(at: datetime.datetime) -> str:
    return at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def run_sync(lease: Lease, pco: Pco, ent: Entitlement, tenant_id: uuid.UUID,
                   run_id: uuid.UUID) -> dict[str, Any] | None:
    """Claim run `run_id` and do it; its finished row (None: another process has it)."""
    q = tq(pco.settings.sql_dir)
    async with lease() as conn:
        claim = await q.pco_claim_run(conn, run_id, STALE_S)
        if claim is None:
            return None
        row = await q.pco_get_connection(conn)
        region = (await q.get_settings(conn))["default_region"]
    if row is None or row["status"] != "connected":
        return await _finish(lease, pco, run_id, "failed", "pco_not_connected")
    started = datetime.datetime.now(datetime.UTC)
    full = claim["kind"] == "full" or row["cursor_updated_at"] is None

    async def save(tokens: Tokens) -> None:
        async with lease() as c:
            await save_tokens(c, pco, tokens)

    session = pco.http.session(tokens_of(pco.box, row), save, row["organization_id"])
    sync = _Sync(lease, pco, ent, tenant_id, run_id, session, region)
    try:
        await sync.removals()
        params = {"include": INCLUDE, "per_page": "100", "order": "id" if full else "updated_at"}
        if not full:
            params["where[updated_at][gte]"] = _iso(row["cursor_updated_at"] - SLACK)
        await sync.pages(PEOPLE, params, sync.apply)
        if full:
            await sync.unseen()
        if row["sync_lists"]:
            await sync.lists()
        async with lease() as conn:
            await q.pco_set_cursor(conn, started)
            await q.pco_set_error(conn, None)
    except PcoAuthError as exc:
        async with lease() as conn:
            await q.pco_set_error(conn, f"Planning Center refused the grant: {exc}; connect again")
        return await _finish(lease, pco, run_id, "failed", "pco_authorization_lost")
    except PcoError as exc:
        log.warning("pco_sync_unavailable", run_id=str(run_id), error=str(exc))
        return await _finish(lease, pco, run_id, "failed", "pco_unavailable")
    log.info("pco_sync_done", run_id=str(run_id), full=full, fetched=sync.tally.fetched,
             created=sync.tally.created, updated=sync.tally.updated,
             skipped=sync.tally.skipped, removed=sync.tally.removed, requests=session.requests)
    return await _finish(lease, pco, run_id, "done", None)


async def _finish(lease: Lease, pco: Pco, run_id: uuid.UUID, status: str,
                  code: str | None) -> dict[str, Any]:
    errors = [{"person_id": None, "code": code}] if code else []
    async with lease() as conn:
        done = await tq(pco.settings.sql_dir).pco_finish_run(conn, run_id, status,
                                                             orjson.dumps(errors).decode())
    return dict(done)


class _Sync:
    """The state of one run."""

    def __init__(self, lease: Lease, pco: Pco, ent: Entitlement, tenant_id: uuid.UUID,
                 run_id: uuid.UUID, session: PcoSession, region: str) -> None:
        self.lease, self.pco, self.ent = lease, pco, ent
        self.tenant_id, self.run_id = tenant_id, run_id
        self.session, self.region = session, region
        self.tally = Tally()
        self.q = tq(pco.settings.sql_dir)

    async def apply(self, doc: dict[str, Any]) -> None:
        """One page of people: parsed, applied and counted in one transaction."""
        rows, skips, ids = parse_page(doc, self.region)
        self.tally.seen.update(ids)
        async with self.lease() as conn, conn.transaction():
            created, updated, skips = await apply_page(conn, self.pco.settings, self.ent, rows,
                                                       skips, run_id=self.run_id)
            await record(conn, self.pco.settings, self.run_id, self.tally, fetched=len(ids),
                         created=created, updated=updated, skips=skips, removed=0,
                         requests=self.session.requests)

    async def pages(self, url: str, params: dict[str, str] | None,
                    sink: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        """Follow `links.next` from `url`, handing each page to `sink` while the next one is
        fetched (at most two pages wait)."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=2)

        async def produce() -> None:
            nxt: str | None = url
            query = params
            while nxt:
                doc = await self.session.get(nxt, query)
                await queue.put(doc)
                nxt, query = doc.get("links", {}).get("next"), None
            await queue.put(None)

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(produce(), name="pco_pages")
                while (doc := await queue.get()) is not None:
                    await sink(doc)
        except BaseExceptionGroup as eg:
            raise eg.exceptions[0] from None

    async def removals(self) -> None:
        """Mark the members of people whose `person.destroyed` webhook arrived."""
        registry = rq(self.pco.settings.sql_dir)
        ids = list(await registry.pco_removed_ids(self.pco.registry, self.tenant_id) or [])
        if ids:
            await self._mark(ids)
            await registry.pco_forget_removed(self.pco.registry, self.tenant_id, ids)

    async def _mark(self, ids: list[str]) -> None:
        async with self.lease() as conn, conn.transaction():
            marked = await self.q.pco_mark_removed(conn, ids)
            await record(conn, self.pco.settings, self.run_id, self.tally, fetched=0,
                         created=0, updated=0, skips=[], removed=len(marked),
                         requests=self.session.requests)

    async def unseen(self) -> None:
        """Linked members a full run did not see: gone (404) are marked, present are
        applied (a removal elsewhere shifted them out of a page)."""
        async with self.lease() as conn:
            rows = await self.q.pco_unseen(conn, sorted(self.tally.seen))
        gone: list[str] = []
        for r in rows:
            pid = r["pco_person_id"]
            doc = await self.session.request("GET", f"{PEOPLE}/{pid}",
                                             params={"include": INCLUDE}, missing_ok=True)
            if doc is None:
                gone.append(pid)
            else:
                await self.apply({"data": [doc["data"]], "included": doc.get("included", [])})
        if gone:
            await self._mark(gone)

    async def lists(self) -> None:
        """Each Planning Center list becomes a group (made or linked by name) holding the
        synced members among its people."""
        found: list[dict[str, Any]] = []

        async def keep(doc: dict[str, Any]) -> None:
            found.extend(doc.get("data", []))

        await self.pages("/people/v2/lists", {"per_page": "100"}, keep)
        for lst in found:
            people: list[str] = []

            async def ids(doc: dict[str, Any], into: list[str] = people) -> None:
                into.extend(str(p["id"]) for p in doc.get("data", []))

            await self.pages(f"/people/v2/lists/{lst['id']}/people", {"per_page": "100"}, ids)
            name = str(lst.get("attributes", {}).get("name") or "").strip() or f"List {lst['id']}"
            async with self.lease() as conn, conn.transaction():
                gid = (await self.q.pco_list_group(conn, str(lst["id"]))
                       or await self.q.pco_make_list_group(conn, str(lst["id"]), name))
                if gid is None:
                    await record(conn, self.pco.settings, self.run_id, self.tally, fetched=0,
                                 created=0, updated=0, removed=0,
                                 skips=[Skip(f"list:{lst['id']}", "group_name_taken")],
                                 requests=self.session.requests)
                    continue
                await self.q.pco_set_list_members(conn, gid, people)
