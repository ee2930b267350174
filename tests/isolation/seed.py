"""A church with one object (or a few) of every kind an `/api/v1` path can name, made through
the real HTTP API and the carrier simulator; and snapshots of everything a church owns (its
database, its registry rows) to prove afterwards that nothing of it changed.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from tests.integration.auth_fixtures import (
    Church,
    Client,
    bearer,
    read_outbox,
    register,
    token_in,
)
from tests.integration.carrier_sim_fixtures import sim_inbound, tenant_db, wait_until
from tests.isolation.routes import fresh_phone
from ywmessaging.db.dsn import PgTarget


@dataclass
class Seeded:
    """A church and what it holds: ids per kind (the richest first), and every string of its
    data that another church must never see."""

    church: Church
    marker: str
    number: str
    coadmin_token: str
    objects: dict[str, list[str]] = field(default_factory=dict)
    phones: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    billing: list[str] = field(default_factory=list)   # its Stripe customer and invoice ids

    def first(self, kind: str) -> str:
        """The church's first object of a kind."""
        if not self.objects.get(kind):
            raise AssertionError(f"church {self.marker} has no {kind}: teach seed.py to make "
                                 f"one, so the isolation matrix can aim at it")
        return self.objects[kind][0]

    def ids(self) -> set[str]:
        """The ids of the church's objects (its number is the id of that kind)."""
        return {i for ids in self.objects.values() for i in ids}

    def secrets(self) -> set[str]:
        """Strings only this church's data holds (ids, phones, emails, its marker)."""
        return self.ids() | {self.marker, self.church.tenant_id, *self.phones, *self.emails,
                             *self.billing}


async def _json(resp: Any, status: int) -> Any:
    doc = await resp.json(content_type=None)
    assert resp.status == status, (resp.method, str(resp.url), resp.status, doc)
    return doc


class Seeder:
    """Makes a church's objects through the API of one running app."""

    def __init__(self, client: Client, sim: Any, outbox: Path, stripe_sim: Any) -> None:
        self.client = client
        self.sim = sim
        self.outbox = outbox
        self.stripe_sim = stripe_sim

    async def post(self, church: Church, path: str, body: Any, status: int = 201) -> Any:
        """POST as the church's owner, asserting the status."""
        return await _json(await self.client.post(f"/api/v1{path}", json=body,
                                                  headers=church.auth), status)

    async def get(self, church: Church, path: str) -> Any:
        """GET as the church's owner (200)."""
        return await _json(await self.client.get(f"/api/v1{path}", headers=church.auth), 200)

    async def church(self, tag: str) -> Seeded:
        """A church named by `tag` (its marker is in every name it gives)."""
        marker = f"zz{tag.lower()}{secrets.token_hex(4)}"
        church = await register(self.client, name=f"{marker} Church",
                                email_addr=f"{marker}-owner@example.org")
        number = await self.buy_number(church)
        seeded = Seeded(church, marker, number, "", phones=[fresh_phone() for _ in range(3)],
                        emails=[church.email])
        seeded.objects["number"] = [number]
        await self.directory(seeded)
        await self.messaging(seeded)
        await self.admins(seeded)
        await self.billing(seeded)
        await self.export(seeded)
        return seeded

    async def buy_number(self, church: Church) -> str:
        """Buy a number from the simulator through the API; wait until its order completed."""
        for _ in range(10):
            area = f"{secrets.choice('23456789')}{secrets.randbelow(100):02d}"
            found = await self.get(church, f"/numbers/available?area_code={area}&limit=3")
            for option in found["numbers"]:
                resp = await self.client.post("/api/v1/numbers", headers=church.auth,
                                              json={"phone_number": option["phone_number"]})
                if resp.status == 201:
                    number: str = (await resp.json())["phone_number"]
                    await self.until_active(church, number)
                    return number
                await _json(resp, 409)   # another church of this session holds it
        raise AssertionError("no number could be bought")

    async def until_active(self, church: Church, number: str) -> None:
        """Wait until the number's order completed (the simulator's webhook came back)."""

        async def active() -> bool:
            listed = (await self.get(church, "/numbers"))["numbers"]
            return [(n["id"], n["status"]) for n in listed] == [(number, "active")]

        await wait_until(active)

    async def directory(self, s: Seeded) -> None:
        """A branch, a group, two members in both, a third by CSV import, a template."""
        c, m = s.church, s.marker
        branch = (await self.post(c, "/branches", {"name": f"{m} Branch"}))["id"]
        group = (await self.post(c, "/groups", {"name": f"{m} Group"}))["id"]
        members = [(await self.post(c, "/members", {
            "first_name": m, "last_name": f"No{i}", "phone": s.phones[i],
            "email": f"{m}-member{i}@example.org", "branch_id": branch, "group_ids": [group]}
        ))["id"] for i in range(2)]
        form = aiohttp.FormData()
        form.add_field("file", f"First Name,Last Name,Phone Number\r\n{m},No2,{s.phones[2]}\r\n",
                       filename="members.csv", content_type="text/csv")
        imported = await _json(await self.client.post("/api/v1/members/import", data=form,
                                                      headers=c.auth), 200)
        assert imported["created"] == 1, imported
        listed = await self.get(c, "/members")
        members += [i["id"] for i in listed["items"] if i["phone"] == s.phones[2]]
        template = (await self.post(c, "/templates", {"name": f"{m} Template",
                                                      "body": f"{m} hello"}))["id"]
        for score in (9, 4):   # two NPS answers: the list has a second page
            await self.post(c, "/nps", {"score": score, "comment": f"{m} says {score}"})
        s.objects.update(branch=[branch], group=[group], member=members,
                         import_=[imported["id"]], template=[template])
        s.objects["import"] = s.objects.pop("import_")
        s.emails += [f"{m}-member{i}@example.org" for i in range(2)]

    async def messaging(self, s: Seeded) -> None:
        """Broadcasts (queued now with recipients, scheduled), a recurring rule, two
        conversations from inbound texts (one with a reply), consent events."""
        c, m = s.church, s.marker
        now = await self.post(c, "/broadcasts", {"target": {"all": True},
                                                 "template_id": s.first("template")})
        later = await self.post(c, "/broadcasts", {
            "body": f"{m} later", "target": {"group_ids": [s.first("group")]},
            "send_at": (datetime.now(UTC) + timedelta(days=2)).isoformat()})
        assert now["recipient_count"] == 3 and later["status"] == "scheduled", (now, later)
        rule = await self.post(c, "/recurring", {
            "name": f"{m} Weekly", "body": f"{m} weekly", "frequency": "weekly",
            "target": {"branch_ids": [s.first("branch")]}, "local_time": "09:30",
            "days_of_week": ["sunday"]})
        for phone, text in ((s.phones[0], "first"), (s.phones[0], "second"),
                            (s.phones[1], "hello")):
            await sim_inbound(self.client, self.sim, phone, s.number, f"{m} {text}")

        async def both() -> Any:
            items = (await self.get(c, "/conversations"))["items"]
            unread = sorted(i["unread_count"] for i in items)
            return items if unread == [1, 2] else None

        conversations = [i["id"] for i in sorted(await wait_until(both),
                                                 key=lambda i: -i["unread_count"])]
        await self.post(c, f"/conversations/{conversations[0]}/messages", {"body": f"{m} reply"})
        for action in ("opt-out", "opt-in"):
            await self.post(c, f"/members/{s.objects['member'][1]}/{action}",
                            {"reason": f"{m} asked"}, status=200)
        s.objects.update(broadcast=[now["id"], later["id"]], recurring=[rule["id"]],
                         conversation=conversations)

    async def admins(self, s: Seeded) -> None:
        """A co-admin (role admin) by invitation; its token is the church's admin-role token."""
        addr = f"{s.marker}-coadmin@example.org"
        invited = await self.post(s.church, "/admins", {
            "email": addr, "first_name": s.marker, "last_name": "Helper", "role": "admin"})
        (mail,) = read_outbox(self.outbox, "invitation", to=addr)
        accepted = await _json(await self.client.post("/api/v1/auth/invitations/accept", json={
            "token": token_in(mail), "password": "co-admin passphrase 42"}), 200)
        s.coadmin_token = accepted["access_token"]
        s.objects["admin"] = [invited["id"], s.church.admin_id]
        s.emails.append(addr)

    async def billing(self, s: Seeded) -> None:
        """A paid subscription (Checkout completed on the Stripe simulator, applied through its
        webhooks) that renewed once: two invoices, so the invoice list has a second page."""
        c, sim = s.church, self.stripe_sim
        session = await self.post(c, "/billing/checkout", {"plan": "growth", "cycle": "monthly"},
                                  status=200)
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{sim.base_url}/sim/checkout/{session['session_id']}"
                                 "/complete") as resp:
                sub = (await _json(resp, 200))["subscription"]["id"]
            assert await sim.sender.idle(5.0)

            async def applied() -> bool:
                return bool((await self.get(c, "/billing/plan"))["plan"]["code"] == "growth")

            await wait_until(applied)
            async with http.post(f"{sim.base_url}/sim/subscriptions/{sub}/advance") as resp:
                await _json(resp, 200)
            assert await sim.sender.idle(5.0)
        invoices = (await self.get(c, "/billing/invoices"))["items"]
        assert len(invoices) >= 2, invoices
        s.billing += [sub, *(i["id"] for i in invoices)]

    async def export(self, s: Seeded) -> None:
        """A finished full export (its ZIP holds all of the above)."""
        job = await self.post(s.church, "/account/export", None, status=202)

        async def done() -> bool:
            items = (await self.get(s.church, "/account/exports"))["items"]
            return [(i["id"], i["status"]) for i in items] == [(job["id"], "done")]

        await wait_until(done)
        s.objects["export"] = [job["id"]]

    async def tokens_work(self, s: Seeded) -> list[str]:
        """Which of the church's tokens the API no longer accepts (none, normally)."""
        dead = []
        for who, token in (("owner", s.church.access), ("co-admin", s.coadmin_token)):
            resp = await self.client.get("/api/v1/auth/me", headers=bearer(token))
            if resp.status != 200:
                dead.append(f"{s.marker} {who}: /auth/me answered {resp.status}")
        return dead


async def snapshot(pg_admin: PgTarget, registry_conn: Any, tenant_id: str) -> dict[str, str]:
    """Every row of the church's database, table by table, and its rows in every registry
    table that has a `tenant_id` (and its `tenants` row), as sorted text."""
    out: dict[str, str] = {}
    tid = uuid.UUID(tenant_id)
    tables = await registry_conn.fetch(
        "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' "
        "AND column_name = 'tenant_id' ORDER BY 1")
    for (table,) in tables:
        out[f"registry.{table}"] = await registry_conn.fetchval(
            f'SELECT coalesce(string_agg(t::text, E\'\\n\' ORDER BY t::text), \'\') '
            f'FROM "{table}" t WHERE tenant_id = $1', tid)
    out["registry.tenants"] = await registry_conn.fetchval(
        "SELECT t::text FROM tenants t WHERE id = $1", tid)
    async with tenant_db(pg_admin, registry_conn, tenant_id) as db:
        for (table,) in await db.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"):
            out[table] = await db.fetchval(
                f'SELECT coalesce(string_agg(t::text, E\'\\n\' ORDER BY t::text), \'\') '
                f'FROM "{table}" t')
    return out


def differences(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Per changed table, the rows that went and the rows that came (a few of each)."""
    out = []
    for table in sorted(before.keys() | after.keys()):
        old, new = before.get(table) or "", after.get(table) or ""
        if old != new:
            gone = sorted(set(old.splitlines()) - set(new.splitlines()))[:3]
            came = sorted(set(new.splitlines()) - set(old.splitlines()))[:3]
            out.append(f"church B's {table} changed: rows gone {gone}, rows new {came}")
    return out


async def settled(registry_conn: Any, tenant_ids: list[str]) -> None:
    """Wait until no webhook of these churches is still waiting to be processed."""
    ids = [uuid.UUID(t) for t in tenant_ids]

    async def idle() -> bool:
        return not await registry_conn.fetchval(
            "SELECT count(*) FROM webhook_inbox WHERE tenant_id = ANY($1::uuid[]) "
            "AND state IN ('received', 'processing')", ids)

    await wait_until(idle)
