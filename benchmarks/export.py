"""Full export benchmark: a church of 100,000 members and 1,000,000 outbox rows exported
through the API (`POST /api/v1/account/export`, the background job, then the download),
against a bare `COPY (allow-list query) TO STDOUT` of the same tables into plain files.

The app runs with all its plug-ins on a loopback port (client in the same process). The
church is filled server-side (`generate_series`), so the process's memory holds none of it.
While the job runs, the process's resident set (`VmRSS`) is sampled every 20 ms: the figure is
its peak growth over the resident set just before the export started (the job must stream, so
this stays flat whatever the church's size). Every database it makes is named `ywmbexp<hex>_*`
and dropped at the end.

    .venv/bin/python -m benchmarks.export [--quick]
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import tempfile
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp.test_utils import TestServer

from ywmessaging import app as app_module
from ywmessaging.church.export_tables import exported
from ywmessaging.db import pg
from ywmessaging.sqlq import tenant as tq
from ywmessaging.tenants.naming import tenant_db_name

from .common import deployment, progress, quick_main, target_line

PASSWORD = "benchmark passphrase 42"
BROADCASTS = 10                      # outbox rows = members x broadcasts
GOALS = {"export_s_per_1m_rows": 60.0, "export_vs_bare_copy": 4.0, "rss_growth_mb": 64.0}


def rss_kb() -> int:
    """This process's resident set now, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _register(http: aiohttp.ClientSession, base: str) -> tuple[str, uuid.UUID]:
    async with http.post(f"{base}/auth/register", json={
        "church_name": "Benchmark Church", "email": f"bench-{secrets.token_hex(4)}@example.org",
        "password": PASSWORD, "first_name": "B", "last_name": "M"}) as resp:
        body = await resp.json()
        assert resp.status == 201, body
        return body["access_token"], uuid.UUID(body["church_id"])


async def fill(conn: Any, members: int) -> None:
    """`members` members and BROADCASTS broadcasts to all of them (their outbox rows)."""
    await conn.execute(
        "INSERT INTO members (first_name, last_name, phone, email, notes) "
        "SELECT 'First' || i, 'Last' || (i % 997), '+1' || (2020000000 + i)::text, "
        "       'member' || i || '@example.org', CASE WHEN i % 10 = 0 THEN 'Needs a ride' END "
        "FROM generate_series(1, $1) i", members)
    for n in range(BROADCASTS):
        broadcast = await conn.fetchval(
            "INSERT INTO broadcasts (body, target_kind, status, recipient_count) "
            "VALUES ($1, 'all', 'sent', $2) RETURNING id",
            f"Service this Sunday at 10:00, bring a friend! ({n})", members)
        await conn.execute(
            "INSERT INTO outbox (broadcast_id, member_id, to_phone, body, state, attempts, "
            "                    carrier_message_id, sent_at, delivered_at) "
            "SELECT $1, id, phone, $2, 'delivered', 1, gen_random_uuid()::text, now(), now() "
            "FROM members", broadcast, f"Service this Sunday at 10:00, bring a friend! ({n})")
        progress(f"  broadcast {n + 1}/{BROADCASTS}: {members} outbox rows")
    await conn.execute("ANALYZE")


async def bare_copy(conn: Any, sql_dir: Path, folder: Path) -> tuple[float, int]:
    """Every allow-list query COPYed to a plain file; (seconds, bytes)."""
    t0 = time.perf_counter()
    size = 0
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        for table, query in exported(tq(sql_dir)):
            path = folder / f"{table}.csv"
            await conn.copy_from_query(query.sql, output=str(path), format="csv", header=True)
            size += path.stat().st_size
            path.unlink()
    return time.perf_counter() - t0, size


async def api_export(http: aiohttp.ClientSession, base: str, token: str,
                     into: Path) -> tuple[float, float, dict[str, Any], int]:
    """Start, wait, download: (seconds to done, seconds to download, the job, peak RSS KiB)."""
    headers = {"Authorization": f"Bearer {token}"}
    peak = [rss_kb()]
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kb())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.02)

    sampler = asyncio.create_task(sample())
    t0 = time.perf_counter()
    async with http.post(f"{base}/account/export", headers=headers) as resp:
        job = await resp.json()
        assert resp.status == 202, job
    while job["status"] not in ("done", "failed"):
        await asyncio.sleep(0.2)
        async with http.get(f"{base}/account/exports", headers=headers) as resp:
            job = next(j for j in (await resp.json())["items"] if j["id"] == job["id"])
    done_s = time.perf_counter() - t0
    assert job["status"] == "done", job
    t1 = time.perf_counter()
    async with http.get(f"{base}{job['download_url'].removeprefix('/api/v1')}",
                        headers=headers) as resp:
        assert resp.status == 200
        with into.open("wb") as f:
            async for chunk in resp.content.iter_chunked(1 << 16):
                f.write(chunk)
    download_s = time.perf_counter() - t1
    stop.set()
    await sampler
    return done_s, download_s, job, peak[0]


async def run(quick: bool) -> list[str]:
    """Measure everything; the TARGET lines."""
    members = 10_000 if quick else 100_000
    with tempfile.TemporaryDirectory(prefix="ywmbexp-") as tmp:
        folder = Path(tmp)
        async with deployment(prefix_base="ywmbexp") as dep:
            settings = dep.settings.with_(log_level="warning", export_dir=folder / "exports")
            app = app_module.create_app(settings)
            server = TestServer(app, host="127.0.0.1")
            await server.start_server()
            base = f"http://127.0.0.1:{server.port}/api/v1"
            try:
                async with aiohttp.ClientSession() as http:
                    return await _measure(dep, settings, http, base, members, folder)
            finally:
                await server.close()


async def _measure(dep: Any, settings: Any, http: aiohttp.ClientSession, base: str,
                   members: int, folder: Path) -> list[str]:
    token, church = await _register(http, base)
    conn = await pg.connect(dep.admin.with_db(tenant_db_name(settings, church)))
    try:
        progress(f"filling the church: {members} members, {members * BROADCASTS} outbox rows")
        t0 = time.perf_counter()
        await fill(conn, members)
        progress(f"filled in {time.perf_counter() - t0:.1f} s; bare COPY of every table (baseline)")
        bare_s, csv_bytes = await bare_copy(conn, settings.sql_dir, folder)
        progress(f"bare COPY {bare_s:.1f} s, {csv_bytes / 1e6:.0f} MB of CSV; now the export")
        before = rss_kb()
        done_s, download_s, job, peak = await api_export(http, base, token, folder / "got.zip")
    finally:
        await conn.close()
    with zipfile.ZipFile(folder / "got.zip") as zf:
        manifest = orjson.loads(zf.read("manifest.json"))
    rows = manifest["total_rows"]
    assert {t["name"]: t["rows"] for t in manifest["tables"]}["outbox"] == members * BROADCASTS
    growth_mb = (peak - before) / 1024
    print(f"export of {rows} rows ({members} members, {members * BROADCASTS} outbox): "
          f"{done_s:.2f} s to done ({rows / done_s:,.0f} rows/s), ZIP "
          f"{job['size_bytes'] / 1e6:.1f} MB from {csv_bytes / 1e6:.1f} MB of CSV, download "
          f"{download_s:.2f} s; bare COPY to plain files {bare_s:.2f} s; ratio "
          f"{done_s / bare_s:.2f}")
    print(f"RSS: {before / 1024:.1f} MB before the export, peak {peak / 1024:.1f} MB while it "
          f"ran and downloaded (growth {growth_mb:.1f} MB)")
    scaled = done_s * 1_000_000 / rows
    return [
        target_line("export_s_per_1m_rows", scaled, GOALS["export_s_per_1m_rows"]),
        target_line("export_vs_bare_copy", done_s / bare_s, GOALS["export_vs_bare_copy"]),
        target_line(f"export_rss_growth_mb_{members // 1000}k_members", growth_mb,
                    GOALS["rss_growth_mb"]),
    ]


def main() -> None:
    """Parse arguments, run, print the TARGET lines."""
    quick_main(__doc__, run)


if __name__ == "__main__":
    main()
