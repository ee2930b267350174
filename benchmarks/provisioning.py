"""Provisioning benchmark: ms per sign-up against a bare `CREATE DATABASE ... TEMPLATE`.

Serial: N tenants through `Provisioner.provision`, interleaved one-for-one with the baseline,
a bare `CREATE DATABASE <x> TEMPLATE <the server's template>` over one asyncpg connection,
so both see the same background load. Then N more tenants with concurrency 4 (tenants/s).

    .venv/bin/python -m benchmarks.provisioning [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from ywmessaging.db import pg
from ywmessaging.db.dsn import quote_ident
from ywmessaging.tenants.provisioning import Provisioned

from .common import (
    Deployment,
    deployment,
    percentile,
    progress,
    provision_many,
    server_version,
    target_line,
)

GOAL_RATIO = 5.0
# cumulative marks in Provisioned.timings_ms, turned into per-step durations
STEPS = ("placement", "database", "migrate", "activate")


def add_steps(steps: dict[str, list[float]], t: Provisioned) -> None:
    """Append one tenant's per-step durations (timings_ms holds cumulative marks)."""
    prev = 0.0
    for name in STEPS:
        steps[name].append(t.timings_ms[name] - prev)
        prev = t.timings_ms[name]


def steps_line(steps: dict[str, list[float]]) -> str:
    """`placement 2.3  database 39.5 ...` (p50 of each step, ms)."""
    return "  ".join(f"{s} {percentile(v, 50):.1f}" for s, v in steps.items())


async def serial_with_baseline(dep: Deployment, n: int) -> tuple[list[float], list[float],
                                                                 dict[str, list[float]]]:
    """(provision ms, bare create ms, per-step ms) for n serial rounds.

    The bare databases carry the deployment's prefix, so its clean-up drops them (several
    at a time: each DROP DATABASE waits for a checkpoint).
    """
    prov_ms: list[float] = []
    bare_ms: list[float] = []
    steps: dict[str, list[float]] = {s: [] for s in STEPS}
    bare_names = [f"{dep.settings.db_prefix}_bare_{i}" for i in range(n)]
    conn = await pg.connect(dep.admin)
    try:
        tmpl = quote_ident(dep.template_db)
        for i in range(n):
            t0 = time.perf_counter()
            t = await dep.provisioner.provision(f"serial church {i}")
            prov_ms.append((time.perf_counter() - t0) * 1000)
            add_steps(steps, t)
            t0 = time.perf_counter()
            await conn.execute(f"CREATE DATABASE {quote_ident(bare_names[i])} TEMPLATE {tmpl}")
            bare_ms.append((time.perf_counter() - t0) * 1000)
            if (i + 1) % max(1, n // 5) == 0:
                progress(f"  serial: {i + 1}/{n} (provision + bare create)")
    finally:
        await conn.close()
    return prov_ms, bare_ms, steps


async def run(n: int, concurrency: int) -> None:
    """Measure, print the figures, end with the TARGET line."""
    async with deployment() as dep:
        conn = await pg.connect(dep.admin)
        try:
            version = server_version(await conn.fetchval("SELECT version()"))
        finally:
            await conn.close()
        progress(f"serial: {n} provisionings interleaved with {n} bare CREATE DATABASE")
        prov_ms, bare_ms, steps = await serial_with_baseline(dep, n)
        progress(f"concurrent: {n} provisionings, concurrency {concurrency}")
        made, wall = await provision_many(dep.provisioner, n, concurrency=concurrency,
                                          label="concurrent")
    conc_steps: dict[str, list[float]] = {s: [] for s in STEPS}
    for t in made:
        add_steps(conc_steps, t)

    p50, p95 = percentile(prov_ms, 50), percentile(prov_ms, 95)
    b50, b95 = percentile(bare_ms, 50), percentile(bare_ms, 95)
    ratio = p50 / b50
    print(f"provisioning benchmark: N={n}, {version}")
    print(f"  provision (serial)          p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
    print(f"  bare CREATE DATABASE (base) p50 {b50:7.1f} ms   p95 {b95:7.1f} ms")
    print(f"  ratio p50/baseline_p50      {ratio:.2f}")
    print(f"  serial steps, p50 ms:       {steps_line(steps)}")
    print(f"  concurrent (x{concurrency})           {n / wall:.1f} tenants/s "
          f"({wall:.2f} s for {n})")
    print(f"  concurrent steps, p50 ms:   {steps_line(conc_steps)}")
    print(target_line("provisioning_p50_vs_bare_create", ratio, GOAL_RATIO, "<="))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 tenants instead of 40")
    parser.add_argument("-n", type=int, default=None, help="tenants per phase (overrides)")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    n = args.n or (10 if args.quick else 40)
    asyncio.run(run(n, args.concurrency))


if __name__ == "__main__":
    main()
