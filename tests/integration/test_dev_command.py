"""`ywm dev` and the operator commands next to it: the dev deployment is found by itself, the
frontend may call the API, the simulator's webhooks are trusted on any port, and a port that
is taken is one clear line."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import build_app
from ywmessaging.commands import carrier_sim, devdeploy
from ywmessaging.config import Settings
from ywmessaging.db import embedded
from ywmessaging.messaging.signature import private_key, public_key_b64
from ywmessaging.messaging.simulator import start_simulator
from ywmessaging.ops.bootstrap import bootstrap


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("YWM_", "DATABASE_URL", "TELNYX_", "CARRIER_SIM_", "STRIPE_"))}
    env.update(YWM_LOG_LEVEL="warning", **extra)
    return env


def _ywm(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ywmessaging", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_dev_trusts_its_own_simulator_on_another_port() -> None:
    port = _free_port()
    for s in (Settings(telnyx_api_base=f"http://127.0.0.1:{port}", carrier_sim_port=port),
              Settings(telnyx_api_base=f"http://localhost:{port}/")):
        dev = carrier_sim.dev_settings(s, "127.0.0.1", 8080, port_free=lambda h, p: True)
        assert dev.carrier_sim_port == port
        assert dev.telnyx_api_base == f"http://127.0.0.1:{port}"
        assert dev.carrier_sim_signing_key
        assert dev.telnyx_public_key == public_key_b64(private_key(dev.carrier_sim_signing_key))
        assert dev.carrier_sim_webhook_url == "http://127.0.0.1:8080/webhooks/telnyx"
    # a `ywm carrier-sim` already on that port, sharing CARRIER_SIM_SIGNING_KEY
    seed = carrier_sim.generate_seed()
    s = Settings(telnyx_api_base=f"http://127.0.0.1:{port}", carrier_sim_signing_key=seed)
    dev = carrier_sim.dev_settings(s, "127.0.0.1", 8080, port_free=lambda h, p: False)
    assert dev.telnyx_public_key == public_key_b64(private_key(seed))
    assert dev.telnyx_api_base == s.telnyx_api_base


async def test_dev_webhooks_from_its_simulator_on_another_port_are_accepted(
        aiohttp_server: Any, api_settings: Settings) -> None:
    sim_port = _free_port()
    s = carrier_sim.dev_settings(
        api_settings.with_(telnyx_api_base=f"http://127.0.0.1:{sim_port}",
                           carrier_sim_port=sim_port), "127.0.0.1", 8080)
    app = build_app(s)
    app.cleanup_ctx.append(carrier_sim.dev_ctx(s))
    server = await aiohttp_server(app)
    sim = f"http://127.0.0.1:{sim_port}"
    async with aiohttp.ClientSession() as http:
        async with http.patch(f"{sim}/sim/config", json={
                "webhook_url": f"http://127.0.0.1:{server.port}/webhooks/telnyx"}) as resp:
            assert resp.status == 200
        async with http.post(f"{sim}/sim/inbound", json={
                "from": "+12025550111", "to": "+12025550999", "text": "hello"}) as resp:
            body = await resp.json()
    assert body["data"]["status"] == 200, body


async def test_dev_trusts_a_carrier_sim_already_running_there(
        aiohttp_server: Any, api_settings: Settings) -> None:
    running = await start_simulator()   # `ywm carrier-sim` in another terminal
    try:
        port = int(running.base_url.rsplit(":", 1)[1])
        s = await asyncio.to_thread(carrier_sim.dev_settings, api_settings.with_(
            telnyx_api_base=running.base_url, carrier_sim_port=port), "127.0.0.1", 8080)
        assert s.telnyx_public_key == running.public_key   # read from its /sim/stats
        app = build_app(s)
        app.cleanup_ctx.append(carrier_sim.dev_ctx(s))   # starts no second simulator
        server = await aiohttp_server(app)
        running.set_webhook_url(f"http://127.0.0.1:{server.port}/webhooks/telnyx")
        async with aiohttp.ClientSession() as http, http.post(
                f"{running.base_url}/sim/inbound",
                json={"from": "+12025550112", "to": "+12025550998", "text": "hi"}) as resp:
            body = await resp.json()
        assert body["data"]["status"] == 200, body
    finally:
        await running.stop()


@pytest.fixture
def dev_deployment(tmp_path: Path, settings: Settings) -> Iterator[tuple[Path, str]]:
    """What `ywm dev` leaves under YWM_DATA_DIR, its PostgreSQL running (as if `ywm dev` ran)."""
    data = tmp_path / "data"
    server, handle = embedded.start(data / "pg", cleanup_mode="stop")
    prefix = f"{settings.db_prefix}d"
    key = "dev-key-" + "k" * 40
    (data / "secret_key").write_text(key + "\n")
    s = Settings(data_dir=data, db_prefix=prefix, secret_key=key,
                 database_url=devdeploy.registry_target(server, Settings(db_prefix=prefix)).dsn(),
                 log_level="warning")
    asyncio.run(bootstrap(s))
    try:
        yield data, prefix
    finally:
        handle.cleanup()


def test_operator_commands_find_the_dev_deployment(dev_deployment: tuple[Path, str]) -> None:
    data, prefix = dev_deployment
    env = _env(YWM_DATA_DIR=str(data), YWM_DB_PREFIX=prefix)
    for args in (("tenants", "list"), ("servers", "list"), ("doctor",)):
        out = _ywm(env, *args)
        assert out.returncode == 0, (args, out.stderr)
        assert out.stderr.count("\n") == 1, out.stderr
        assert "using the ywm dev deployment" in out.stderr and str(data) in out.stderr
    assert "no findings" in out.stdout
    # the embedded server `ywm dev` runs is still up for it
    assert (data / "pg" / "postmaster.pid").exists()
    # with either setting given, nothing is guessed
    given = _ywm(_env(YWM_DATA_DIR=str(data), YWM_DB_PREFIX=prefix,
                      YWM_SECRET_KEY="s" * 40), "tenants", "list")
    assert given.returncode == 2 and "DATABASE_URL is not set" in given.stderr


def test_without_a_dev_deployment_the_error_says_how(tmp_path: Path) -> None:
    out = _ywm(_env(YWM_DATA_DIR=str(tmp_path / "none")), "tenants", "list")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "DATABASE_URL is not set" in out.stderr and "ywm dev" in out.stderr
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize("taken", ["api", "simulator"])
def test_a_taken_port_is_one_clear_line(tmp_path: Path, taken: str) -> None:
    api_port, sim_port = _free_port(), _free_port()
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", api_port if taken == "api" else sim_port))
        holder.listen()
        out = _ywm(_env(YWM_DATA_DIR=str(tmp_path), YWM_PORT=str(api_port),
                        CARRIER_SIM_PORT=str(sim_port)), "dev", timeout=60)
    assert out.returncode == 1, out
    assert out.stderr.count("\n") == 1, out.stderr
    busy = api_port if taken == "api" else sim_port
    assert f"port {busy} " in out.stderr and "already in use" in out.stderr
    assert "PostgreSQL" not in out.stdout   # refused before anything started
