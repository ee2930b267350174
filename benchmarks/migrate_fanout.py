"""Migration fan-out benchmark: `ywm migrate` over every tenant against serial `psql`.

Provisions N tenants (200; 50 with --quick), then times through `ops.fanout.migrate`:
(a) a no-op run (everything current), (b) a run applying one added statement
(`ALTER TABLE members ADD COLUMN ...`, in a copy of the sql folder). Baselines in the same run:
one `psql` process per tenant, serially, reading the version table (for a) and applying the
same kind of statement (for b).

    .venv/bin/python -m benchmarks.migrate_fanout [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ywmessaging.config import Settings
from ywmessaging.db import migrations, pg
from ywmessaging.db.dsn import PgTarget
from ywmessaging.ops.fanout import MigrateOptions, TenantResult, migrate

from .common import deployment, percentile, progress, provision_many, target_line

FULL_N = 200
GOAL_NOOP_S = 5.0  # for 200 tenants; scaled with N
GOAL_ONE_STATEMENT_S = 20.0
BENCH_MIGRATION = "9001_bench_add_column"  # numbered above any product migration
BENCH_SQL = "ALTER TABLE members ADD COLUMN bench_col text"
PSQL_READ = "SELECT migration_id FROM _yoyo_migration"
PSQL_DDL = "ALTER TABLE members ADD COLUMN bench_psql_col text"


@dataclass
class Timer:
    """A migrate observer that notes when the tenant fan-out starts and how each ends."""

    t0: float = field(default_factory=time.perf_counter)
    fanout_start: float | None = None
    results: list[TenantResult] = field(default_factory=list)

    def started(self, run_id: int, total: int) -> None:
        """Registry and templates are done; tenants begin."""
        self.fanout_start = time.perf_counter()
        progress(f"  run {run_id}: {total} tenants, prepared in "
                 f"{self.fanout_start - self.t0:.2f} s")

    def finished_one(self, result: TenantResult) -> None:
        """One tenant ended."""
        self.results.append(result)
        if len(self.results) % 50 == 0:
            progress(f"  {len(self.results)} tenants migrated")


@dataclass
class Timed:
    """One migrate run's figures."""

    total_s: float
    prepare_s: float
    per_tenant_ms: list[float]
    failed: int


async def timed_migrate(settings: Settings, concurrency: int) -> Timed:
    """One full `migrate` run: wall time, registry+template part, per-tenant durations."""
    timer = Timer()
    report = await migrate(settings, MigrateOptions(concurrency=concurrency), timer)
    end = time.perf_counter()
    start = timer.fanout_start or end
    failed = report.count("failed") + report.count("skipped")
    for r in report.results:
        if r.status != "ok":
            progress(f"  tenant {r.tenant_id} {r.status}: {r.error}")
    return Timed(end - timer.t0, start - timer.t0, [r.duration_ms for r in report.results],
                 failed)


async def psql_serial(dsns: list[str], statement: str) -> float:
    """Seconds to run `statement` in every database, one `psql` process after another."""
    t0 = time.perf_counter()
    for dsn in dsns:
        proc = await asyncio.create_subprocess_exec(
            "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", statement,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed: {err.decode().strip()}")
    return time.perf_counter() - t0


def with_bench_migration(settings: Settings, tmp: Path) -> Settings:
    """Settings whose sql folder is a copy with one more tenant migration."""
    sql = tmp / "sql"
    shutil.copytree(settings.sql_dir, sql)
    (sql / "tenant" / "migrations" / f"{BENCH_MIGRATION}.sql").write_text(
        f"-- benchmark: one statement\n{BENCH_SQL};\n"
    )
    migrations.clear_cache()
    return settings.with_(sql_dir=sql)


async def run(n: int, concurrency: int) -> None:
    """Provision, measure, print the figures and the TARGET lines."""
    scale = n / FULL_N
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ywmb-sql-") as tmp:
        async with deployment() as dep:
            progress(f"provisioning {n} tenants, concurrency 4")
            tenants, wall = await provision_many(dep.provisioner, n, concurrency=4,
                                                 label="fanout")
            figures["provision_rate"] = n / wall
            dsns = [dep.admin.with_db(t.db_name).dsn() for t in tenants]
            progress(f"(a) no-op migrate over {n} tenants")
            figures["noop"] = await timed_migrate(dep.settings, concurrency)
            progress(f"(a') baseline: psql serial `{PSQL_READ}`")
            figures["psql_read"] = await psql_serial(dsns, PSQL_READ)
            progress(f"(b) migrate applying {BENCH_MIGRATION} over {n} tenants")
            bench = with_bench_migration(dep.settings, Path(tmp))
            figures["one"] = await timed_migrate(bench, concurrency)
            await check_column(dep.admin, tenants[0].db_name)
            progress(f"(b') baseline: psql serial `{PSQL_DDL}`")
            figures["psql_ddl"] = await psql_serial(dsns, PSQL_DDL)
        migrations.clear_cache()
    report(n, concurrency, scale, figures)


async def check_column(admin: PgTarget, db_name: str) -> None:
    """Fail loudly if the benchmark migration did not really reach a tenant."""
    conn = await pg.connect(admin.with_db(db_name))
    try:
        ok = await conn.fetchval(
            "SELECT 1 FROM information_schema.columns "
            "WHERE table_name = 'members' AND column_name = 'bench_col'"
        )
    finally:
        await conn.close()
    if not ok:
        raise RuntimeError(f"{BENCH_MIGRATION} was not applied to {db_name}")


def report(n: int, concurrency: int, scale: float, f: dict[str, Any]) -> None:
    """Print the figures; the TARGET lines last."""
    noop, one = f["noop"], f["one"]
    print(f"migration fan-out benchmark: N={n} tenants, concurrency {concurrency} per server")
    print(f"  provisioning them (x4)       {f['provision_rate']:.1f} tenants/s")
    for label, t, base, base_label in (
        ("no-op migrate", noop, f["psql_read"], "psql serial read"),
        ("one-statement migrate", one, f["psql_ddl"], "psql serial DDL"),
    ):
        fan = t.total_s - t.prepare_s
        print(f"  {label:<28} {t.total_s:6.2f} s  ({n / t.total_s:.0f} tenants/s; registry+"
              f"template {t.prepare_s:.2f} s, tenants {fan:.2f} s; per tenant p50 "
              f"{percentile(t.per_tenant_ms, 50):.0f} ms p95 "
              f"{percentile(t.per_tenant_ms, 95):.0f} ms; failed {t.failed})")
        print(f"  {base_label:<28} {base:6.2f} s  -> ratio migrate/psql {t.total_s / base:.2f}")
    suffix = str(n)
    print(target_line(f"migrate_noop_{suffix}", noop.total_s, GOAL_NOOP_S * scale, "<"))
    print(target_line(f"migrate_one_statement_{suffix}", one.total_s,
                      GOAL_ONE_STATEMENT_S * scale, "<"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"50 tenants instead of {FULL_N} (goals scaled to match)")
    parser.add_argument("-n", type=int, default=None, help="tenants (overrides; goals scale)")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="tenants per server at once (default YWM_MIGRATE_CONCURRENCY, 4)")
    args = parser.parse_args()
    n = args.n or (50 if args.quick else FULL_N)
    asyncio.run(run(n, args.concurrency or Settings().migrate_concurrency))


if __name__ == "__main__":
    main()
