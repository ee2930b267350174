"""The church profile over HTTP: read, partial changes, clearing, the EIN at rest, validation."""

from __future__ import annotations

from typing import Any

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import Client, problem, register
from ywmessaging.config import Settings
from ywmessaging.crypto import SecretBox
from ywmessaging.db import pg
from ywmessaging.db.dsn import PgTarget

URL = "/api/v1/church"


async def _settings_row(pg_admin: PgTarget, settings: Settings, tenant_id: str) -> Any:
    assert settings.database_url
    reg = await pg.connect(PgTarget.parse(settings.database_url))
    try:
        db_name = await reg.fetchval("SELECT db_name FROM tenants WHERE id = $1::uuid",
                                     tenant_id)
    finally:
        await reg.close()
    conn = await pg.connect(pg_admin.with_db(db_name))
    try:
        return await conn.fetchrow("SELECT * FROM settings")
    finally:
        await conn.close()


async def test_profile_starts_from_sign_up(api_client: Client) -> None:
    church = await register(api_client, name="Grace Fellowship")
    resp = await api_client.get(URL, headers=church.auth)
    body = await resp.json()
    assert resp.status == 200, body
    assert body["id"] == church.tenant_id and body["name"] == "Grace Fellowship"
    assert body["timezone"] == "America/Chicago" and body["default_region"] == "US"
    assert body["quiet_hours"] is None and body["brand"]["ein"] is None
    assert body["brand"]["status"] == "not_registered" and body["help_reply"]


async def test_patch_changes_only_given_fields_and_clears_with_null(
    api_client: Client, pg_admin: PgTarget, settings: Settings, box: SecretBox,
) -> None:
    church = await register(api_client)
    resp = await api_client.patch(URL, headers=church.auth, json={
        "name": "New Name", "timezone": "Europe/London", "default_region": "GB",
        "quiet_hours": {"start": "21:00", "end": "08:00"}, "help_reply": "Call 0123.\nThanks",
        "brand": {"legal_name": "Grace Inc", "ein": "12-3456789", "website": "grace.org",
                  "city": "Leeds"}})
    body = await resp.json()
    assert resp.status == 200, body
    assert body["name"] == "New Name" and body["timezone"] == "Europe/London"
    assert body["quiet_hours"] == {"start": "21:00", "end": "08:00"}
    assert body["brand"]["ein"] == "**-***6789" and body["brand"]["city"] == "Leeds"
    row = await _settings_row(pg_admin, settings, church.tenant_id)
    assert b"123456789" not in bytes(row["ein_encrypted"])
    assert box.open(bytes(row["ein_encrypted"]), "settings.ein") == "123456789"
    resp = await api_client.patch(URL, headers=church.auth, json={
        "quiet_hours": None, "brand": {"ein": None, "city": None}})
    body = await resp.json()
    assert resp.status == 200, body
    assert body["quiet_hours"] is None and body["brand"]["ein"] is None
    assert body["brand"]["city"] is None and body["brand"]["legal_name"] == "Grace Inc"
    assert body["name"] == "New Name"
    again = await (await api_client.get(URL, headers=church.auth)).json()
    assert again == body
    log = await (await api_client.get("/api/v1/audit-log?action=church.update",
                                      headers=church.auth)).json()
    assert len(log["items"]) == 2
    assert "123456789" not in str(log) and "6789" not in str(log)
    assert log["items"][1]["detail"]["brand_fields"] == ["city", "ein", "legal_name", "website"]


async def test_bad_profile_changes_are_refused_and_change_nothing(api_client: Client) -> None:
    church = await register(api_client)
    before = await (await api_client.get(URL, headers=church.auth)).json()
    for bad in ({"timezone": "Mars/Olympus"}, {"timezone": "localtime"},
                {"default_region": "XX"}, {"name": None}, {"name": ""},
                {"quiet_hours": {"start": "25:00", "end": "08:00"}},
                {"quiet_hours": {"start": "08:00", "end": "08:00"}},
                {"quiet_hours": "22:00-06:00"}, {"help_reply": "x" * 321},
                {"brand": {"ein": "12-345"}}, {"brand": {"ein": 123456789}},
                {"brand": {"fax": "1"}}, {"brand": {"website": "not a site"}},
                {"sender_number": "+12025550173"}, {},
                {"name": "ok", "timezone": "Nowhere/Land"}):
        await problem(await api_client.patch(URL, headers=church.auth, json=bad),
                      422, "validation_failed")
    after = await (await api_client.get(URL, headers=church.auth)).json()
    assert after == before


async def test_each_church_sees_and_changes_only_its_own_profile(api_client: Client) -> None:
    a, b = await register(api_client), await register(api_client)
    await api_client.patch(URL, headers=a.auth, json={"name": "Only A"})
    b_profile = await (await api_client.get(URL, headers=b.auth)).json()
    assert b_profile["id"] == b.tenant_id and b_profile["name"] != "Only A"
    await problem(await api_client.patch(URL, json={"name": "x"}), 401, "unauthorized")


async def test_name_and_time_zone_are_mirrored_to_the_registry(
    api_client: Client, registry_conn: Any,
) -> None:
    church = await register(api_client, name="Before")
    resp = await api_client.patch(URL, headers=church.auth,
                                  json={"name": "After", "timezone": "Asia/Tokyo"})
    assert resp.status == 200, await resp.json()
    row = await registry_conn.fetchrow("SELECT name, time_zone FROM tenants WHERE id = $1::uuid",
                                       church.tenant_id)
    assert (row["name"], row["time_zone"]) == ("After", "Asia/Tokyo")
