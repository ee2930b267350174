"""Contract test: schemathesis against the real application on a loopback port.

The assembled app (every plug-in, real PostgreSQL) serves `openapi.yaml`; a church is signed
up and schemathesis (its CLI, in a subprocess with a time bound) sends generated requests,
valid and invalid, to every operation with that church's access token. Checks: no 5xx, every
status documented, every response body and content type as the spec says.

Excluded, because a generated call would end the shared session or the church and so turn every
later answer into a 401: `POST /api/v1/auth/logout`, `POST /api/v1/auth/password` (both end the
admin's sessions), `POST /api/v1/auth/mfa/enable` and `/auth/mfa/disable` (turning MFA on makes
the token's login flow differ), and `DELETE /api/v1/admins/{id}` (removing the owner).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.auth_fixtures import build_app
from ywmessaging.config import Settings
from ywmessaging.messaging.simulator import start_simulator

MAX_EXAMPLES = 6
RUN_TIMEOUT_S = 240.0
# operationIds of the excluded operations (see the module docstring)
EXCLUDED = ("logout", "changePassword", "enableMfa", "disableMfa", "removeAdmin")
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
            "church_name": "Contract Church", "email": f"contract-{os.getpid()}@example.org",
            "password": "Correct horse battery staple", "first_name": "Con",
            "last_name": "Tract", "timezone": "America/Chicago"})
        body = await resp.json()
        assert resp.status == 201, body
        return str(body["access_token"])


async def test_every_operation_honours_the_spec(aiohttp_server: Any, settings: Settings,
                                                 registry_conn: Any, tmp_path: Path) -> None:
    exe = _schemathesis()
    await registry_conn.execute("DELETE FROM login_throttle")
    sim = await start_simulator()
    try:
        app_settings = settings.with_(data_dir=tmp_path, telnyx_api_base=sim.base_url,
                                      telnyx_public_key=sim.public_key, telnyx_timeout=2.0)
        server = await aiohttp_server(build_app(app_settings))
        sim.set_webhook_url(f"http://127.0.0.1:{server.port}/webhooks/telnyx")
        await _run(exe, f"http://127.0.0.1:{server.port}", tmp_path)
    finally:
        await sim.stop()


async def _run(exe: str, base: str, tmp_path: Path) -> None:
    token = await _sign_up(base)
    args = [
        exe, "run", f"{base}/openapi.yaml", "--url", base,
        "-H", f"Authorization: Bearer {token}",
        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                    "response_schema_conformance",
        "--max-examples", str(MAX_EXAMPLES), "--phases", "examples,fuzzing",
        "--workers", "1", "--request-timeout", "10", "--seed", "5",
        "--suppress-health-check", "all", "--no-shrink", "--continue-on-failure",
        "--warnings", "off",
    ]
    for operation_id in (*EXCLUDED, *KNOWN_FAILURES):
        args += ["--exclude-operation-id", operation_id]
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""}, cwd=tmp_path)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"schemathesis ran longer than {RUN_TIMEOUT_S} s")
    text = out.decode(errors="replace")
    print(text[-1500:])  # the summary, shown with `pytest -s`
    assert proc.returncode == 0, text[-20000:]
