"""`ywm inbox list|retry` as an operator runs it (a real process) on events whose processing
failed, and the inbox gauge that shows them (issue #16, item 3)."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from tests.conftest import TEST_SECRET
from tests.integration.carrier_sim_fixtures import *  # noqa: F403
from tests.integration.carrier_sim_fixtures import (
    Client,
    church_with_number,
    envelope,
    random_number,
    tenant_db,
)
from ywmessaging.config import Settings
from ywmessaging.db.dsn import PgTarget
from ywmessaging.keys import METRICS, REGISTRY_POOL
from ywmessaging.messaging.webhooks import observe_backlog

ISOLATE = ("UPDATE webhook_inbox SET state = 'ignored', last_error = 'test_isolation' "
           "WHERE state IN ('received', 'failed') "
           "OR (state = 'ignored' AND last_error LIKE 'gave\\_up:%')")
STORE = ("INSERT INTO webhook_inbox (provider, event_id, event_type, occurred_at, payload, "
         "state, attempts, next_attempt_at, last_error) "
         "VALUES ('telnyx', $1, 'message.received', now(), $2::jsonb, $3, 9, 'infinity', $4) "
         "RETURNING id")


async def ywm(settings: Settings, *args: str) -> tuple[int, str, str]:
    """Run `ywm ARGS` against this session's registry: (exit status, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YWM_", "DATABASE_URL"))}
    env.update(DATABASE_URL=settings.database_url or "", YWM_SECRET_KEY=TEST_SECRET,
               YWM_DB_PREFIX=settings.db_prefix, YWM_LOG_LEVEL="warning")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ywmessaging", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _gauges(client: Client) -> dict[str, float]:
    text = await (await client.get("/metrics")).text()
    found = {}
    for line in text.splitlines():
        if line.startswith("ywm_webhook_inbox_events{"):
            found[line.split('state="')[1].split('"')[0]] = float(line.split()[-1])
    return found


async def test_operators_see_failed_events_and_replay_them(
        make_api_client: Callable[[Settings], Awaitable[Client]], msg_settings: Settings,
        registry_conn: Any, pg_admin: PgTarget, sim: Any) -> None:
    # no sweeper of this app races the command for the events (they are due only when replayed)
    client = await make_api_client(msg_settings.with_(webhook_sweep_interval=3600))
    church, number = await church_with_number(client, registry_conn, sim)
    await registry_conn.execute(ISOLATE)   # other tests' failures are not this test's to replay
    ids = []
    for i, (state, error) in enumerate([("failed", "tenant_unavailable"),
                                        ("ignored", "gave_up:tenant_unavailable")]):
        body = envelope("message.received", {
            "id": str(uuid.uuid4()), "from": {"phone_number": random_number()},
            "to": [{"phone_number": number}], "text": f"Prayer request {i}"})
        ids.append(await registry_conn.fetchval(STORE, body["data"]["id"],
                                                orjson.dumps(body).decode(), state, error))

    code, out, err = await ywm(msg_settings, "inbox", "list", "--failed", "--json")
    assert code == 0, err
    listed = {r["id"]: r["state"] for r in orjson.loads(out)}
    assert listed == {ids[0]: "failed", ids[1]: "ignored"}
    code, out, err = await ywm(msg_settings, "inbox", "list", "--failed")
    assert code == 0 and str(ids[0]) in out and "gave_up:tenant_unavailable" in out, out + err

    app = client.server.app
    await observe_backlog(app[REGISTRY_POOL], msg_settings, app[METRICS])
    gauges = await _gauges(client)
    assert (gauges["failed"], gauges["gave_up"]) == (1.0, 1.0), gauges

    code, out, err = await ywm(msg_settings, "inbox", "retry", "--all-failed")
    assert code == 0, out + err
    assert out.count(" done") == 2, out
    states = await registry_conn.fetch("SELECT state, attempts FROM webhook_inbox "
                                       "WHERE id = ANY($1::bigint[])", ids)
    assert [(r["state"], r["attempts"]) for r in states] == [("done", 1)] * 2
    async with tenant_db(pg_admin, registry_conn, church.tenant_id) as db:
        assert await db.fetchval("SELECT count(*) FROM conversation_messages") == 2

    code, out, _ = await ywm(msg_settings, "inbox", "list", "--failed", "--json")
    assert code == 0 and not {r["id"] for r in orjson.loads(out)} & set(ids)
    await observe_backlog(app[REGISTRY_POOL], msg_settings, app[METRICS])
    assert (await _gauges(client))["gave_up"] == 0.0
    code, out, _ = await ywm(msg_settings, "inbox", "retry", str(ids[0]))  # done: not failed
    assert code == 1 and "not replayed" in out, out
    code, _, err = await ywm(msg_settings, "inbox", "retry")
    assert code == 1 and "--all-failed" in err, err
