"""Member CSV import and export over HTTP: aliases and the report, every kind of bad file and
bad row, large imports as jobs (with resume), the streamed export and its formula guard."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
import zlib
from typing import Any

import aiohttp

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import Church, Client, problem, register
from ywmessaging.config import Settings
from ywmessaging.db import pg
from ywmessaging.db.dsn import PgTarget
from ywmessaging.tenants.naming import tenant_db_name

IMPORT = "/api/v1/members/import"


async def db(pg_admin: PgTarget, settings: Settings, church: Church, sql: str,
             *args: Any) -> list[Any]:
    """Rows from (or a write to) the church's own database."""
    conn = await pg.connect(pg_admin.with_db(tenant_db_name(settings,
                                                            uuid.UUID(church.tenant_id))))
    try:
        rows: list[Any] = await conn.fetch(sql, *args)
        return rows
    finally:
        await conn.close()


async def upload(church: Church, data: bytes, *, name: str = "members.csv",
                 field: str = "file") -> aiohttp.ClientResponse:
    form = aiohttp.FormData()
    form.add_field(field, data, filename=name, content_type="text/csv")
    return await church.client.post(IMPORT, data=form, headers=church.auth)


async def finished(church: Church, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """Poll an import job until it has ended."""
    async with asyncio.timeout(timeout):
        while True:
            job: dict[str, Any] = await (await church.client.get(
                f"/api/v1/imports/{job_id}", headers=church.auth)).json()
            if job["status"] in ("done", "failed"):
                return job
            await asyncio.sleep(0.1)


SMALL = (
    "\ufeffFirst Name,Last Name,Phone Number,E-mail Address,Groups,Shoe size\r\n"
    "Ann,Lee,(202) 555-0101,ANN@Example.org,Youth; Choir,9\r\n"
    "Bob,Ray,not a phone,,,\r\n"
    "\r\n"
    "Cy,Day,202-555-0101,,,\r\n"
    "Dee,Fox,+1 202 555 0102,dee@example,,\r\n"
    ",,,,,\r\n"
    "Eve,\"Quo,ted\",2025550103,,choir,\r\n"
    "Fay,Gee,,,,\r\n"
    "Gus,Hay,2025550104,,,,,extra\r\n"
    "Hal,Ito,2025550105,hal@example.org,,\r\n"
)


async def test_small_import_reports_each_row_and_upserts_by_phone(
    api_client: Client, pg_admin: PgTarget, settings: Settings,
) -> None:
    church = await register(api_client)
    resp = await api_client.post("/api/v1/members", headers=church.auth, json={
        "first_name": "Old", "last_name": "Name", "phone": "+12025550105"})
    assert resp.status == 201, await resp.text()
    await api_client.post(f"/api/v1/members/{(await resp.json())['id']}/opt-out",
                          headers=church.auth, json={})
    resp = await upload(church, SMALL.encode())
    report = await resp.json()
    assert resp.status == 200, report
    assert report["status"] == "done" and report["ignored_columns"] == ["Shoe size"]
    assert (report["created"], report["updated"], report["skipped"]) == (2, 1, 5)
    assert [(e["line"], e["code"]) for e in report["errors"]] == [
        (3, "invalid_phone"), (5, "duplicate_phone"), (6, "invalid_email"),
        (9, "missing_phone"), (10, "too_many_fields")]
    rows = await db(pg_admin, settings, church,
                    "SELECT phone, first_name, last_name, email, opt_in FROM members "
                    "ORDER BY phone")
    assert [tuple(r) for r in rows] == [
        ("+12025550101", "Ann", "Lee", "ann@example.org", "opted_in"),
        ("+12025550103", "Eve", "Quo,ted", None, "opted_in"),
        ("+12025550105", "Hal", "Ito", "hal@example.org", "opted_out"),  # never re-opted in
    ]
    links = await db(pg_admin, settings, church,
                     "SELECT m.first_name, g.name FROM group_members gm JOIN members m "
                     "ON m.id = gm.member_id JOIN groups g ON g.id = gm.group_id ORDER BY 1, 2")
    assert [tuple(r) for r in links] == [("Ann", "Choir"), ("Ann", "Youth"), ("Eve", "Choir")]
    consent = await db(pg_admin, settings, church,
                       "SELECT count(*) FROM consent_events WHERE source = 'import'")
    assert consent[0][0] == 2
    job = await (await api_client.get(f"/api/v1/imports/{report['id']}",
                                      headers=church.auth)).json()
    assert job["created"] == 2 and job["processed_rows"] == job["total_rows"] == 8
    log = await (await api_client.get("/api/v1/audit-log?action=members.import",
                                      headers=church.auth)).json()
    assert log["items"][0]["detail"]["created"] == 2


async def test_bad_files_are_refused_and_write_nothing(
    api_client: Client, pg_admin: PgTarget, settings: Settings,
) -> None:
    church = await register(api_client)
    latin1 = "First,Phone\nJosé,2025550101\n".encode("latin-1")
    body = await problem(await upload(church, latin1), 400, "invalid_encoding")
    assert body["line"] == 2
    await problem(await upload(church, "First,Phone\n".encode("utf-16")), 400,
                  "invalid_encoding")
    await problem(await upload(church, b"First,Email\nAnn,a@b.org\n"), 422,
                  "missing_phone_column")
    await problem(await upload(church, b"Phone,Mobile\n1,2\n"), 422, "duplicate_column")
    await problem(await upload(church, b""), 400, "empty_file")
    await problem(await upload(church, b"\n\n  \n"), 400, "empty_file")
    await problem(await upload(church, b"phone\n2025550101\n", field="csv"), 400,
                  "missing_file")
    await problem(await upload(church, b"phone\n" + b"x\n" * 100_001), 422, "too_many_rows")
    await problem(await api_client.post(IMPORT, headers=church.auth, json={"file": "x"}),
                  415, "unsupported_media_type")
    await problem(await api_client.post(
        IMPORT, data=b"--zz\r\nnot a part", headers={
            **church.auth, "Content-Type": "multipart/form-data; boundary=zz"}),
        400, "invalid_multipart")
    assert await db(pg_admin, settings, church, "SELECT 1 FROM members") == []
    assert await db(pg_admin, settings, church, "SELECT 1 FROM imports") == []
    await problem(await church.client.post(IMPORT, data=b"x"), 401, "unauthorized")


async def test_size_cap_is_the_import_setting(make_api_client: Any,
                                              api_settings: Settings) -> None:
    client = await make_api_client(api_settings.with_(import_max_bytes=4096))
    church = await register(client)
    await problem(await upload(church, b"phone\n" + b"2025550101\n" * 500), 413,
                  "payload_too_large")
    resp = await upload(church, b"phone\n2025550101\n")
    assert resp.status == 200, await resp.text()


async def test_a_huge_line_and_broken_rows_do_not_stop_the_others(api_client: Client) -> None:
    church = await register(api_client)
    data = (b"name,phone\n" + b"A One,2025550101\n" + b"x" * (10 * 1024 * 1024) + b"\n"
            + b"B Two,2025550102\n" + b'"C" Three,2025550103\n' + b"D \x00Four,2025550104\n"
            + b'E Five,"2025550105\n')
    resp = await upload(church, data)
    report = await resp.json()
    assert resp.status == 200, report
    assert [(e["line"], e["code"]) for e in report["errors"]] == [
        (3, "line_too_long"), (5, "malformed_row"), (7, "malformed_row")]
    assert report["created"] == 3  # A, B and D (its NUL dropped)


async def test_large_import_runs_as_a_job_and_isolation(
    api_client: Client, pg_admin: PgTarget, settings: Settings,
) -> None:
    church, other = await register(api_client), await register(api_client)
    lines = ["phone;first name;group"] + [f"+1202555{i:04d};P{i};Big" for i in range(6000)]
    lines[10] = "bad;x;y"
    resp = await upload(church, "\n".join(lines).encode())
    queued = await resp.json()
    assert resp.status == 202, queued
    assert queued["status"] in ("queued", "running")
    assert resp.headers["Location"] == f"/api/v1/imports/{queued['id']}"
    await problem(await api_client.get(f"/api/v1/imports/{queued['id']}", headers=other.auth),
                  404, "not_found")
    job = await finished(church, queued["id"])
    assert job["status"] == "done", job
    assert (job["created"], job["skipped"], job["processed_rows"]) == (5999, 1, 6000)
    assert job["errors"] == [{"line": 11, "code": "invalid_phone", "field": "phone",
                              "message": job["errors"][0]["message"]}]
    count = await db(pg_admin, settings, church, "SELECT count(*) FROM group_members")
    assert count[0][0] == 5999
    source = await db(pg_admin, settings, church, "SELECT source_csv FROM imports")
    assert source[0][0] is None


async def test_an_abandoned_job_is_resumed_after_its_last_batch(
    api_client: Client, pg_admin: PgTarget, settings: Settings,
) -> None:
    church = await register(api_client)
    csv_text = "phone\n" + "".join(f"+1202555{i:04d}\n" for i in range(2500))
    job_id = uuid.uuid4()
    await db(pg_admin, settings, church,
             "INSERT INTO imports (id, status, filename, source_csv, total_rows, processed_rows, "
             "created, updated_at, started_at) VALUES ($1, 'running', 'x.csv', $2, 2500, 1000, "
             "1000, now() - interval '5 minutes', now() - interval '6 minutes')",
             job_id, zlib.compress(csv_text.encode()))
    job = await finished(church, str(job_id))
    assert job["status"] == "done" and job["processed_rows"] == 2500
    assert job["created"] == 2500  # 1000 counted before the "crash", 1500 after
    count = await db(pg_admin, settings, church, "SELECT count(*) FROM members")
    assert count[0][0] == 1500  # the first 1000 rows were skipped, not redone


async def test_export_streams_csv_safe_for_spreadsheets_and_round_trips(
    api_client: Client,
) -> None:
    church, other = await register(api_client), await register(api_client)
    data = ("first_name,last_name,phone,email,groups\n"
            "=HYPERLINK(\"http://evil\"),@SUM(A1),2025550101,a@example.org,Choir;Youth\n"
            "Plain,-minus,2025550102,,\n")
    assert (await upload(church, data.encode())).status == 200
    resp = await api_client.get("/api/v1/members/export", headers=church.auth)
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in resp.headers["Content-Disposition"]
    raw = await resp.read()
    assert raw.startswith("\ufeff".encode())
    rows = sorted(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))), key=lambda r: r["phone"])
    assert [r["phone"] for r in rows] == ["+12025550101", "+12025550102"]
    assert rows[0]["first_name"] == "'=HYPERLINK(\"http://evil\")"
    assert rows[0]["last_name"] == "'@SUM(A1)" and rows[1]["last_name"] == "'-minus"
    assert rows[0]["groups"] == "Choir; Youth" and rows[0]["opt_in"] == "opted_in"
    again = await upload(other, raw)
    report = await again.json()
    assert again.status == 200, report
    assert report["created"] == 2 and report["ignored_columns"] == ["opt_in", "created_at"]
    empty = await (await api_client.get("/api/v1/members/export", headers=other.auth)).read()
    assert empty.count(b"\n") == 3  # header + the two rows it just imported
    await problem(await api_client.get("/api/v1/members/export?x=1", headers=church.auth),
                  422, "validation_failed")
    await problem(await api_client.get("/api/v1/members/export"), 401, "unauthorized")
