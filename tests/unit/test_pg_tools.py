"""PostgreSQL client programs: the version pick, and one clear line when a run fails or hangs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ywmessaging.db.dsn import PgTarget
from ywmessaging.db.pg_tools import PgToolError, find_tool, run_tool

NOWHERE = PgTarget.parse("postgresql://nobody@127.0.0.1:1/x")


def fake_tool(tmp_path: Path, body: str) -> str:
    path = tmp_path / "pg_fake"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


async def test_no_tool_new_enough_is_refused_with_what_was_found() -> None:
    with pytest.raises(PgToolError, match=r"^no pg_dump of PostgreSQL 999 or newer found \(have"):
        await find_tool("pg_dump", 999)


async def test_the_oldest_fitting_tool_is_picked() -> None:
    path = await find_tool("pg_dump", 0)
    assert Path(path).name == "pg_dump"


async def test_a_failed_run_reports_its_first_error_line() -> None:
    path = await find_tool("pg_dump", 0)
    with pytest.raises(PgToolError, match=r"^pg_dump failed: .*error: ") as info:
        await run_tool(path, NOWHERE, 30, "--schema-only")
    assert "\n" not in str(info.value)


async def test_a_run_without_stderr_reports_its_exit_code(tmp_path: Path) -> None:
    with pytest.raises(PgToolError, match=r"^pg_fake failed: exit 3$"):
        await run_tool(fake_tool(tmp_path, "exit 3"), NOWHERE, 5)


async def test_a_run_that_hangs_is_killed_at_the_timeout(tmp_path: Path) -> None:
    with pytest.raises(PgToolError, match=r"^pg_fake did not finish within 0.2 s$"):
        await run_tool(fake_tool(tmp_path, "exec sleep 30"), NOWHERE, 0.2)
