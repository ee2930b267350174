"""The full account export over HTTP: a ZIP of one CSV per table and a manifest whose counts
match the database, no secret in it, owner only, one at a time, invisible to other churches,
gone after 24 hours; every tenant table exported or excluded; the writer streams."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import secrets
import time
import tracemalloc
import uuid
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import orjson
import pytest

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import (
    PASSWORD,
    Church,
    Client,
    bearer,
    problem,
    read_outbox,
    register,
    token_in,
)
from ywmessaging.auth import mfa
from ywmessaging.church import export_writer, exports
from ywmessaging.church.export_tables import EXCLUDED, exported
from ywmessaging.config import Settings
from ywmessaging.db import pg
from ywmessaging.db.dsn import PgTarget
from ywmessaging.sqlq import tenant as tq
from ywmessaging.tenants.naming import tenant_db_name

START = "/api/v1/account/export"
LIST = "/api/v1/account/exports"
SECRETISH = re.compile(r"hash|secret|encrypted|token|password|recovery|jti", re.I)


@asynccontextmanager
async def church_db(pg_admin: PgTarget, settings: Settings,
                    church: Church) -> AsyncIterator[Any]:
    """An admin connection to the church's own database."""
    conn = await pg.connect(pg_admin.with_db(tenant_db_name(settings,
                                                            uuid.UUID(church.tenant_id))))
    try:
        yield conn
    finally:
        await conn.close()


async def finished(church: Church, export_id: str, timeout: float = 120.0) -> dict[str, Any]:
    """Poll the list until the export has ended."""
    async with asyncio.timeout(timeout):
        while True:
            resp = await church.client.get(LIST, headers=church.auth)
            assert resp.status == 200
            job = next(j for j in (await resp.json())["items"] if j["id"] == export_id)
            if job["status"] in ("done", "failed"):
                return job
            await asyncio.sleep(0.05)


async def export_zip(church: Church) -> tuple[dict[str, Any], bytes]:
    """Start an export, wait for it, download it: (its job, the ZIP's bytes)."""
    resp = await church.client.post(START, headers=church.auth)
    job = await resp.json()
    assert resp.status == 202, job
    assert resp.headers["Location"] == f"{LIST}/{job['id']}"
    done = await finished(church, job["id"])
    assert done["status"] == "done", done
    got = await church.client.get(done["download_url"], headers=church.auth)
    assert got.status == 200
    assert got.headers["Content-Type"] == "application/zip"
    assert re.fullmatch(r'attachment; filename="ywmessaging-export-\d{4}-\d\d-\d\d-[0-9a-f]{8}'
                        r'\.zip"', got.headers["Content-Disposition"])
    return done, await got.read()


async def invite(client: Client, church: Church, outbox: Path) -> str:
    """A co-admin (role admin) of the church; their access token."""
    addr = f"helper-{secrets.token_hex(4)}@example.org"
    resp = await client.post("/api/v1/admins", headers=church.auth, json={
        "email": addr, "first_name": "Hal", "last_name": "Helper", "role": "admin"})
    assert resp.status == 201, await resp.json()
    token = token_in(read_outbox(outbox, "invitation", to=addr)[0])
    accept = await client.post("/api/v1/auth/invitations/accept",
                               json={"token": token, "password": "co-admin passphrase"})
    body = await accept.json()
    assert accept.status == 200, body
    access: str = body["access_token"]
    return access


async def enrol_mfa(client: Client, church: Church) -> tuple[str, list[str]]:
    """Turn MFA on for the owner; (TOTP secret, recovery codes); the church's tokens renewed."""
    pw = {"password": PASSWORD}
    setup = await (await client.post("/api/v1/auth/mfa/setup", headers=church.auth,
                                      json=pw)).json()
    secret = setup["secret"]
    assert parse_qs(urlparse(setup["otpauth_uri"]).query)["secret"] == [secret]
    code = mfa.totp_at(secret, mfa.current_step(time.time()) - 1)
    enable = await client.post("/api/v1/auth/mfa/enable", headers=church.auth,
                               json={"code": code, **pw})
    codes: list[str] = (await enable.json())["recovery_codes"]
    assert enable.status == 200
    resp = await client.post("/api/v1/auth/refresh", json={"refresh_token": church.refresh})
    body = await resp.json()
    assert resp.status == 200, body
    church.access, church.refresh = body["access_token"], body["refresh_token"]
    return secret, codes


async def seed(db: Any, members: int, outbox: int) -> None:
    """Members, a group, a broadcast and its outbox rows, written directly (fast)."""
    await db.execute(
        "INSERT INTO members (first_name, last_name, phone, email, notes) "
        "SELECT 'First' || i, 'Last, \"quoted\"', '+1202' || lpad(i::text, 7, '0'), "
        "'m' || i || '@example.org', CASE WHEN i % 3 = 0 THEN E'line one\\nline two' END "
        "FROM generate_series(1, $1) i", members)
    group = await db.fetchval("INSERT INTO groups (name) VALUES ('Choir') RETURNING id")
    await db.execute("INSERT INTO group_members (group_id, member_id) "
                     "SELECT $1, id FROM members LIMIT 10", group)
    broadcast = await db.fetchval(
        "INSERT INTO broadcasts (body, target_kind, status) VALUES ('Hello', 'all', 'sent') "
        "RETURNING id")
    await db.execute(
        "INSERT INTO outbox (broadcast_id, member_id, to_phone, body, state) "
        "SELECT CASE WHEN i <= $2 THEN $1::uuid END, m.id, m.phone, "
        "       'Sunday service at ten, message number ' || i, 'delivered' "
        "FROM generate_series(1, $3) i "
        "JOIN members m ON m.phone = '+1202' || lpad((1 + (i - 1) % $2)::text, 7, '0')",
        broadcast, members, outbox)


def entries(blob: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        assert zf.testzip() is None
        for info in zf.infolist():
            assert info.compress_type == zipfile.ZIP_DEFLATED
        return {name: zf.read(name) for name in zf.namelist()}


async def test_every_tenant_table_is_exported_or_excluded_and_no_column_looks_secret(
        api_client: Client, api_settings: Settings, pg_admin: PgTarget) -> None:
    church = await register(api_client)
    tables = exported(tq(api_settings.sql_dir))
    names = {t for t, _ in tables}
    assert not names & EXCLUDED.keys()
    async with church_db(pg_admin, api_settings, church) as db:
        present = {r["table_name"] for r in await db.fetch(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
            "  AND table_type = 'BASE TABLE'")}
        undecided = present - names - EXCLUDED.keys()
        assert not undecided, (
            f"tables {sorted(undecided)} are neither exported (an export_table_<name> query in "
            "sql/tenant/queries/export_tables.sql) nor excluded (church/export_tables.py)")
        assert names <= present, "an export query names a table that does not exist"
        for table, query in tables:
            columns = [a.name for a in (await db.prepare(query.sql)).get_attributes()]
            assert not [c for c in columns if SECRETISH.search(c)], (table, columns)


async def test_export_round_trips_and_holds_no_secret(
        api_client: Client, api_settings: Settings, pg_admin: PgTarget) -> None:
    church = await register(api_client)
    totp_secret, recovery_codes = await enrol_mfa(api_client, church)
    patch = await api_client.patch("/api/v1/church", headers=church.auth, json={"brand": {
        "legal_name": "Grace Inc", "ein": "12-3456789", "website": "grace.org",
        "city": "Leeds"}})
    assert patch.status == 200, await patch.json()
    reset = await api_client.post("/api/v1/auth/password-reset", json={"email": church.email})
    assert reset.status < 300
    async with church_db(pg_admin, api_settings, church) as db:
        await seed(db, members=300, outbox=2000)
        secrets_held: list[bytes] = [
            totp_secret.encode(), church.refresh.encode(), church.access.encode(),
            b"12-3456789", b"123456789", PASSWORD.encode(),
            *(c.encode() for c in recovery_codes)]
        admin = await db.fetchrow("SELECT password_hash FROM admins WHERE role = 'owner'")
        secrets_held.append(admin["password_hash"].encode())
        for sql in ("SELECT token_hash AS v FROM refresh_tokens",
                    "SELECT code_hash AS v FROM mfa_recovery_codes",
                    "SELECT token_hash AS v FROM password_reset_tokens",
                    "SELECT totp_secret_encrypted AS v FROM admin_mfa",
                    "SELECT ein_encrypted AS v FROM settings"):
            for r in await db.fetch(sql):
                raw = bytes(r["v"])
                secrets_held += [raw, raw.hex().encode(), b"\\x" + raw.hex().encode()]
        assert len(secrets_held) > 20

        job, blob = await export_zip(church)
        files = entries(blob)
        manifest = orjson.loads(files.pop("manifest.json"))
        counts = {t: await db.fetchval(f"SELECT count(*) FROM {t}")
                  for t in (x["name"] for x in manifest["tables"])}

    assert manifest["format"] == "ywmessaging-export" and manifest["format_version"] == 1
    assert manifest["schema_version"] >= 6 and manifest["church_id"] == church.tenant_id
    assert set(manifest["excluded_tables"]) == set(EXCLUDED)
    assert {t["name"]: t["rows"] for t in manifest["tables"]} == counts == job["row_counts"]
    assert counts["members"] == 300 and counts["outbox"] == 2000 and counts["admins"] == 1
    assert manifest["total_rows"] == job["rows_done"] == sum(counts.values())
    assert job["size_bytes"] == len(blob) and job["tables_done"] == job["tables_total"]
    assert set(files) == {t["file"] for t in manifest["tables"]}
    for table in manifest["tables"]:
        rows = list(csv.reader(io.StringIO(files[table["file"]].decode("utf-8"))))
        assert rows[0] == table["columns"]
        assert len(rows) - 1 == table["rows"], table["name"]
    members = list(csv.DictReader(io.StringIO(files["members.csv"].decode())))
    assert {m["last_name"] for m in members} == {'Last, "quoted"'}
    assert sum(m["notes"] == "line one\nline two" for m in members) == 100
    settings_row = next(csv.DictReader(io.StringIO(files["settings.csv"].decode())))
    assert settings_row["ein_last4"] == "6789" and "ein_encrypted" not in settings_row
    everything = b"\n".join(files.values()) + orjson.dumps(manifest)
    leaked = [s for s in secrets_held if s and s in everything]
    assert not leaked, f"{len(leaked)} secret values found in the export"


async def test_owner_only_one_at_a_time_and_other_churches_cannot_see_it(
        api_client: Client, api_settings: Settings, pg_admin: PgTarget,
        outbox: Path) -> None:
    church, other = await register(api_client), await register(api_client)
    helper = bearer(await invite(api_client, church, outbox))
    for method, path in (("POST", START), ("GET", LIST),
                         ("GET", f"{LIST}/{uuid.uuid4()}")):
        await problem(await api_client.request(method, path, headers=helper), 403, "forbidden")
    job, _ = await export_zip(church)
    # another church can neither list it nor name it
    assert (await (await api_client.get(LIST, headers=other.auth)).json())["items"] == []
    await problem(await api_client.get(f"{LIST}/{job['id']}", headers=other.auth),
                  404, "export_not_found")
    await problem(await api_client.get(f"{LIST}/not-a-uuid", headers=church.auth),
                  404, "not_found")
    # one at a time: a running export (written here, as a process would) refuses a second
    async with church_db(pg_admin, api_settings, church) as db:
        running = await db.fetchval(
            "INSERT INTO exports (status, expires_at, started_at) "
            "VALUES ('running', now() + interval '1 day', now()) RETURNING id")
        body = await problem(await api_client.post(START, headers=church.auth),
                             409, "export_in_progress")
        assert body["export_id"] == str(running)
        body = await problem(await api_client.get(f"{LIST}/{running}", headers=church.auth),
                             409, "export_not_ready")
        assert body["status_of_export"] == "running"
        # its process died: silent for longer than STALE_S, it is failed and a new one starts
        await db.execute("UPDATE exports SET updated_at = now() - make_interval(secs => $2) "
                         "WHERE id = $1", running, exports.STALE_S + 1)
        again = await api_client.post(START, headers=church.auth)
        assert again.status == 202, await again.json()
        assert (await finished(church, (await again.json())["id"]))["status"] == "done"
        assert await db.fetchval("SELECT status FROM exports WHERE id = $1", running) == "failed"
        audit = await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'account.export'")
        assert audit == 2


async def test_expired_exports_are_refused_then_swept_with_their_files(
        api_client: Client, api_settings: Settings, pg_admin: PgTarget) -> None:
    church = await register(api_client)
    job, _ = await export_zip(church)
    tenant = uuid.UUID(church.tenant_id)
    path = exports.file_of(api_settings, tenant, uuid.UUID(job["id"]))
    assert path.is_file() and path.parent.parent == api_settings.data_dir / "exports"
    orphan = path.with_name(f"{uuid.uuid4()}.zip")
    orphan.write_bytes(b"left behind")
    old = time.time() - exports.TTL_S - exports.ORPHAN_GRACE_S - 60
    os.utime(orphan, (old, old))
    async with church_db(pg_admin, api_settings, church) as db:
        assert await exports.sweep(db, api_settings, tenant) == 0     # not yet expired
        assert path.is_file() and not orphan.exists()
        await db.execute("UPDATE exports SET expires_at = now() - interval '1 second'")
        await problem(await api_client.get(f"{LIST}/{job['id']}", headers=church.auth),
                      410, "export_expired")
        listed = (await (await api_client.get(LIST, headers=church.auth)).json())["items"]
        assert listed[0]["expired"] is True and listed[0]["download_url"] is None
        assert await exports.sweep(db, api_settings, tenant) == 1
        assert not path.exists()
        assert await db.fetchval("SELECT count(*) FROM exports") == 0
    await problem(await api_client.get(f"{LIST}/{job['id']}", headers=church.auth),
                  404, "export_not_found")


async def test_a_missing_file_is_410_and_a_failed_export_leaves_nothing(
        api_client: Client, api_settings: Settings, pg_admin: PgTarget) -> None:
    church = await register(api_client)
    job, _ = await export_zip(church)
    exports.file_of(api_settings, uuid.UUID(church.tenant_id), uuid.UUID(job["id"])).unlink()
    await problem(await api_client.get(f"{LIST}/{job['id']}", headers=church.auth),
                  410, "export_file_missing")
    # a job whose table cannot be read fails cleanly: status failed, no file, next one works
    async with church_db(pg_admin, api_settings, church) as db:
        export_id = await db.fetchval(
            "INSERT INTO exports (expires_at) VALUES (now() + interval '1 day') RETURNING id")
        copies = [0]

        @asynccontextmanager
        async def broken() -> AsyncIterator[Any]:
            async with church_db(pg_admin, api_settings, church) as conn:
                yield _Failing(conn, copies)

        await export_writer.run_job(broken, api_settings, uuid.UUID(church.tenant_id),
                                    export_id)
        row = await db.fetchrow("SELECT status, error FROM exports WHERE id = $1", export_id)
        assert row["status"] == "failed" and "RuntimeError" in row["error"]
    folder = exports.folder(api_settings, uuid.UUID(church.tenant_id))
    assert sorted(p.name for p in folder.iterdir()) == []
    again = await api_client.post(START, headers=church.auth)
    assert again.status == 202


async def test_an_export_cancelled_mid_table_is_failed_and_leaves_no_file(
        api_client: Client, api_settings: Settings, pg_admin: PgTarget) -> None:
    church = await register(api_client)
    tenant = uuid.UUID(church.tenant_id)
    copying = asyncio.Event()

    @asynccontextmanager
    async def lease() -> AsyncIterator[Any]:
        async with church_db(pg_admin, api_settings, church) as conn:
            yield _Stalling(conn, copying)

    async with church_db(pg_admin, api_settings, church) as db:
        export_id = await db.fetchval(
            "INSERT INTO exports (expires_at) VALUES (now() + interval '1 day') RETURNING id")
        job = asyncio.create_task(export_writer.run_job(lease, api_settings, tenant, export_id))
        await asyncio.wait_for(copying.wait(), 10)
        part = exports.folder(api_settings, tenant) / f"{export_id}.zip.part"
        assert part.exists()                      # the ZIP being written
        job.cancel()                              # as the runner does at shutdown
        with pytest.raises(asyncio.CancelledError):   # and the job stays cancelled
            await job
        row = await db.fetchrow("SELECT status, error FROM exports WHERE id = $1", export_id)
    assert row["status"] == "failed" and "interrupted" in row["error"]
    assert list(exports.folder(api_settings, tenant).iterdir()) == []


class _Stalling:
    """A connection whose COPY never ends (until the job is cancelled)."""

    def __init__(self, conn: Any, copying: asyncio.Event) -> None:
        self._conn, self._copying = conn, copying

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def copy_from_query(self, *args: Any, **kwargs: Any) -> Any:
        self._copying.set()
        await asyncio.Event().wait()


class _Failing:
    """A connection whose COPY breaks after the first table (everything else passes through)."""

    def __init__(self, conn: Any, copies: list[int]) -> None:
        self._conn, self._copies = conn, copies

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def copy_from_query(self, *args: Any, **kwargs: Any) -> Any:
        self._copies[0] += 1
        if self._copies[0] > 1:
            raise RuntimeError("disk on fire")
        return await self._conn.copy_from_query(*args, **kwargs)


async def test_the_writer_streams_a_large_church_in_bounded_memory(
        api_client: Client, api_settings: Settings, pg_admin: PgTarget, tmp_path: Path) -> None:
    church = await register(api_client)
    async with church_db(pg_admin, api_settings, church) as db:
        await seed(db, members=20_000, outbox=150_000)

        @asynccontextmanager
        async def lease() -> AsyncIterator[Any]:
            async with church_db(pg_admin, api_settings, church) as conn:
                yield conn

        export_id = await db.fetchval(
            "INSERT INTO exports (status, expires_at) VALUES ('running', now() + interval "
            "'1 day') RETURNING id")
        target = tmp_path / "big.zip"
        tracemalloc.start()
        try:
            manifest = await export_writer.write(lease, api_settings, target,
                                                 tenant_id=uuid.UUID(church.tenant_id),
                                                 export_id=export_id)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    rows = {t["name"]: t["rows"] for t in manifest["tables"]}
    assert rows["outbox"] == 150_000 and rows["members"] == 20_000
    with zipfile.ZipFile(target) as zf:
        info = zf.getinfo("outbox.csv")
        assert info.file_size > 20 * 1024 * 1024          # over 20 MiB of CSV ...
        with zf.open("outbox.csv") as f:
            assert sum(1 for _ in io.TextIOWrapper(f, encoding="utf-8")) == 150_001
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"  # ... through a few MB at most
