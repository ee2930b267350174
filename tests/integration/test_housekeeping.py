"""Housekeeping: what outlived its use goes (expired denylisted token ids, sessions and reset
tokens expired 30 days ago with their refresh tokens, carrier event ids older than 30 days,
full exports a day after they finished, with their files), what is still needed stays; a
worker runs it once per interval through the shared timer."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.integration.sending_fixtures import *  # noqa: F403
from tests.integration.sending_fixtures import Sending, running_worker, wait_until
from ywmessaging.church import exports
from ywmessaging.config import Settings
from ywmessaging.ops.housekeeping import sweep_church


async def _seed(db: Any, tag: str) -> None:
    """One row of each kind that should go (`old-…`) and one that should stay (`new-…`)."""
    admin = await db.fetchval("SELECT id FROM admins LIMIT 1")
    await db.execute(
        "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES "
        "($1, now() - interval '1 minute'), ($2, now() + interval '10 minutes')",
        f"old-{tag}", f"new-{tag}")
    for age, name in ((timedelta(days=31), "old"), (timedelta(days=29), "new")):
        family = await db.fetchval(
            "INSERT INTO refresh_token_families (admin_id, expires_at, user_agent) "
            "VALUES ($1, now() - $2::interval, $3) RETURNING id", admin, age, f"{name}-{tag}")
        await db.execute(
            "INSERT INTO refresh_tokens (family_id, admin_id, token_hash, expires_at) "
            "VALUES ($1, $2, $3, now() - $4::interval)", family, admin,
            uuid.uuid4().bytes * 2, age)
        await db.execute(
            "INSERT INTO password_reset_tokens (admin_id, token_hash, expires_at) "
            "VALUES ($1, $2, now() - $3::interval)", admin, uuid.uuid4().bytes * 2, age)
        await db.execute(
            "INSERT INTO inbound_events (carrier_event_id, kind, received_at) "
            "VALUES ($1, 'message.received', now() - $2::interval)", f"{name}-{tag}", age)


async def _seed_exports(db: Any, settings: Settings, tenant: uuid.UUID) -> dict[str, Path]:
    """A finished export that expired and one that has not, each with its file."""
    files = {}
    for name, expires in (("old", "-1 second"), ("new", "1 day")):
        export_id = await db.fetchval(
            "INSERT INTO exports (status, finished_at, expires_at) "
            "VALUES ('done', now(), now() + $1::text::interval) RETURNING id", expires)
        path = exports.file_of(settings, tenant, export_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"PK")
        files[name] = path
    return files


async def _left(db: Any) -> dict[str, int]:
    return {table: await db.fetchval(f"SELECT count(*) FROM {table}") for table in (
        "revoked_access_tokens", "refresh_token_families", "refresh_tokens",
        "password_reset_tokens", "inbound_events")}


async def test_sweep_deletes_only_what_outlived_its_use_in_batches(
        sending: Sending, send_settings: Settings) -> None:
    church, _, _ = await sending.church()
    async with sending.db(church) as db:
        before = await _left(db)
        for i in range(3):
            await _seed(db, str(i))
        # batches of 2: three rows of each kind to delete take two batches
        deleted = await sweep_church(db, send_settings, batch=2)
        assert deleted == {"revoked_access_tokens": 3, "sessions": 3,
                           "password_reset_tokens": 3, "inbound_events": 3}
        left = await _left(db)
        assert left == {k: v + 3 for k, v in before.items()}      # the "new" ones stay
        assert await db.fetchval(
            "SELECT count(*) FROM refresh_token_families WHERE user_agent LIKE 'old-%'") == 0
        assert await db.fetchval(
            "SELECT count(*) FROM inbound_events WHERE carrier_event_id LIKE 'old-%'") == 0
        assert await sweep_church(db, send_settings) == dict.fromkeys(deleted, 0)


async def test_a_worker_runs_the_round_once_per_interval(
        sending: Sending, send_settings: Settings, tmp_path: Path) -> None:
    church, _, _ = await sending.church()
    worker_settings = send_settings.with_(housekeeping_interval=3600,
                                          export_dir=tmp_path / "exports")
    tenant = uuid.UUID(church.tenant_id)
    async with sending.db(church) as db:
        await _seed(db, "w")
        files = await _seed_exports(db, worker_settings, tenant)
        before = await _left(db)
        await sending.registry_conn.execute(
            "UPDATE work_timers SET next_at = now() WHERE name = 'housekeeping'")
        async with running_worker(sending.client, worker_settings):
            async def swept() -> bool:
                return await db.fetchval("SELECT count(*) FROM inbound_events "
                                         "WHERE carrier_event_id = 'old-w'") == 0
            await wait_until(swept, timeout=90, every=0.2)   # every church of the registry
        after = await _left(db)
        kept = await db.fetchval("SELECT count(*) FROM exports")
    assert {k: before[k] - after[k] for k in before} == {
        "revoked_access_tokens": 1, "refresh_token_families": 1, "refresh_tokens": 1,
        "password_reset_tokens": 1, "inbound_events": 1}
    # a full export a day old goes with its file; a fresh one stays
    assert (kept, files["old"].exists(), files["new"].exists()) == (1, False, True)
    next_at = await sending.registry_conn.fetchval(
        "SELECT next_at - now() FROM work_timers WHERE name = 'housekeeping'")
    assert 3500 < next_at.total_seconds() <= 3600     # the next round is an interval away
