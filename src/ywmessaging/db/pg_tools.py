"""PostgreSQL's client programs (pg_dump, pg_restore): find one new enough, run one, bounded.

A tool must be at least as new as the servers it talks to; several majors may be installed
(Debian's /usr/lib/postgresql/*/bin, PATH, the pgserver wheel), so each candidate is asked for
its version. Passwords go through the environment, never the command line.
"""

from __future__ import annotations

import asyncio
import glob
import os
import re
import shutil
import warnings
from pathlib import Path

from ..errors import OperationError
from .dsn import PgTarget

TOOL_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\d+)")


class PgToolError(OperationError):
    """A tool is missing, failed or ran too long; the message is one line that says which."""


async def _tool_major(path: str) -> int | None:
    """The major version a pg_dump/pg_restore binary reports, None if it does not run."""
    try:
        proc = await asyncio.create_subprocess_exec(
            path, "--version", stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL)
    except OSError:
        return None
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 10)
    except TimeoutError:
        proc.kill()
        await asyncio.wait_for(proc.wait(), 5)
        return None
    m = TOOL_VERSION_RE.search(out.decode(errors="replace"))
    return int(m.group(1)) if m else None


def _tool_paths(name: str) -> list[str]:
    """Executables called `name`, best first: Debian's /usr/lib/postgresql/*/bin, PATH (which
    may hold Debian's pg_wrapper), the pgserver wheel."""
    paths = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    paths += [p for p in [shutil.which(name)] if p]
    with warnings.catch_warnings():  # importing pgserver warns about XDG dirs
        warnings.simplefilter("ignore")
        try:
            from . import embedded

            paths.append(str(embedded.bin_dir() / name))
        except ImportError:
            pass
    by_real: dict[str, str] = {}  # run the found name: Debian's pg_wrapper reads argv[0]
    for p in paths:
        by_real.setdefault(os.path.realpath(p), p)
    return [p for p in by_real.values() if os.access(p, os.X_OK)]


async def find_tool(name: str, min_major: int) -> str:
    """The oldest `name` (pg_dump, pg_restore) at least as new as the servers it talks to."""
    seen: list[tuple[int, int, str]] = []
    for rank, path in enumerate(_tool_paths(name)):
        major = await _tool_major(path)
        if major is not None:
            seen.append((major, rank, path))
    fits = sorted(t for t in seen if t[0] >= min_major)
    if not fits:
        have = ", ".join(f"{p} ({m})" for m, _, p in seen) or "none"
        raise PgToolError(f"no {name} of PostgreSQL {min_major} or newer found (have: {have})")
    return fits[0][2]


async def run_tool(path: str, target: PgTarget, timeout: float, *args: str) -> None:
    """Run pg_dump/pg_restore against `target` (password through the environment, never the
    command line), bounded by `timeout`; PgToolError with its first error line on failure."""
    env = dict(os.environ, PGCONNECT_TIMEOUT="10")
    if target.password is not None:
        env["PGPASSWORD"] = target.password
    name = Path(path).name
    proc = await asyncio.create_subprocess_exec(
        path, "--no-password", "-h", target.host, "-p", str(target.port), "-U", target.user,
        "-d", target.database, *args, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, env=env)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException as exc:
        if proc.returncode is None:
            proc.kill()
            await asyncio.wait_for(proc.wait(), 5)
        if isinstance(exc, TimeoutError):
            raise PgToolError(f"{name} did not finish within {timeout:g} s") from None
        raise
    if proc.returncode != 0:
        lines = [ln.strip() for ln in err.decode(errors="replace").splitlines() if ln.strip()]
        errors = [ln for ln in lines if "error:" in ln] or lines or [f"exit {proc.returncode}"]
        raise PgToolError(f"{name} failed: {errors[0]}")
