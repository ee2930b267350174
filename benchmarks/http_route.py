"""HTTP route benchmark: the real `GET /api/v1/members?limit=50` of a real `ywm serve` process,
side by side with a plain aiohttp + asyncpg server doing the same work, interleaved in rounds.

Everything runs on a private PostgreSQL 15 cluster (tests/second_cluster.py, as `pool_churn`):
`max_connections` 100, tenant roles logging in with SCRAM-SHA-256 over TCP, the superuser
`postgres` with trust, `pg_stat_statements` preloaded; the cluster is deleted whole at the end.
The service is driven only from the outside: HTTP to `ywm serve` (started as `python -m
ywmessaging serve` with its defaults, `YWM_TRUSTED_PROXIES=127.0.0.1`) and SQL to set up and
watch the cluster. So the benchmark keeps working while the service's internals change.

Setup, through the real routes: N churches (1,000; 200 with `--quick`) sign up with `POST
/api/v1/auth/register` (a few at a time; each church sends its own `X-Forwarded-For` address,
as if behind a proxy, so the per-address sign-up limit does not refuse the benchmark), import
200 members each with `POST /api/v1/members/import` (CSV, polled when it answers 202), and every
admin logs in (`POST /api/v1/auth/login`). Before each server's turn, every admin whose token
would expire within the turn logs in again (access tokens live 15 minutes).

Rounds (5; 1 with `--quick`), the order of the two servers alternating: each server is started
fresh, then for each pattern a warm-up and a measured window of `wrk -t2 -c32 -d10s` (or, without
wrk, an aiohttp client in its own process; benchmarks/http_route_load.py) on `GET
/api/v1/members?limit=50` with the churches' real access tokens; then the server is stopped, so
the two never hold connections at once. Patterns: `one` (one warm church), `uniform` over the N
churches, `zipf` (s = 1.1 over the N churches). Figures are medians over rounds.

The baseline (benchmarks/http_route_plain.py, its own process, uvloop as the service): HS256
verification with pyjwt of the same tokens (the service's access key, derived by the parent),
one asyncpg pool per tenant (min 0, max 2) under an LRU of 50 that closes evicted pools, each
tenant reached as its own role with its own password (read from the registry and decrypted
once by the parent), a page of 50 members with the route's columns, orjson.

Measured per window: 2xx req/s, p50 and p99 latency (every response), errors (non-2xx by status,
socket errors), peak client connections on the server (pg_stat_activity every 100 ms, the
benchmark's own two monitoring sessions left out), tenant connections opened per second
(pg_stat_database.sessions), the server process's CPU per request, statements per request, and
the RSS of the server process after the uniform window. `too many clients` (SQLSTATE 53300) is
counted in the private cluster's log during each server's windows.

Statements per request: `pg_stat_statements` is reset at the start of a window and read at its
end; calls in the tenant databases and the registry are summed per statement and divided by the
2xx answers. In the wrk windows the requests wrk abandons in flight when it stops (up to 32) are
in the statements but not in the answers, so those figures run a few percent high; the two
targets come from passes the benchmark sends itself and awaits to the last answer (below).
The service's background work is measured, then taken out: after its patterns in the first
round (and 3 s for requests still in flight) the service sits idle for 32 s (longer than its
health-probe interval and its registry cache's TTL, with its defaults) with about 50 pools
open, and what it runs then is background. In the registry (timers: heartbeats, webhook
sweeps, and the reset statements of the registry pool's connections, which requests share)
each background statement's idle rate times the window's length is taken off its count; in the
tenant databases (health probes: a `SELECT 1` per open pool, all at once every interval) a
statement seen while idle is left out unless it ran at least once per two answers (then it is
on the request path). The statements of both passes are listed.

Warm pass: right after the first `one` window, 1,000 requests for the warm church, 8 at a
time. Cold pass: right after the idle wait, K churches (up to 200, four times the pool cap of
50) requested one after another, twice in the same order; the second sweep is counted. Under
any LRU of fewer than K pools each of its requests finds its church's pool evicted (the tenant
sessions opened per request are printed to show it), while the church's registry entry,
fetched again seconds before in the first sweep (the idle wait let every cached entry expire),
is still cached: the design's cold request, one connect and the request's own statement. The
plain server gets the same passes.

RSS at scale: after the rounds, more churches sign up through the same route (without members)
until M are registered (5,000; 500 with `--quick`; fewer if the disk would not hold them
with 15 GiB to spare: each tenant database takes about 10 MiB here), then a fresh service
process runs a uniform window over all M churches (their admins' tokens) and its VmRSS is
`rss_mb_<M>_churches`. The plain server is run the same way for reference.

Targets: `one_vs_plain` ≥ 0.9, `uniform<N>_vs_plain` ≥ 1.0, `zipf<N>_vs_plain` ≥ 1.0 (req/s),
`uniform<N>_p99_vs_plain` ≤ 1.0, `warm_statements_per_request` = 1 and
`cold_statements_per_request` = 1 (pass within ±0.05), `too_many_clients` = 0 (service windows),
`rss_mb_<M>_churches` ≤ 150.

    .venv/bin/python -m benchmarks.http_route [--quick] [-n N] [--rss-churches M] [--rounds R]
        [--seconds S] [--client wrk|aiohttp]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from ywmessaging.config import Settings

from .common import progress, target_line
from .http_route_load import PATTERNS, LoadGenerator, LoadSpec, have_wrk
from .http_route_setup import (
    Church,
    Cluster,
    Fleet,
    Observer,
    Proc,
    StatementCounts,
    Window,
    log_events,
    private_cluster,
)

PATH = "/api/v1/members?limit=50"
COLD_K = 200
WARM_REQUESTS = 1000
SETTLE_S = 3.0  # for requests still in flight when wrk stops (lease timeout 2 s)
GOALS = {"one_vs_plain": 0.9, "uniform_vs_plain": 1.0, "zipf_vs_plain": 1.0,
         "uniform_p99_vs_plain": 1.0, "rss_mb": 150.0}
STATEMENT_TOLERANCE = 0.05
# long enough to see rounds of the service's health probes and heartbeats, and for every
# registry entry it cached to expire (its defaults)
_DEFAULTS = Settings()
IDLE_S = max(_DEFAULTS.health_interval, _DEFAULTS.heartbeat_interval,
             _DEFAULTS.registry_cache_ttl) + 2
SERVERS = ("service", "plain")


@dataclass
class Sizes:
    n: int
    rss_churches: int
    rounds: int
    warmup: int
    seconds: int
    idle: float
    use_wrk: bool
    signup_concurrency: int = 8


@dataclass
class Pass:
    """Requests sent by the benchmark itself and all answered: exact statement counts."""

    requests: int = 0
    ok: int = 0
    seconds: float = 0.0
    sessions: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    statements: StatementCounts = field(default_factory=StatementCounts)
    too_many_clients: int = 0


@dataclass
class Results:
    windows: dict[tuple[str, str], list[Window]] = field(default_factory=dict)
    warm: dict[str, Pass] = field(default_factory=dict)
    cold: dict[str, Pass] = field(default_factory=dict)
    idle: StatementCounts = field(default_factory=StatementCounts)
    idle_s: float = 0.0
    scale: dict[str, Window] = field(default_factory=dict)
    scale_churches: int = 0
    setup_s: dict[str, float] = field(default_factory=dict)

    def add(self, w: Window) -> None:
        self.windows.setdefault((w.server, w.pattern), []).append(w)


class Bench:
    """The run: cluster, fleet of churches, the two servers, the observer."""

    def __init__(self, z: Sizes, cluster: Cluster, workdir: Path) -> None:
        self.z, self.cluster, self.workdir = z, cluster, workdir
        self.fleet = Fleet(cluster, workdir)
        self.obs = Observer(cluster)
        self.load = LoadGenerator(workdir, z.use_wrk)
        self.res = Results()
        self.seed = 1

    def spec(self, proc: Proc, tokens: list[str], pattern: str, seconds: int) -> LoadSpec:
        self.seed += 1
        return LoadSpec(url=proc.url(PATH), tokens=tokens, pattern=pattern, seed=self.seed,
                        seconds=seconds)

    async def window(self, proc: Proc, tokens: list[str], pattern: str, rnd: int) -> Window:
        """A warm-up, then a measured window."""
        progress(f"  {proc.name} {pattern}: {self.z.warmup} s warm-up + {self.z.seconds} s")
        await self.load.run(self.spec(proc, tokens, pattern, self.z.warmup))
        w = Window(proc.name, pattern, rnd)
        await self.obs.begin(w, proc)
        async with self.obs.sampling(w):
            w.load = await self.load.run(self.spec(proc, tokens, pattern, self.z.seconds))
        await self.obs.end(w, proc)
        if pattern == "uniform":
            w.rss_mb = proc.rss_mb()
        progress(f"    {w.load.rps:.0f} req/s, p99 {w.load.p99_ms:.1f} ms, errors "
                 f"{w.load.errors() or 'none'}")
        return w

    async def counted(self, proc: Proc, churches: list[Church], concurrency: int) -> Pass:
        """One request per entry of `churches` (its token), `concurrency` at a time, every
        answer awaited; statements, sessions and refusals counted around them."""
        out = Pass()
        await asyncio.sleep(1.1)  # pg_stat_database reports within about a second
        sessions0 = await self.obs.tenant_sessions()
        await self.obs.reset_statements()
        offset = self.obs.log_offset()
        t0 = time.perf_counter()
        await self.requests(proc, churches, concurrency, out)
        out.seconds = time.perf_counter() - t0
        out.statements = await self.obs.statements()
        out.too_many_clients = self.obs.too_many_clients(offset)
        await asyncio.sleep(1.1)
        out.sessions = await self.obs.tenant_sessions() - sessions0
        return out

    @staticmethod
    async def requests(proc: Proc, churches: list[Church], concurrency: int,
                       out: Pass | None = None) -> None:
        queue = list(reversed(churches))
        async with aiohttp.ClientSession() as http:

            async def worker() -> None:
                while queue:
                    c = queue.pop()
                    t0 = time.perf_counter()
                    async with http.get(proc.url(PATH), headers=c.auth()) as resp:
                        await resp.read()
                    if out is not None:
                        out.requests += 1
                        out.ok += 200 <= resp.status < 300
                        out.latencies_ms.append((time.perf_counter() - t0) * 1000)

            await asyncio.gather(*(worker() for _ in range(concurrency)))

    async def warm_pass(self, proc: Proc) -> Pass:
        """WARM_REQUESTS requests for the warm church, 8 at a time."""
        progress(f"  {proc.name} warm pass: {WARM_REQUESTS} requests, 8 at a time")
        return await self.counted(proc, self.fleet.churches[:1] * WARM_REQUESTS, 8)

    async def cold_pass(self, proc: Proc) -> Pass:
        """Two sequential sweeps over K churches; the second counted."""
        churches = self.fleet.churches[:self.z.n][-COLD_K:]
        progress(f"  {proc.name} cold pass: {len(churches)} churches, 2 sweeps")
        await self.requests(proc, churches, 1)
        return await self.counted(proc, churches, 1)

    async def idle(self, proc: Proc) -> None:
        """What the service runs by itself: the background statements."""
        progress(f"  {proc.name} idle for {self.z.idle:g} s (background statements)")
        await asyncio.sleep(SETTLE_S)
        await self.obs.reset_statements()
        t0 = time.perf_counter()
        await asyncio.sleep(self.z.idle)
        self.res.idle = await self.obs.statements()
        self.res.idle_s = time.perf_counter() - t0

    async def turn(self, server: str, rnd: int) -> None:
        """One server's part of a round: started fresh, three patterns, stopped."""
        base = self.fleet.churches[:self.z.n]
        await self.fleet.fresh_tokens(base, margin=self.turn_seconds(rnd) + 60)
        proc = self.fleet.service() if server == "service" else self.fleet.plain(base)
        await proc.start()
        try:
            for pattern in PATTERNS:
                tokens = [c.token for c in base]
                self.res.add(await self.window(proc, tokens, pattern, rnd))
                if rnd == 0 and pattern == "one":
                    self.res.warm[server] = await self.warm_pass(proc)
            if rnd == 0:
                if server == "service":
                    await self.idle(proc)
                self.res.cold[server] = await self.cold_pass(proc)
        finally:
            await proc.stop()

    def turn_seconds(self, rnd: int) -> float:
        """A generous estimate of one server's turn in round `rnd`."""
        per_window = self.z.warmup + self.z.seconds + 2
        return len(PATTERNS) * per_window + 10 + (60 + self.z.idle if rnd == 0 else 0)

    async def run(self) -> None:
        await self.obs.open()
        t0 = time.perf_counter()
        await self.fleet.setup(self.z.n, self.z.signup_concurrency, self.res.setup_s)
        progress(f"setup done in {time.perf_counter() - t0:.0f} s")
        for rnd in range(self.z.rounds):
            order = SERVERS if rnd % 2 == 0 else SERVERS[::-1]
            progress(f"round {rnd + 1}/{self.z.rounds}: {' then '.join(order)}")
            for server in order:
                await self.turn(server, rnd)
        await self.scale()

    async def scale(self) -> None:
        """Sign-ups up to M churches, then a uniform window over all of them per server."""
        m = self.fleet.affordable(self.z.rss_churches)
        self.res.scale_churches = m
        if m > len(self.fleet.churches):
            t0 = time.perf_counter()
            await self.fleet.sign_up_more(m - len(self.fleet.churches),
                                          self.z.signup_concurrency)
            self.res.setup_s["scale sign-ups"] = time.perf_counter() - t0
        everyone = self.fleet.churches[:m]
        await self.fleet.fresh_tokens(everyone, margin=4 * (self.z.warmup + self.z.seconds) + 60)
        progress(f"scale: {m} churches, uniform over all of them")
        for server in SERVERS:
            proc = self.fleet.service() if server == "service" else self.fleet.plain(everyone)
            await proc.start()
            try:
                w = await self.window(proc, [c.token for c in everyone], "uniform", -1)
                self.res.scale[server] = w
            finally:
                await proc.stop()


# --- report -----------------------------------------------------------------------------------

def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass
class PerRequest:
    """Statements per 2xx answer, the service's background taken out."""

    tenant: float
    registry: float
    background: float

    @property
    def total(self) -> float:
        return self.tenant + self.registry


def per_request(counts: StatementCounts, ok: int, seconds: float, res: Results) -> PerRequest:
    """Statements per 2xx answer by database class. Background (what the idle service ran):
    in the registry (timers: heartbeats, sweeps, and the reset of the registry pool's
    connections they share with requests) the idle rate of each statement times the window's
    length is taken off; in the tenant databases (health probes, bursts every interval) a
    statement seen while idle is left out altogether unless it ran at least once per two
    answers (then it is on the request path)."""
    out = {"tenant": 0.0, "registry": 0.0, "background": 0.0}
    for key, n in counts.calls.items():
        idle_n = res.idle.calls.get(key, 0)
        taken = 0.0
        if idle_n and key[0] == "registry" and res.idle_s:
            taken = min(float(n), idle_n / res.idle_s * seconds)
        elif idle_n and n < ok / 2:
            taken = n
        out["background"] += taken
        out[key[0] if key[0] == "registry" else "tenant"] += n - taken
    return PerRequest(*(v / ok if ok else float("nan") for v in out.values()))


def merged_statements(windows: list[Window]) -> tuple[StatementCounts, int, float]:
    total = StatementCounts()
    ok, seconds = 0, 0.0
    for w in windows:
        total.add(w.statements)
        ok += w.load.ok
        seconds += w.load.seconds
    return total, ok, seconds


def window_line(label: str, ws: list[Window], res: Results) -> str:
    rps = [w.load.rps for w in ws]
    errors: dict[str, int] = {}
    for w in ws:
        for k, v in w.load.errors().items():
            errors[k] = errors.get(k, 0) + v
    counts, ok, secs = merged_statements(ws)
    st = per_request(counts, ok, secs, res)
    cpu = sum(w.cpu_s for w in ws)
    rss = [w.rss_mb for w in ws if w.rss_mb]
    rounds = ", ".join(f"{r:.0f}" for r in rps)
    return (f"  {label}: {med(rps):.0f} req/s (rounds: {rounds}), p50 "
            f"{med([w.load.p50_ms for w in ws]):.2f} ms, p99 "
            f"{med([w.load.p99_ms for w in ws]):.2f} ms; errors {errors or 'none'}\n"
            f"      peak connections {max(w.peak_total for w in ws)} on the server "
            f"({max(w.peak_tenant for w in ws)} to tenant databases); tenant connections opened "
            f"{sum(w.sessions for w in ws) / secs:.0f}/s; statements per request "
            f"{st.total:.2f} (tenant {st.tenant:.2f}, registry {st.registry:.2f}); server CPU "
            f"{1000 * cpu / max(ok, 1):.2f} ms per request"
            + (f"; RSS {med(rss):.0f} MB" if rss else ""))


def top_statements(counts: StatementCounts, per: float, limit: int = 8) -> list[str]:
    """The most frequent statements, calls divided by `per` (answers or seconds)."""
    rows = sorted(counts.calls.items(), key=lambda kv: -kv[1])[:limit]
    return [f"      {n / per if per else float('nan'):6.2f}  {cls:8s} "
            f"{counts.text[(cls, q)][:90]}" for (cls, q), n in rows]


def at_least(name: str, value: float, goal: float) -> str:
    ok = value >= goal
    return f"TARGET {name} value={value:.3g} goal=>={goal:g} {'pass' if ok else 'miss'}"


def equals_one(name: str, value: float) -> str:
    ok = abs(value - 1.0) <= STATEMENT_TOLERANCE
    return f"TARGET {name} value={value:.3g} goal=1 {'pass' if ok else 'miss'}"


def report(b: Bench, facts: dict[str, str]) -> list[str]:
    """Print the figures; the TARGET lines."""
    z, res = b.z, b.res
    print(f"http route benchmark: GET {PATH}, N={z.n} churches x 200 members, {z.rounds} "
          f"round(s), {b.load.describe(2, 32)}, {z.seconds} s windows after {z.warmup} s "
          f"warm-up; {facts['server']}")
    print(f"  {os.cpu_count()} CPUs, load average {facts['load0']} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end; setup: "
          + ", ".join(f"{k} {v:.0f} s" for k, v in res.setup_s.items()))
    for pattern in PATTERNS:
        for server in SERVERS:
            ws = res.windows.get((server, pattern), [])
            if ws:
                print(window_line(f"{pattern:7s} {server:7s}", ws, res))
    passes: dict[tuple[str, str], PerRequest] = {}
    for kind, runs in (("warm", res.warm), ("cold", res.cold)):
        for server, ps in runs.items():
            st = passes[kind, server] = per_request(ps.statements, ps.ok, ps.seconds, res)
            print(f"  {kind} pass {server}: {ps.ok}/{ps.requests} ok, p50 "
                  f"{med(ps.latencies_ms):.2f} ms, tenant connections opened per request "
                  f"{ps.sessions / max(ps.requests, 1):.2f}, statements per request "
                  f"{st.total:.2f} (tenant {st.tenant:.2f}, registry {st.registry:.2f}; "
                  f"background taken out {st.background:.2f})")
    m = res.scale_churches
    for server in SERVERS:
        if server in res.scale:
            print(window_line(f"uniform over {m} churches, {server}", [res.scale[server]], res))
    print(f"  service idle for {res.idle_s:.0f} s (background), statements per second:")
    for line in top_statements(res.idle, res.idle_s):
        print(line)
    for kind, runs in (("warm", res.warm), ("cold", res.cold)):
        if "service" in runs:
            print(f"  service, {kind} pass, statements per request (background included):")
            for line in top_statements(runs["service"].statements, runs["service"].ok):
                print(line)
    tmc = {s: sum(w.too_many_clients for (server, _), ws in res.windows.items()
                  if server == s for w in ws)
           + sum(ps.too_many_clients for runs in (res.warm, res.cold)
                 for server, ps in runs.items() if server == s)
           + (res.scale[s].too_many_clients if s in res.scale else 0) for s in SERVERS}
    print(f"  `too many clients` in the server log: service {tmc['service']}, plain "
          f"{tmc['plain']}")
    events = log_events(b.workdir, "service")
    print(f"  service log, warnings and errors: {dict(events.most_common(8)) or 'none'}")

    def rps(server: str, pattern: str) -> float:
        return med([w.load.rps for w in res.windows.get((server, pattern), [])])

    def p99(server: str, pattern: str) -> float:
        return med([w.load.p99_ms for w in res.windows.get((server, pattern), [])])

    nan = float("nan")
    scale_rss = res.scale["service"].rss_mb if "service" in res.scale else nan
    return [
        at_least("one_vs_plain", rps("service", "one") / rps("plain", "one"),
                 GOALS["one_vs_plain"]),
        at_least(f"uniform{z.n}_vs_plain", rps("service", "uniform") / rps("plain", "uniform"),
                 GOALS["uniform_vs_plain"]),
        at_least(f"zipf{z.n}_vs_plain", rps("service", "zipf") / rps("plain", "zipf"),
                 GOALS["zipf_vs_plain"]),
        target_line(f"uniform{z.n}_p99_vs_plain",
                    p99("service", "uniform") / p99("plain", "uniform"),
                    GOALS["uniform_p99_vs_plain"]),
        equals_one("warm_statements_per_request",
                   passes["warm", "service"].total if ("warm", "service") in passes else nan),
        equals_one("cold_statements_per_request",
                   passes["cold", "service"].total if ("cold", "service") in passes else nan),
        target_line("too_many_clients", tmc["service"], 0),
        target_line(f"rss_mb_{m}_churches", scale_rss, GOALS["rss_mb"]),
    ]


async def run(z: Sizes) -> list[str]:
    workdir = Path(tempfile.mkdtemp(prefix="ywm-http-route-"))
    load0 = f"{os.getloadavg()[0]:.1f}"
    try:
        progress("starting a private PostgreSQL cluster (max_connections 100, "
                 "pg_stat_statements)")
        with private_cluster(f"ywmh{secrets.token_hex(3)}") as cluster:
            b = Bench(z, cluster, workdir)
            try:
                await b.run()
                facts = {"server": await b.obs.describe(), "load0": load0}
            finally:
                await b.obs.close()
                b.load.close()
            return report(b, facts)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    """Parse arguments, run, print the TARGET lines."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="200 churches, 500 for RSS, one round of 5 s windows")
    parser.add_argument("-n", type=int, default=None, help="churches (1000; 200 with --quick)")
    parser.add_argument("--rss-churches", type=int, default=None,
                        help="churches registered for the RSS figure (5000; 500 with --quick)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (5; 1 with --quick)")
    parser.add_argument("--seconds", type=int, default=None,
                        help="measured window per pattern (10; 5 with --quick)")
    parser.add_argument("--client", choices=("wrk", "aiohttp"), default=None,
                        help="load generator (wrk when installed)")
    args = parser.parse_args()
    use_wrk = have_wrk() if args.client is None else args.client == "wrk"
    if args.quick:
        z = Sizes(args.n or 200, args.rss_churches or 500, args.rounds or 1, 2,
                  args.seconds or 5, IDLE_S, use_wrk)
    else:
        z = Sizes(args.n or 1000, args.rss_churches or 5000, args.rounds or 5, 3,
                  args.seconds or 10, IDLE_S, use_wrk)
    z.rss_churches = max(z.rss_churches, z.n)
    lines = asyncio.run(run(z))
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
