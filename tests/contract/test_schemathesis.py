"""Contract test: schemathesis against the real application on a loopback port.

The assembled app (every plug-in, real PostgreSQL) serves `openapi.yaml`; a church is signed
up and schemathesis (its CLI, in a subprocess with a time bound, a fixed seed and one worker)
sends generated requests, valid and invalid, to every operation with that church's access
token, with every check on: no 5xx, every status, header, content type and body as documented,
invalid requests refused, valid ones accepted (but for the refusals only state or the server's
tables can explain: see `st_hooks`), 405 with `Allow` for undocumented methods.

Two runs: the stateless phases (examples, coverage, fuzzing) over every operation, and the
stateful phase, which follows the spec's `links` (create → read → update → delete, and the
actions on a created resource) and checks that what was created can be read and what was
deleted is gone.

Excluded, because a generated call would end the shared session or the church and so turn every
later answer into a 401: `POST /api/v1/auth/logout`, `POST /api/v1/auth/password` (both end the
admin's sessions), `POST /api/v1/auth/mfa/enable` and `/auth/mfa/disable` (turning MFA on makes
the token's login flow differ), and `DELETE /api/v1/admins/{id}` (removing the owner). Also
`GET /api/v1/events`, a WebSocket: schemathesis sends plain HTTP requests, which the route
answers 400 `websocket_expected` whatever the parameters (tests/integration/test_events.py
tests it with a WebSocket client).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.auth_fixtures import build_app
from ywmessaging.billing.catalogue import PLANS
from ywmessaging.billing.simulator import start_stripe_sim
from ywmessaging.billing.stripe_client import StripeBilling
from ywmessaging.billing.sync import sync_catalogue
from ywmessaging.config import Settings
from ywmessaging.messaging.simulator import start_simulator

MAX_EXAMPLES = 6
STATEFUL_SCENARIOS = 200   # a few seconds here
MIN_LINKS_COVERED = 10     # of the 34 links openapi.yaml declares
RUN_TIMEOUT_S = 240.0
REPO = Path(__file__).resolve().parents[2]
# operationIds of the excluded operations (see the module docstring)
EXCLUDED = ("logout", "changePassword", "enableMfa", "disableMfa", "removeAdmin",
            "eventsSocket")
# Known failures of other parts, reported; remove an entry once its operation is fixed.
# Operations that fail the contract today, with why (none: every cursor has a base64url
# pattern now, which bounds generated URLs under aiohttp's 8190-byte request-line limit).
KNOWN_FAILURES: dict[str, str] = {}


def _schemathesis() -> str:
    exe = Path(sys.executable).with_name("schemathesis")
    if exe.exists():
        return str(exe)
    found = shutil.which("schemathesis")
    if found is None:
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
    return found


async def _sign_up(base: str) -> str:
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"{base}/api/v1/auth/register", json={
            "church_name": "Contract Church",
            "email": f"contract-{secrets.token_hex(4)}@example.org",
            "password": "Correct horse battery staple", "first_name": "Con",
            "last_name": "Tract", "timezone": "America/Chicago"})
        body = await resp.json()
        assert resp.status == 201, body
        return str(body["access_token"])


async def test_every_operation_honours_the_spec(aiohttp_server: Any, settings: Settings,
                                                 registry_conn: Any, tmp_path: Path) -> None:
    base = await _serve(aiohttp_server, settings, registry_conn, tmp_path)
    try:
        await _run(base.url, tmp_path, "--phases", "examples,coverage,fuzzing",
                   "--max-examples", str(MAX_EXAMPLES))
    finally:
        await base.stop()


async def test_links_chain_create_read_update_delete(aiohttp_server: Any, settings: Settings,
                                                      registry_conn: Any, tmp_path: Path) -> None:
    base = await _serve(aiohttp_server, settings, registry_conn, tmp_path)
    try:
        text = await _run(base.url, tmp_path, "--phases", "stateful", "--mode", "positive",
                          "--max-examples", str(STATEFUL_SCENARIOS))
    finally:
        await base.stop()
    found = re.search(r"API Links:\s+(\d+) covered", text)
    assert found and int(found.group(1)) >= MIN_LINKS_COVERED, text[-3000:]


class _Served:
    def __init__(self, url: str, *sims: Any) -> None:
        self.url, self._sims = url, sims

    async def stop(self) -> None:
        for sim in self._sims:
            await sim.stop()


async def _serve(aiohttp_server: Any, settings: Settings, registry_conn: Any,
                 tmp_path: Path) -> _Served:
    await registry_conn.execute("DELETE FROM login_throttle")
    sim = await start_simulator()
    stripe_sim = await start_stripe_sim()
    app_settings = settings.with_(data_dir=tmp_path, telnyx_api_base=sim.base_url,
                                  telnyx_public_key=sim.public_key, telnyx_timeout=2.0,
                                  stripe_api_base=stripe_sim.base_url,
                                  stripe_webhook_secret=stripe_sim.webhook_secret,
                                  stripe_timeout=2.0)
    billing = StripeBilling(app_settings)
    try:   # the prices checkout looks up
        await sync_catalogue(billing, PLANS)
    finally:
        await billing.close()
    server = await aiohttp_server(build_app(app_settings))
    sim.set_webhook_url(f"http://127.0.0.1:{server.port}/webhooks/telnyx")
    stripe_sim.set_webhook_url(f"http://127.0.0.1:{server.port}/webhooks/stripe")
    return _Served(f"http://127.0.0.1:{server.port}", sim, stripe_sim)


async def _run(base: str, tmp_path: Path, *phase_args: str) -> str:
    exe = _schemathesis()
    token = await _sign_up(base)
    args = [
        exe, "--config-file", str(Path(__file__).with_name("schemathesis.toml")),
        "run", f"{base}/openapi.yaml", "--url", base,
        "-H", f"Authorization: Bearer {token}", "--checks", "all", *phase_args,
        "--workers", "1", "--request-timeout", "10", "--seed", "5",
        "--suppress-health-check", "all", "--no-shrink", "--continue-on-failure",
        "--warnings", "off", "--generation-database", "none",
    ]
    for operation_id in (*EXCLUDED, *KNOWN_FAILURES):
        args += ["--exclude-operation-id", operation_id]
    env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": "tests.contract.st_hooks",
           "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO),
                                                       os.environ.get("PYTHONPATH"))))}
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
        cwd=tmp_path)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"schemathesis ran longer than {RUN_TIMEOUT_S} s")
    text = out.decode(errors="replace")
    print(text[-1500:])  # the summary, shown with `pytest -s`
    assert proc.returncode == 0, text[-20000:]
    return text
