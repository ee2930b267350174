"""`ywm tenants create|list` as an operator runs them: exit codes, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import orjson

from ywmessaging.config import Settings


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YWM_", "DATABASE_URL"))}
    assert settings.database_url and settings.secret_key
    env.update(DATABASE_URL=settings.database_url, YWM_SECRET_KEY=settings.secret_key,
               YWM_DB_PREFIX=settings.db_prefix, YWM_LOG_LEVEL="warning")
    env.update(extra)
    return env


def _ywm(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ywmessaging", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_create_then_list(settings: Settings) -> None:
    env = _env(settings)
    made = _ywm(env, "tenants", "create", "--name", "St. Luke's", "--json")
    assert made.returncode == 0, made.stderr
    tid = orjson.loads(made.stdout)["id"]
    listed = _ywm(env, "tenants", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["id"]: r for r in orjson.loads(listed.stdout)}
    assert rows[tid]["status"] == "active"
    assert rows[tid]["name"] == "St. Luke's"
    assert rows[tid]["server"] == "primary"
    table = _ywm(env, "tenants", "list", "--status", "active")
    assert tid in table.stdout and "SCHEMA" in table.stdout


def test_bad_names_are_one_line_exit_2(settings: Settings) -> None:
    env = _env(settings)
    for bad in ["", " ", "x" * 101]:
        out = _ywm(env, "tenants", "create", "--name", bad)
        assert out.returncode == 2
        assert out.stderr.count("\n") == 1 and out.stderr.startswith("ywm: ")


async def test_no_registry_row_left_by_bad_names(settings: Settings, registry_conn: Any) -> None:
    before = await registry_conn.fetchval("SELECT count(*) FROM tenants")
    out = _ywm(_env(settings), "tenants", "create", "--name", "")
    assert out.returncode == 2
    assert await registry_conn.fetchval("SELECT count(*) FROM tenants") == before


def test_unknown_argument_exits_2(settings: Settings) -> None:
    out = _ywm(_env(settings), "tenants", "create", "--name", "A", "--bogus")
    assert out.returncode == 2
    assert "--bogus" in out.stderr


def test_missing_database_url_is_one_line(settings: Settings) -> None:
    env = _env(settings)
    del env["DATABASE_URL"]
    out = _ywm(env, "tenants", "list")
    assert out.returncode == 2
    assert "DATABASE_URL" in out.stderr and out.stderr.count("\n") == 1


def test_unreachable_registry_is_one_line(settings: Settings) -> None:
    env = _env(settings, DATABASE_URL="postgresql://postgres@127.0.0.1:1/nowhere")
    out = _ywm(env, "tenants", "list")
    assert out.returncode == 1
    assert out.stderr.startswith("ywm: registry database") and out.stderr.count("\n") == 1
