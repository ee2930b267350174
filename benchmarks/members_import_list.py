"""Members benchmark: a CSV import of 50,000 members through the API against a plain COPY of
the same rows, and member list pages with search at 100,000 members against the bare query.

The app runs with all its plug-ins on a loopback port (client in the same process). Import:
`POST /api/v1/members/import` (a background job past 5,000 rows), timed from the upload to
the job's `done` (polled every 200 ms), against `COPY` of the same, already normalized rows
into the members table of a second church (same schema and indexes). List: the church is
topped up to 100,000 members by COPY, then `GET /api/v1/members?search=...&limit=50` (first
page and the two after it, by cursor) for a mix of name and phone fragments, interleaved with
the same statement (`filter_members_name_asc`) run bare through asyncpg on a warm connection.

    .venv/bin/python -m benchmarks.members_import_list [--quick]
"""

from __future__ import annotations

import asyncio
import io
import random
import secrets
import time
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from ywmessaging import app as app_module
from ywmessaging.church.members import escape_like
from ywmessaging.church.phones import digits_fragment
from ywmessaging.db import pg
from ywmessaging.sqlq import tenant as tq
from ywmessaging.tenants.naming import tenant_db_name

from .common import deployment, percentile, progress, quick_main, target_line

PASSWORD = "benchmark passphrase 42"
LIST_MEMBERS = 100_000
PAGE = 50
FIRST = ["Mary", "John", "Anna", "James", "Grace", "David", "Ruth", "Peter", "Sarah", "Paul",
         "Esther", "Mark", "Lydia", "Daniel", "Hannah", "Samuel", "Naomi", "Joseph", "Miriam",
         "Luke", "Abigail", "Aaron", "Deborah", "Caleb", "Priscilla", "Silas", "Martha",
         "Simon", "Phoebe", "Thomas"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
        "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson",
        "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White",
        "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Okafor", "Nguyen",
        "Kowalski", "Haddad", "Tanaka", "Schmidt", "Rossi", "Dubois", "Ivanova", "Mensah"]
AREAS = ["201", "202", "212", "213", "305", "312", "404", "415", "512", "617", "702", "713",
         "718", "773", "818", "917", "206", "303", "503", "614"]
SEARCHES = ["smith", "john", "mar", "ann k", "lee", "okafor", "nguyen t", "4155", "202 3",
            "+1718", "zzqx"]
GOALS = {"import_s_per_50k": 20.0, "list_search_p50_ms": 20.0}


def people(n: int, seed: int, taken: set[str]) -> Iterator[tuple[str, str, str, str]]:
    """(first, last, E.164 phone, email) for `n` people with phones not in `taken`."""
    rng = random.Random(seed)
    made = 0
    while made < n:
        phone = f"+1{rng.choice(AREAS)}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"
        if phone in taken:
            continue
        taken.add(phone)
        first, last = rng.choice(FIRST), rng.choice(LAST)
        made += 1
        yield first, last, phone, f"{first}.{last}{made}@example.org".lower()


def as_csv(rows: list[tuple[str, str, str, str]]) -> bytes:
    """The rows as an import file, phones in the national format people type."""
    out = io.StringIO()
    out.write("First Name,Last Name,Mobile,Email,Groups\n")
    for i, (first, last, phone, email) in enumerate(rows):
        national = f"({phone[2:5]}) {phone[5:8]}-{phone[8:]}"
        group = ("Choir", "Youth", "Men", "Women", "")[i % 5]
        out.write(f"{first},{last},{national},{email},{group}\n")
    return out.getvalue().encode()


async def copy_members(conn: Any, rows: list[tuple[str, str, str, str]]) -> float:
    """COPY rows into members; seconds taken."""
    t0 = time.perf_counter()
    await conn.copy_records_to_table(
        "members", records=[(r[0], r[1], r[2], r[3]) for r in rows],
        columns=["first_name", "last_name", "phone", "email"])
    return time.perf_counter() - t0


async def _register(http: aiohttp.ClientSession, base: str) -> tuple[str, uuid.UUID]:
    async with http.post(f"{base}/auth/register", json={
        "church_name": "Benchmark Church", "email": f"bench-{secrets.token_hex(4)}@example.org",
        "password": PASSWORD, "first_name": "B", "last_name": "M"}) as resp:
        body = await resp.json()
        assert resp.status == 201, body
        return body["access_token"], uuid.UUID(body["church_id"])


async def _import(http: aiohttp.ClientSession, base: str, token: str, data: bytes) -> float:
    """Upload and wait for the job; seconds from the upload to `done`."""
    headers = {"Authorization": f"Bearer {token}"}
    form = aiohttp.FormData()
    form.add_field("file", data, filename="members.csv", content_type="text/csv")
    t0 = time.perf_counter()
    async with http.post(f"{base}/members/import", data=form, headers=headers) as resp:
        job = await resp.json()
        assert resp.status in (200, 202), job
    while job["status"] not in ("done", "failed"):
        await asyncio.sleep(0.2)
        async with http.get(f"{base}/imports/{job['id']}", headers=headers) as resp:
            job = await resp.json()
    elapsed = time.perf_counter() - t0
    assert job["status"] == "done" and job["skipped"] == 0, {**job, "errors": job["errors"][:5]}
    return elapsed


async def _list_pages(http: aiohttp.ClientSession, base: str, token: str,
                      search: str) -> list[float]:
    """The first three pages of a search over HTTP; ms per page."""
    headers = {"Authorization": f"Bearer {token}"}
    out, cursor = [], None
    for _ in range(3):
        params = {"search": search, "limit": str(PAGE), **({"cursor": cursor} if cursor else {})}
        t0 = time.perf_counter()
        async with http.get(f"{base}/members", params=params, headers=headers) as resp:
            body = await resp.json()
            assert resp.status == 200, body
        out.append((time.perf_counter() - t0) * 1000)
        cursor = body["next_cursor"]
        if cursor is None:
            break
    return out


async def _bare_pages(conn: Any, sql: str, search: str) -> list[float]:
    """The same three pages through asyncpg (the named statement, no HTTP, no app)."""
    out: list[float] = []
    after: tuple[Any, ...] = (None, None, None)
    for _ in range(3):
        t0 = time.perf_counter()
        row = await conn.fetchrow(sql, escape_like(search), digits_fragment(search), None, None,
                                  None, *after, PAGE)
        out.append((time.perf_counter() - t0) * 1000)
        if not row["more"]:
            break
        after = (row["last_name"], row["first_name"], row["id"])
    return out


async def run(quick: bool) -> list[str]:
    """Measure everything; the TARGET lines."""
    n_import, rounds = (10_000, 3) if quick else (50_000, 12)
    async with deployment() as dep:
        app = app_module.create_app(dep.settings.with_(log_level="warning"))
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        base = f"http://127.0.0.1:{server.port}/api/v1"
        try:
            async with aiohttp.ClientSession() as http:
                return await _measure(dep, http, base, n_import, rounds)
        finally:
            await server.close()


async def _measure(dep: Any, http: aiohttp.ClientSession, base: str, n_import: int,
                   rounds: int) -> list[str]:
    (token, church), (_, other) = await _register(http, base), await _register(http, base)
    taken: set[str] = set()
    rows = list(people(n_import, 1, taken))
    data = as_csv(rows)
    conn = await pg.connect(dep.admin.with_db(tenant_db_name(dep.settings, church)))
    other_conn = await pg.connect(dep.admin.with_db(tenant_db_name(dep.settings, other)))
    try:
        progress(f"importing {n_import} members through the API ({len(data) / 1e6:.1f} MB)")
        import_s = await _import(http, base, token, data)
        progress(f"COPY of the same {n_import} rows into another church (baseline)")
        copy_s = await copy_members(other_conn, rows)
        top_up = LIST_MEMBERS - await conn.fetchval("SELECT count(*) FROM members")
        progress(f"topping the church up to {LIST_MEMBERS} members by COPY")
        await copy_members(conn, list(people(top_up, 2, taken)))
        await conn.execute("ANALYZE members")
        sql = tq(dep.settings.sql_dir).filter_members_name_asc.sql
        http_ms: list[float] = []
        bare_ms: list[float] = []
        progress(f"{rounds} rounds of {len(SEARCHES)} searches x 3 pages, HTTP and bare")
        for search in SEARCHES:  # warm both paths
            await _list_pages(http, base, token, search)
            await _bare_pages(conn, sql, search)
        for _ in range(rounds):
            for search in SEARCHES:
                http_ms += await _list_pages(http, base, token, search)
                bare_ms += await _bare_pages(conn, sql, search)
    finally:
        await conn.close()
        await other_conn.close()
    p = percentile
    scaled = import_s * 50_000 / n_import
    print(f"import {n_import} rows: {import_s:.2f} s ({n_import / import_s:.0f} rows/s); "
          f"COPY baseline {copy_s:.2f} s; ratio {import_s / copy_s:.1f}")
    print(f"list with search at {LIST_MEMBERS} members, {len(http_ms)} pages: HTTP p50 "
          f"{p(http_ms, 50):.2f} ms p95 {p(http_ms, 95):.2f} ms; bare query p50 "
          f"{p(bare_ms, 50):.2f} ms p95 {p(bare_ms, 95):.2f} ms; ratio "
          f"{p(http_ms, 50) / p(bare_ms, 50):.2f}")
    lines = [target_line(f"import_{n_import // 1000}k_s", import_s,
                         GOALS["import_s_per_50k"] * n_import / 50_000, "<")]
    if n_import != 50_000:  # --quick: also say what the rate means for 50,000 rows
        lines.append(target_line("import_s_per_50k_scaled", scaled, GOALS["import_s_per_50k"],
                                 "<"))
    return [*lines, target_line("list_search_p50_ms_100k", p(http_ms, 50),
                                GOALS["list_search_p50_ms"], "<")]


def main() -> None:
    """Parse arguments, run, print the TARGET lines."""
    quick_main(__doc__, run)


if __name__ == "__main__":
    main()
