"""`ywm serve` and `ywm dev` as an operator runs them: real processes, real signals."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
from pathlib import Path

import aiohttp

from tests.conftest import TEST_SECRET
from ywmessaging.config import Settings

START_TIMEOUT = 30.0


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k != "DATABASE_URL" and not k.startswith(("YWM_", "PG"))}
    env.update(extra)
    return env


def _db_env(settings: Settings, **extra: str) -> dict[str, str]:
    assert settings.database_url
    return _env(DATABASE_URL=settings.database_url, YWM_SECRET_KEY=TEST_SECRET,
                YWM_DB_PREFIX=settings.db_prefix, **extra)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _ywm(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ywmessaging", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def _finish(proc: asyncio.subprocess.Process) -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(proc.communicate(), START_TIMEOUT)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _wait_ready(proc: asyncio.subprocess.Process, port: int) -> None:
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT
    async with aiohttp.ClientSession() as http:
        while asyncio.get_running_loop().time() < deadline:
            assert proc.returncode is None, "server exited early"
            try:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("server never became ready")


async def _serve_until_sigterm(args: list[str], env: dict[str, str], port: int) -> tuple[str, str]:
    proc = await _ywm(*args, "--port", str(port), env=env)
    try:
        await _wait_ready(proc, port)
    except BaseException:
        proc.kill()
        _, out, err = await _finish(proc)
        raise AssertionError(f"stdout:\n{out}\nstderr:\n{err}") from None
    proc.send_signal(signal.SIGTERM)
    code, out, err = await _finish(proc)
    assert code == 0, err
    return out, err


async def test_serve_without_database_url_exits_2_naming_it() -> None:
    code, _out, err = await _finish(await _ywm("serve", env=_env()))
    assert code == 2
    assert "DATABASE_URL" in err
    assert len(err.strip().splitlines()) == 1


async def test_serve_refuses_an_outdated_registry(settings: Settings, tmp_path: Path) -> None:
    sql = tmp_path / "sql"
    shutil.copytree(settings.sql_dir, sql)
    (sql / "registry" / "migrations" / "0999_add_future_thing.sql").write_text("SELECT 1;\n")
    code, _out, err = await _finish(
        await _ywm("serve", env=_db_env(settings, YWM_SQL_DIR=str(sql)))
    )
    assert code == 1
    assert "ywm migrate" in err
    assert len(err.strip().splitlines()) == 1


async def test_serve_runs_and_stops_cleanly_on_sigterm(settings: Settings) -> None:
    port = _free_port()
    out, _err = await _serve_until_sigterm(["serve"], _db_env(settings), port)
    assert '"event":"http_server_listening"' in out
    assert '"event":"draining_started"' in out
    assert TEST_SECRET not in out


async def test_dev_with_database_url_bootstraps_and_serves(settings: Settings,
                                                           tmp_path: Path) -> None:
    port = _free_port()
    env = _db_env(settings, YWM_DATA_DIR=str(tmp_path / "data"))
    out, _err = await _serve_until_sigterm(["dev"], env, port)
    assert "dev: registry migrated to version" in out
    assert f"dev: serving on http://127.0.0.1:{port}" in out
    assert not (tmp_path / "data" / "pg").exists()  # DATABASE_URL given: no embedded server
