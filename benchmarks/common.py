"""Shared benchmark plumbing: a throwaway deployment, percentiles, the TARGET line, and the
main of a benchmark whose only option is --quick.

Every benchmark runs against its own registry and template under a unique prefix
(`ywmb<hex>`), so it never touches other work on the same server, and drops all of it in
`finally` whatever happened.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import secrets
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from tests.conftest import ROOMY_CATALOGUE
from tests.pgcluster import drop_everything, find_server

from ywmessaging.config import Settings
from ywmessaging.crypto import SecretBox
from ywmessaging.db import pg
from ywmessaging.db.dsn import PgTarget
from ywmessaging.ops.bootstrap import bootstrap
from ywmessaging.tenants.provisioning import Provisioned, Provisioner

BENCH_SECRET = "benchmark-secret-key-" + "b" * 32


@dataclass
class Deployment:
    """A bootstrapped registry, its template and a Provisioner, all under one prefix."""

    admin: PgTarget  # superuser on the server, maintenance database
    settings: Settings
    box: SecretBox
    registry: Any  # asyncpg pool on the registry
    provisioner: Provisioner
    template_db: str


def progress(message: str) -> None:
    """One progress line on stderr (stdout keeps only results)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def quiet_logs() -> None:
    """Service logs at warning and above, on stderr, so stdout stays readable."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


@asynccontextmanager
async def deployment(registry_pool_max: int = 8,
                     prefix_base: str = "ywmb") -> AsyncIterator[Deployment]:
    """Bootstrap a throwaway deployment under `<prefix_base><hex>`; drop every database and
    role it made afterwards."""
    quiet_logs()
    admin, handle = await find_server()
    prefix = f"{prefix_base}{secrets.token_hex(3)}"
    settings = Settings(
        database_url=admin.with_db(f"{prefix}_registry").dsn(), secret_key=BENCH_SECRET,
        db_prefix=prefix, log_format="console", log_level="warning",
        billing_catalogue=ROOMY_CATALOGUE,  # a benchmark church passes real plan limits
    )
    box = SecretBox(BENCH_SECRET)
    progress(f"server {admin.describe()}, prefix {prefix}: bootstrapping")
    try:
        await bootstrap(settings)
        conn = await pg.connect(PgTarget.parse(settings.require_database_url()))
        try:
            template_db = await conn.fetchval("SELECT template_db FROM db_servers LIMIT 1")
        finally:
            await conn.close()
        registry = await pg.create_pool(
            PgTarget.parse(settings.require_database_url()), max_size=registry_pool_max
        )
        provisioner = Provisioner(registry, settings, box)
        try:
            yield Deployment(admin, settings, box, registry, provisioner, template_db)
        finally:
            await provisioner.close()
            await registry.close()
    finally:
        progress(f"cleaning up every database and role named {prefix}_*")
        t0 = time.perf_counter()
        await drop_databases_concurrently(admin, prefix)
        await drop_everything(admin, prefix)
        progress(f"cleaned up in {time.perf_counter() - t0:.1f} s")
        if handle is not None:
            handle.cleanup()


async def drop_databases_concurrently(admin: PgTarget, prefix: str, workers: int = 8) -> None:
    """Drop the prefix's databases several at a time.

    Every DROP DATABASE waits for a forced checkpoint (PostgreSQL 15); concurrent drops
    share one, so this is many times faster than dropping one after another.
    """
    conn = await pg.connect(admin)
    try:
        like = prefix.replace("_", r"\_") + r"\_%"
        names = [r["datname"] for r in await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1 AND NOT datistemplate", like
        )]
    finally:
        await conn.close()
    queue: asyncio.Queue[str] = asyncio.Queue()
    for name in names:
        queue.put_nowait(name)

    async def worker() -> None:
        c = await pg.connect(admin)
        try:
            while not queue.empty():
                await pg.drop_database(c, queue.get_nowait())
        finally:
            await c.close()

    async with asyncio.TaskGroup() as tg:
        for _ in range(min(workers, len(names))):
            tg.create_task(worker())


async def provision_many(
    prov: Provisioner, n: int, *, concurrency: int, label: str = "bench",
    on_done: Callable[[Provisioned, float], Awaitable[None] | None] | None = None,
) -> tuple[list[Provisioned], float]:
    """Provision `n` tenants, at most `concurrency` at once; (tenants, wall seconds)."""
    sem = asyncio.Semaphore(concurrency)
    done: list[Provisioned] = []
    step = max(1, n // 10)

    async def one(i: int) -> None:
        async with sem:
            t0 = time.perf_counter()
            t = await prov.provision(f"{label} church {i}")
            elapsed = (time.perf_counter() - t0) * 1000
            done.append(t)
            if on_done is not None:
                maybe = on_done(t, elapsed)
                if maybe is not None:
                    await maybe
            if len(done) % step == 0 or len(done) == n:
                progress(f"  {label}: {len(done)}/{n} provisioned")

    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for i in range(n):
            tg.create_task(one(i))
    return done, time.perf_counter() - t0


def percentile(values: Sequence[float], pct: float) -> float:
    """The `pct`-th percentile (0–100) by linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    lo, hi = math.floor(rank), math.ceil(rank)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def target_line(name: str, value: float, goal: float, op: str = "<=") -> str:
    """`TARGET <name> value=<v> goal=<op><g> pass|miss` for a lower-is-better figure."""
    ok = value <= goal if op == "<=" else value < goal
    return f"TARGET {name} value={value:.3g} goal={op}{goal:g} {'pass' if ok else 'miss'}"


def server_version(conn_version: str) -> str:
    """`PostgreSQL 15.20` from a `SELECT version()` string."""
    return " ".join(conn_version.split()[:2])


def quick_main(doc: str | None, run: Callable[[bool], Coroutine[Any, Any, list[str]]],
               quick_help: str = "small sizes (under a minute)") -> None:
    """A benchmark's main: parse --quick, run, print the TARGET lines."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    args = parser.parse_args()
    for line in asyncio.run(run(args.quick)):
        print(line)
