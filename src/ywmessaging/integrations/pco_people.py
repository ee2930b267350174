"""Planning Center people as members: the mobile number (the phone whose location is
Mobile) in E.164 in the church's region, the primary email; then one page applied in one
transaction.

Rules: a member is found by its Planning Center id, else by that mobile number when it is not
linked to another person and its names agree (or it has none, like an unknown sender); a
number held by another member is reported (`phone_in_use`), never merged. A sync never
changes opt_in: an opted-out member stays out. New members need room in the plan
(`plan_limit_reached` per person otherwise, as the CSV import reports rows).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from ..billing import limits
from ..billing.state import Entitlement
from ..church.phones import InvalidPhone, normalize_phone
from ..config import Settings
from ..sqlq import tenant as tq

MAX_ERRORS = 1000


@dataclass(frozen=True)
class PersonRow:
    """A person ready to become (or update) a member."""

    person_id: str
    phone: str
    first_name: str
    last_name: str
    email: str | None


@dataclass(frozen=True)
class Skip:
    """A person left out, and why."""

    person_id: str
    code: str

    def as_json(self) -> dict[str, str]:
        """As the run's report lists it."""
        return {"person_id": self.person_id, "code": self.code}


@dataclass
class Tally:
    """What a run has done so far."""

    fetched: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    removed: int = 0
    errors_kept: int = 0
    seen: set[str] = field(default_factory=set)


def _pick(items: list[dict[str, Any]], want: str | None) -> dict[str, Any] | None:
    """The primary item of location `want` (any location when None), else the first."""
    pool = [i for i in items if want is None
            or str(i.get("location") or "").strip().lower() == want]
    pool.sort(key=lambda i: not i.get("primary"))
    return pool[0] if pool else None


def parse_page(doc: dict[str, Any], region: str) -> tuple[list[PersonRow], list[Skip], list[str]]:
    """A People page's rows, its skips, and every person id it held."""
    inc = {(i["type"], i["id"]): i.get("attributes", {}) for i in doc.get("included", [])}
    rows: list[PersonRow] = []
    skips: list[Skip] = []
    ids: list[str] = []
    for res in doc.get("data", []):
        pid = str(res["id"])
        ids.append(pid)
        rel = res.get("relationships", {})
        phones = [inc[("PhoneNumber", r["id"])] for r in
                  (rel.get("phone_numbers", {}).get("data") or [])
                  if ("PhoneNumber", r["id"]) in inc]
        emails = [inc[("Email", r["id"])] for r in (rel.get("emails", {}).get("data") or [])
                  if ("Email", r["id"]) in inc]
        mobile = _pick(phones, "mobile")
        if mobile is None:
            skips.append(Skip(pid, "no_mobile_phone"))
            continue
        try:
            phone = normalize_phone(str(mobile.get("number") or ""), region)
        except InvalidPhone:
            skips.append(Skip(pid, "invalid_phone"))
            continue
        attrs = res.get("attributes", {})
        email = _pick(emails, None)
        address = str(email.get("address") or "").strip() if email else ""
        ok = 3 <= len(address) <= 254 and address.find("@") > 0
        rows.append(PersonRow(pid, phone, str(attrs.get("first_name") or "").strip()[:100],
                              str(attrs.get("last_name") or "").strip()[:100],
                              address if ok else None))
    return rows, skips, ids


@dataclass
class Plan:
    """What one page does: rows to create, (member id, row) to update, people skipped."""

    create: list[PersonRow] = field(default_factory=list)
    update: list[tuple[uuid.UUID, PersonRow]] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)


def plan_page(rows: list[PersonRow], found: list[Any]) -> Plan:
    """Match each row to a member (by person id, else by number) or to a new one."""
    by_pid = {r["pco_person_id"]: r for r in found if r["pco_person_id"] is not None}
    by_phone = {r["phone"]: r for r in found}
    plan = Plan()
    taken: set[str] = set()
    for row in rows:
        mine = by_pid.get(row.person_id)
        holder = by_phone.get(row.phone)
        if row.phone in taken or (holder is not None and mine is not None
                                  and holder["id"] != mine["id"]):
            plan.skips.append(Skip(row.person_id, "phone_in_use"))
        elif mine is not None:
            plan.update.append((mine["id"], row))
        elif holder is not None:
            same = (not holder["first_key"] and not holder["last_key"]) or (
                holder["first_key"] == row.first_name.lower()
                and holder["last_key"] == row.last_name.lower())
            if holder["pco_person_id"] is None and same:
                plan.update.append((holder["id"], row))
            else:
                plan.skips.append(Skip(row.person_id, "phone_in_use"))
        else:
            plan.create.append(row)
        taken.add(row.phone)
    return plan


async def apply_page(conn: Any, settings: Settings, ent: Entitlement, rows: list[PersonRow],
                     skips: list[Skip], *, run_id: uuid.UUID) -> tuple[int, int, list[Skip]]:
    """Create and update one page's members (in the caller's transaction); (created,
    updated, every skip)."""
    q = tq(settings.sql_dir)
    found = await q.pco_match_members(conn, [r.person_id for r in rows], [r.phone for r in rows])
    plan = plan_page(rows, found)
    skips = [*skips, *plan.skips]
    room = await limits.room(conn, settings, ent, "members")
    if room is not None and len(plan.create) > room:
        skips.extend(Skip(r.person_id, "plan_limit_reached") for r in plan.create[room:])
        plan.create = plan.create[:room]
    try:
        async with conn.transaction():
            created, updated = await _write(conn, settings, plan, run_id)
    except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError):
        created = updated = 0   # a row the database refuses (a race): find it, keep the others
        for one in [Plan(create=[r]) for r in plan.create] + [Plan(update=[u])
                                                              for u in plan.update]:
            try:
                async with conn.transaction():
                    c, u = await _write(conn, settings, one, run_id)
                created, updated = created + c, updated + u
            except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError):
                pid = (one.create or [u[1] for u in one.update])[0].person_id
                skips.append(Skip(pid, "rejected"))
    return created, updated, skips


async def _write(conn: Any, settings: Settings, plan: Plan, run_id: uuid.UUID) -> tuple[int, int]:
    q = tq(settings.sql_dir)
    if plan.create:
        c = plan.create
        await q.pco_insert_members(conn, [r.phone for r in c], [r.first_name for r in c],
                                   [r.last_name for r in c], [r.email for r in c],
                                   [r.person_id for r in c], str(run_id))
    if plan.update:
        u = [r for _, r in plan.update]
        await q.pco_update_members(conn, [m for m, _ in plan.update], [r.phone for r in u],
                                   [r.first_name for r in u], [r.last_name for r in u],
                                   [r.email for r in u], [r.person_id for r in u])
    return len(plan.create), len(plan.update)


async def record(conn: Any, settings: Settings, run_id: uuid.UUID, tally: Tally, *,
                 fetched: int, created: int, updated: int, skips: list[Skip], removed: int,
                 requests: int) -> None:
    """Count one page into the run's row and the tally."""
    kept = [s.as_json() for s in skips[:max(0, MAX_ERRORS - tally.errors_kept)]]
    await tq(settings.sql_dir).pco_run_progress(
        conn, run_id, fetched, created, updated, len(skips), removed,
        orjson.dumps(kept).decode(), requests)
    tally.fetched += fetched
    tally.created += created
    tally.updated += updated
    tally.skipped += len(skips)
    tally.removed += removed
    tally.errors_kept += len(kept)
