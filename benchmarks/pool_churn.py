"""Pool churn benchmark: requests through the real middleware and the tenant pool supervisor,
against a plain asyncpg pool (W) and a bare connect + query + close (C), in one run.

Scenarios, each a warm-up and then a measured window of HTTP requests from a separate client
process (aiohttp, a fixed number of requests in flight, Retry-After honoured) to the service
app on a loopback port: (a) one warm tenant, (b) N tenants accessed uniformly, (c) N tenants
with Zipf(s = 1.1) access. Every request goes through the root middlewares and the
supervisor's `lease_middleware()` and runs the named tenant query `get_settings`. The tenant
comes from a benchmark-only header (the JWT's `tid` in the service; auth is left out, it would
add its session query to every request). Pool cap, pool size and connection budget are what
the service chooses for a server with `max_connections = 100`: the defaults, and
`budget_from_max_connections(100, 3)`.

Baselines at the same concurrency, in rounds alternating with the scenarios: W =
`get_settings` through one plain asyncpg pool (as large as a tenant pool) on one tenant
database, C = `connect + get_settings + close` on a random tenant database as its role; both
bare (in this process, no HTTP: the spec's figures). C is also measured as the superuser
(trust) to show what a SCRAM login costs. The comparison over HTTP lives in
`benchmarks/http_route.py`: the real route with real tokens from a real `ywm serve` process
against a plain aiohttp + asyncpg server (it replaced this benchmark's W/C-over-HTTP routes
and their `*_http` targets).

By default everything runs on a private cluster (tests/second_cluster.py) with
`max_connections = 100` and SCRAM-SHA-256 for the tenant roles: on the shared test server other
suites' connections would count against the limit (and ours against theirs), and `too many
clients` could not be attributed. `--shared-server` runs on the tests' server instead.

    .venv/bin/python -m benchmarks.pool_churn [--quick] [-n N] [--rounds R] [--shared-server]
        [--pool-max K] [--pool-cap K] [--profile DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import concurrent.futures
import contextlib
import cProfile
import hashlib
import itertools
import math
import multiprocessing
import os
import random
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer

from ywmessaging import keys
from ywmessaging.api.responses import json_response
from ywmessaging.app import create_app
from ywmessaging.config import Settings
from ywmessaging.db import pg
from ywmessaging.db.dsn import PgTarget
from ywmessaging.registry.servers import budget_from_max_connections
from ywmessaging.sqlq import tenant as tenant_queries
from ywmessaging.tenants.keys import SUPERVISOR, TENANT_ID
from ywmessaging.tenants.middleware import lease_middleware, tenant_conn

from .common import (
    Deployment,
    deployment,
    percentile,
    progress,
    provision_many,
    server_version,
    target_line,
)

SIZED_FOR_MAX_CONNECTIONS = 100
ZIPF_S = 1.1
TENANT_HEADER = "X-Bench-Tenant"      # sets TENANT_ID: the request gets a lease
GOALS = {"warm_vs_W": 0.9, "zipf_vs_bound": 0.8, "uniform_vs_C": 0.8}
CLEAN_503 = {"tenant_capacity", "tenant_unavailable"}
RETRY_AFTER_CAP = 1.0  # the client honours Retry-After, at most this many seconds
APP_NAME = "ywm-api"   # application_name of the supervisor's tenant connections


# --- access patterns ------------------------------------------------------------------------

def zipf_cdf(n: int, s: float) -> list[float]:
    """Cumulative probabilities of ranks 1..n with P(k) proportional to k^-s."""
    weights = [k ** -s for k in range(1, n + 1)]
    total = sum(weights)
    return list(itertools.accumulate(w / total for w in weights))


def picker(n: int, dist: str, seed: int) -> Callable[[], int]:
    """A function drawing tenant indexes: `one` (index 0), `uniform` or `zipf` (ranks mapped
    to a seeded permutation, so the hottest tenants are not the first provisioned)."""
    rng = random.Random(seed)
    if dist == "one":
        return lambda: 0
    if dist == "uniform":
        return lambda: rng.randrange(n)
    cdf = zipf_cdf(n, ZIPF_S)
    order = list(range(n))
    rng.shuffle(order)
    return lambda: order[min(bisect.bisect_left(cdf, rng.random()), n - 1)]


def lru_hit_ratio(n: int, dist: str, slots: int, draws: int = 200_000, seed: int = 7) -> float:
    """The hit ratio of an ideal LRU of `slots` entries under the access pattern, one request
    at a time, for comparison with the measured one."""
    pick = picker(n, dist, seed)
    lru: collections.OrderedDict[int, None] = collections.OrderedDict()
    hits = 0
    for i in range(draws):
        k = pick()
        if k in lru:
            lru.move_to_end(k)
            hits += i >= draws // 10
        else:
            lru[k] = None
            if len(lru) > slots:
                lru.popitem(last=False)
    return hits / (draws - draws // 10)


# --- the client (runs in its own process) ---------------------------------------------------

@dataclass
class Job:
    """One scenario for the client process; times are time.monotonic() (system-wide)."""

    url: str
    header: str
    tenants: list[str]
    dist: str
    seed: int
    concurrency: int
    t_begin: float
    t_measure: float
    t_end: float


@dataclass
class Outcome:
    """What the client saw in the measured window (merged over rounds)."""

    ok_ms: list[float] = field(default_factory=list)
    codes: collections.Counter[str] = field(default_factory=collections.Counter)
    exceptions: collections.Counter[str] = field(default_factory=collections.Counter)
    window: float = 0.0
    cpu_s: float = 0.0  # the client process's CPU time in the window

    @property
    def rps(self) -> float:
        return len(self.ok_ms) / self.window if self.window else math.nan

    def add(self, other: Outcome) -> None:
        self.ok_ms += other.ok_ms
        self.codes.update(other.codes)
        self.exceptions.update(other.exceptions)
        self.window += other.window
        self.cpu_s += other.cpu_s


def client_run(job: Job) -> Outcome:
    """Entry point of the client process."""
    return new_loop_run(_client(job))


def new_loop_run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run on uvloop, as `ywm serve` does, when it is installed."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)
    return uvloop.run(coro)


async def _sleep_until(t: float) -> None:
    await asyncio.sleep(max(0.0, t - time.monotonic()))


async def _client(job: Job) -> Outcome:
    out = Outcome(window=job.t_end - job.t_measure)
    pick = picker(max(1, len(job.tenants)), job.dist, job.seed)
    connector = aiohttp.TCPConnector(limit=job.concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        await _sleep_until(job.t_begin)

        async def cpu() -> None:
            await _sleep_until(job.t_measure)
            t0 = time.process_time()
            await _sleep_until(job.t_end)
            out.cpu_s = time.process_time() - t0

        async def worker() -> None:
            while (t0 := time.monotonic()) < job.t_end:
                headers = {job.header: job.tenants[pick()]} if job.tenants else {}
                retry_after, name = 0.0, ""
                try:
                    async with http.get(job.url, headers=headers) as resp:
                        body = await resp.read()
                        status = resp.status
                        if status == 503:
                            retry_after = float(resp.headers.get("Retry-After", "0") or 0)
                except Exception as exc:  # counted, never raised: the run goes on
                    status, body, name = -1, b"", type(exc).__name__
                t1 = time.monotonic()
                if t0 >= job.t_measure and t1 <= job.t_end:
                    if status == 200:
                        out.ok_ms.append((t1 - t0) * 1000)
                    elif status == -1:
                        out.exceptions[name] += 1
                    else:
                        out.codes[f"{status} {_problem_code(body)}"] += 1
                if retry_after:
                    await asyncio.sleep(min(retry_after, RETRY_AFTER_CAP))

        await asyncio.gather(cpu(), *(worker() for _ in range(job.concurrency)))
    return out


def _problem_code(body: bytes) -> str:
    try:
        return str(orjson.loads(body).get("code", "?"))
    except (orjson.JSONDecodeError, AttributeError):
        return "not_json"


# --- the service side ----------------------------------------------------------------------

async def settings_handler(request: web.Request) -> web.Response:
    """The benchmark route: one named query through the request's tenant lease."""
    row = await request.config_dict[keys.TENANT_QUERIES].get_settings(tenant_conn(request))
    return json_response({"church_name": row["church_name"]})


def bench_app() -> web.Application:
    """BENCHMARK ONLY: the tenant from a header (authentication sets it from the JWT in the
    service), then the tenant lease middleware, and `GET /bench/settings` (through the
    lease)."""

    @web.middleware
    async def tenant_from_header(request: web.Request, handler: Any) -> web.StreamResponse:
        raw = request.headers.get(TENANT_HEADER)
        if raw:
            request[TENANT_ID] = uuid.UUID(raw)
        return await handler(request)  # type: ignore[no-any-return]

    bench = web.Application(middlewares=[tenant_from_header, lease_middleware()])
    bench.router.add_get("/settings", settings_handler)
    return bench


@dataclass
class Tenant:
    id: uuid.UUID
    target: PgTarget  # as its own role, on its own database


async def tenant_targets(dep: Deployment) -> list[Tenant]:
    rows = await dep.registry.fetch(
        "SELECT t.id, t.db_name, t.db_role, t.db_password_enc, s.host, s.port "
        "FROM tenants t JOIN db_servers s ON s.id = t.server_id WHERE t.status = 'active' "
        "ORDER BY t.created_at")
    return [Tenant(r["id"], PgTarget(
        host=r["host"], port=r["port"], user=r["db_role"], database=r["db_name"],
        password=dep.box.open(bytes(r["db_password_enc"]), f"tenant-role:{r['id']}")))
        for r in rows]


def read_counters(app: web.Application) -> dict[str, float]:
    """The supervisor's counters and histogram sums, from the app's Prometheus registry."""
    values: dict[str, float] = {}
    for family in app[keys.METRICS].registry.collect():
        if not family.name.startswith("ywm_tenant_"):
            continue
        for s in family.samples:
            if s.name.endswith(("_bucket", "_created")):
                continue
            label = ",".join(str(v) for v in s.labels.values())
            values[f"{s.name}[{label}]" if label else s.name] = s.value
    return values


def delta(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: b[k] - a.get(k, 0.0) for k in b}


class Activity:
    """pg_stat_activity peaks while running (the supervisor's tenant connections, every client
    backend on the server) and the sessions opened on this run's tenant databases."""

    def __init__(self, admin: PgTarget, prefix: str, every: float = 0.1) -> None:
        self.admin, self.every = admin, every
        self.like = prefix.replace("_", r"\_") + r"\_t\_%"
        self.peak_tenant = self.peak_all = 0
        self.conn: Any = None
        self.lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Activity]:
        self.peak_tenant = self.peak_all = 0
        self.conn = conn = await pg.connect(self.admin)

        async def loop() -> None:
            while True:
                async with self.lock:
                    row = await conn.fetchrow(
                        "SELECT count(*) FILTER (WHERE datname LIKE $1 AND application_name = $2)"
                        " AS mine, count(*) AS total FROM pg_stat_activity "
                        "WHERE backend_type = 'client backend'", self.like, APP_NAME)
                self.peak_tenant = max(self.peak_tenant, row["mine"])
                self.peak_all = max(self.peak_all, row["total"])
                await asyncio.sleep(self.every)

        task = asyncio.get_running_loop().create_task(loop())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await conn.close()

    async def sessions(self) -> tuple[int, int]:
        """(sessions opened, transactions) on this run's tenant databases so far
        (pg_stat_database, PG 14+; a backend reports them within about a second)."""
        async with self.lock:
            row = await self.conn.fetchrow(
                "SELECT coalesce(sum(sessions), 0) AS s, "
                "coalesce(sum(xact_commit + xact_rollback), 0) AS x "
                "FROM pg_stat_database WHERE datname LIKE $1", self.like)
            return int(row["s"]), int(row["x"])


@dataclass
class Scenario:
    """One scenario's figures, merged over rounds."""

    name: str
    outcome: Outcome = field(default_factory=Outcome)
    counters: dict[str, float] = field(default_factory=dict)
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    sessions: int = 0
    xacts: int = 0
    peak_tenant: int = 0
    peak_all: int = 0
    server_cpu_s: float = 0.0
    busy_cpu_s: float = 0.0  # the whole machine's busy CPU time in the windows

    def add(self, o: Outcome, counters: dict[str, float], failures: collections.Counter[str],
            sessions: tuple[int, int], peaks: tuple[int, int], server_cpu_s: float,
            busy_s: float) -> None:
        self.outcome.add(o)
        for k, v in counters.items():
            self.counters[k] = self.counters.get(k, 0.0) + v
        self.failures.update(failures)
        self.sessions += sessions[0]
        self.xacts += sessions[1]
        self.peak_tenant = max(self.peak_tenant, peaks[0])
        self.peak_all = max(self.peak_all, peaks[1])
        self.server_cpu_s += server_cpu_s
        self.busy_cpu_s += busy_s

    @property
    def leases(self) -> float:
        return self.counters.get("ywm_tenant_lease_wait_seconds_count", 0.0)

    @property
    def cold(self) -> float:
        return self.counters.get("ywm_tenant_cold_starts_total", 0.0)

    @property
    def hit_ratio(self) -> float:
        return 1 - self.cold / self.leases if self.leases else math.nan

    def unclean(self) -> int:
        bad = sum(n for code, n in self.outcome.codes.items()
                  if not (code.startswith("503 ") and code[4:] in CLEAN_503))
        return bad + sum(self.outcome.exceptions.values())

    def too_many_clients(self) -> int:
        return self.failures.get("53300", 0)


def _sqlstate(exc: BaseException) -> str:
    return str(getattr(exc, "sqlstate", None) or type(exc).__name__)


class Service:
    """The app on a loopback port, plus a spy on the supervisor's connection failures."""

    def __init__(self, app: web.Application, server: TestServer) -> None:
        self.app, self.server = app, server
        self.failures: collections.Counter[str] = collections.Counter()
        sup = app[SUPERVISOR].supervisor
        record = getattr(sup, "record_failure", None)
        if record is None:
            raise RuntimeError("PoolSupervisor.record_failure is gone: count 53300 elsewhere")

        def spy(info: Any, fault: Any, exc: BaseException) -> None:
            self.failures[_sqlstate(exc)] += 1  # 53300 is `too many clients`
            record(info, fault, exc)

        sup.record_failure = spy  # type: ignore[method-assign]  # observe, not change

    def url(self, route: str) -> str:
        return f"http://127.0.0.1:{self.server.port}/bench/{route}"


@contextlib.asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[Service]:
    app = create_app(settings, plugins=())   # the core: the tenant pool supervisor
    app.add_subapp("/bench", bench_app())
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield Service(app, server)
    finally:
        await server.close()


def proc_stat() -> tuple[int, int]:
    """(total, idle + iowait) jiffies of all CPUs, from /proc/stat ((0, 0) elsewhere)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:  # pragma: no cover
        return 0, 0
    return sum(fields[:8]), fields[3] + fields[4]


def busy_cpu_seconds(stat0: tuple[int, int], stat1: tuple[int, int], wall: float) -> float:
    """CPU seconds the whole machine spent busy between two /proc/stat readings."""
    total = stat1[0] - stat0[0]
    busy = 1 - (stat1[1] - stat0[1]) / total if total else 0.0
    return busy * (os.cpu_count() or 1) * wall


@dataclass
class Driver:
    """Runs scenarios from the client process against the service."""

    svc: Service
    pool: concurrent.futures.Executor
    activity: Activity
    concurrency: int
    warmup: float
    profile_dir: str | None

    async def run(self, into: Scenario, route: str, header: str, tenants: list[str],
                  dist: str, seconds: float) -> None:
        """One warm-up and measured window, added to `into`; the server's counters, CPU and
        sessions are read at the window's edges."""
        now = time.monotonic()
        t_measure = now + 0.2 + self.warmup
        job = Job(self.svc.url(route), header, tenants, dist, seed=sum(map(ord, into.name)),
                  concurrency=self.concurrency, t_begin=now + 0.2, t_measure=t_measure,
                  t_end=t_measure + seconds)
        progress(f"  {into.name}: {self.warmup:g} s warm-up + {seconds:g} s")
        prof = cProfile.Profile() if self.profile_dir else None
        async with self.activity.running() as act:
            fut = asyncio.get_running_loop().run_in_executor(self.pool, client_run, job)
            await _sleep_until(job.t_measure)
            before, fail0 = read_counters(self.svc.app), collections.Counter(self.svc.failures)
            sess0 = await act.sessions()
            cpu0, stat0 = time.process_time(), proc_stat()
            if prof is not None:
                prof.enable()
            await _sleep_until(job.t_end)
            if prof is not None:
                prof.disable()
            cpu1, stat1 = time.process_time(), proc_stat()
            after, fail1 = read_counters(self.svc.app), collections.Counter(self.svc.failures)
            sess1 = await act.sessions()
            outcome: Outcome = await fut
        if prof is not None and self.profile_dir:
            path = os.path.join(self.profile_dir, f"{route}-{dist}-{int(now)}.prof")
            prof.dump_stats(path)
            progress(f"    profile of the server process: {path}")
        into.add(outcome, delta(before, after), fail1 - fail0,
                 (sess1[0] - sess0[0], sess1[1] - sess0[1]),
                 (act.peak_tenant, act.peak_all), cpu1 - cpu0,
                 busy_cpu_seconds(stat0, stat1, seconds))


# --- bare baselines (in this process, no HTTP) -----------------------------------------------

@dataclass
class Rate:
    """Closed-loop rates merged over rounds, errors, and where the CPU went."""

    done: int = 0
    wall: float = 0.0
    own_cpu_s: float = 0.0   # this process
    busy_cpu_s: float = 0.0  # the whole machine
    errors: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def per_s(self) -> float:
        return self.done / self.wall if self.wall else math.nan

    def cpu_line(self) -> str:
        n = max(self.done, 1)
        return (f"CPU per call: here {1000 * self.own_cpu_s / n:.2f} ms, rest of the machine "
                f"{1000 * (self.busy_cpu_s - self.own_cpu_s) / n:.2f} ms")


async def closed_loop(into: Rate, concurrency: int, seconds: float,
                      call: Callable[[], Awaitable[Any]]) -> None:
    """`concurrency` loops calling `call` for `seconds`, added to `into`."""
    done = 0
    end = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal done
        while time.monotonic() < end:
            try:
                await call()
                done += 1
            except Exception as exc:  # counted (53300 above all), never raised
                into.errors[_sqlstate(exc)] += 1

    t0, cpu0, stat0 = time.monotonic(), time.process_time(), proc_stat()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.monotonic() - t0
    into.done += done
    into.wall += wall
    into.own_cpu_s += time.process_time() - cpu0
    into.busy_cpu_s += busy_cpu_seconds(stat0, proc_stat(), wall)


async def bare_w(into: Rate, warm: Tenant, pool_max: int, concurrency: int, seconds: float,
                 sql_dir: Any) -> None:
    q = tenant_queries(sql_dir).get_settings
    pool = await asyncpg.create_pool(**warm.target.connect_kwargs(), min_size=0,
                                     max_size=pool_max)
    try:
        await closed_loop(Rate(), concurrency, 0.3, lambda: q(pool))  # open the pool
        await closed_loop(into, concurrency, seconds, lambda: q(pool))
    finally:
        await pool.close()


async def bare_c(into: Rate, tenants: list[Tenant], concurrency: int, seconds: float,
                 sql_dir: Any, admin: PgTarget | None = None) -> None:
    """connect + get_settings + close on random tenant databases, as each tenant's role, or as
    the `admin` superuser (how pg_hba.conf treats that login may differ: trust vs SCRAM)."""
    q = tenant_queries(sql_dir).get_settings
    rng = random.Random(11)

    def target() -> PgTarget:
        t = rng.choice(tenants).target
        return admin.with_db(t.database or "") if admin is not None else t

    async def once() -> None:
        conn = await asyncpg.connect(**target().connect_kwargs(), timeout=5)
        try:
            await q(conn)
        finally:
            await conn.close()

    await closed_loop(into, concurrency, seconds, once)


# --- the run ---------------------------------------------------------------------------------

async def server_facts(admin: PgTarget) -> dict[str, Any]:
    conn = await pg.connect(admin)
    try:
        rules = await conn.fetch(
            "SELECT type, address, user_name, auth_method FROM pg_hba_file_rules "
            "WHERE error IS NULL ORDER BY line_number")
        return {
            "version": server_version(await conn.fetchval("SELECT version()")),
            "max_connections": int(await conn.fetchval("SHOW max_connections")),
            "password_encryption": await conn.fetchval("SHOW password_encryption"),
            "hba": [(r["type"], r["address"], list(r["user_name"] or []), r["auth_method"])
                    for r in rules],
        }
    finally:
        await conn.close()


def loopback_auth(hba: list[tuple[str, str | None, list[str], str]], user: str) -> str:
    """The auth method pg_hba.conf applies to `user` over TCP from 127.0.0.1 (first `host`
    rule for that address and user; the database column is not looked at)."""
    for kind, address, users, method in hba:
        if (kind.startswith("host") and address in ("127.0.0.1", "all", "0.0.0.0", "samehost")
                and ("all" in users or user in users)):
            return str(method)
    return "unknown"


@contextlib.contextmanager
def private_cluster() -> Iterator[PgTarget]:
    """A throw-away cluster of our own (tests/second_cluster.py), sized as the benchmark
    assumes: max_connections 100, tenant roles logging in with SCRAM-SHA-256 over TCP, the
    superuser `postgres` with trust. Nobody else's connections count against its limit."""
    from tests.second_cluster import SecondCluster, _bin_dir, _unprivileged_user, free_port

    cluster = SecondCluster(base=Path(tempfile.mkdtemp(prefix="ywm-churn-pg-")),
                            bindir=_bin_dir(), port=free_port(), user=_unprivileged_user())
    try:
        cluster.init()
        with (cluster.data / "postgresql.conf").open("a") as conf:
            conf.write(f"max_connections = {SIZED_FOR_MAX_CONNECTIONS}\n")
        (cluster.data / "pg_hba.conf").write_text(
            "local all all trust\n"
            "host all postgres 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n")
        cluster.start()
        yield cluster.target
    finally:
        cluster.destroy()


def scram_client_ms(iterations: int = 4096, rounds: int = 50) -> float:
    """Client CPU per SCRAM-SHA-256 login: asyncpg derives the key with PBKDF2 every time."""
    t0 = time.perf_counter()
    for _ in range(rounds):
        hashlib.pbkdf2_hmac("sha256", os.urandom(24), os.urandom(16), iterations)
    return (time.perf_counter() - t0) * 1000 / rounds


def at_least(name: str, value: float, goal: float) -> str:
    """A TARGET line for a higher-is-better figure."""
    ok = value >= goal
    return f"TARGET {name} value={value:.3g} goal=>={goal:g} {'pass' if ok else 'miss'}"


@dataclass
class Sizes:
    n: int
    concurrency: int
    rounds: int
    warmup: float
    seconds: float    # each scenario's window per round
    base_s: float     # each bare baseline's window per round
    pool_max: int | None = None  # overrides of the service's defaults (experiments only)
    pool_cap: int | None = None
    shared_server: bool = False  # the tests' server instead of a private cluster


async def run(z: Sizes, profile_dir: str | None) -> list[str]:
    spawn = multiprocessing.get_context("spawn")
    with contextlib.ExitStack() as stack, \
            concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as pool:
        await asyncio.get_running_loop().run_in_executor(pool, int, "1")  # import it now
        if not z.shared_server:
            progress("starting a private PostgreSQL cluster (max_connections 100)")
            target = stack.enter_context(private_cluster())
            os.environ["YWM_TEST_DATABASE_URL"] = target.dsn()  # what deployment() uses
        async with deployment() as dep:
            return await _run(z, profile_dir, dep, pool)


async def _run(z: Sizes, profile_dir: str | None, dep: Deployment,
               pool: concurrent.futures.Executor) -> list[str]:
    facts = await server_facts(dep.admin)
    budget = budget_from_max_connections(SIZED_FOR_MAX_CONNECTIONS, 3)
    # room for N tenants on the one server (max_tenants defaults to 500)
    await dep.registry.execute(
        "UPDATE db_servers SET conn_budget = $1, max_tenants = greatest(max_tenants, $2)",
        budget, z.n)
    # cap and pool size: the service's defaults; logs at error (503s are expected here)
    settings = dep.settings.with_(log_level="error")
    if z.pool_max is not None:
        settings = settings.with_(tenant_pool_max=z.pool_max)
    if z.pool_cap is not None:
        settings = settings.with_(tenant_pool_cap=z.pool_cap)
    progress(f"provisioning {z.n} tenants, 4 at a time")
    _, wall = await provision_many(dep.provisioner, z.n, concurrency=4, label="churn")
    progress(f"  {z.n / wall:.1f} tenants/s")
    tenants = await tenant_targets(dep)
    ids = [str(t.id) for t in tenants]
    w, c, c_admin = Rate(), Rate(), Rate()
    sc = {k: Scenario(name) for k, name in (
        ("a", "(a) one warm tenant"), ("b", f"(b) {z.n} tenants, uniform"),
        ("c", f"(c) {z.n} tenants, Zipf s={ZIPF_S}"))}
    load0 = os.getloadavg()[0]
    async with serve(settings) as svc:
        drv = Driver(svc, pool, Activity(dep.admin, dep.settings.db_prefix), z.concurrency,
                     z.warmup, profile_dir)
        sup = svc.app[SUPERVISOR].supervisor
        for r in range(z.rounds):
            progress(f"round {r + 1}/{z.rounds}, {z.concurrency} in flight")
            # the baselines run with no tenant pool open: their own connections plus the
            # supervisor's budget would not fit under max_connections
            await sup.retire(sup.actors(), "operator")
            progress(f"  bare W and C: {z.base_s:g} s each")
            await bare_w(w, tenants[0], settings.tenant_pool_max, z.concurrency, z.base_s,
                         settings.sql_dir)
            await bare_c(c, tenants, z.concurrency, z.base_s, settings.sql_dir)
            await bare_c(c_admin, tenants, z.concurrency, z.base_s / 2, settings.sql_dir,
                         admin=dep.admin)
            await drv.run(sc["a"], "settings", TENANT_HEADER, ids[:1], "one", z.seconds)
            await drv.run(sc["b"], "settings", TENANT_HEADER, ids, "uniform", z.seconds)
            await drv.run(sc["c"], "settings", TENANT_HEADER, ids, "zipf", z.seconds)
    facts["load"] = (load0, os.getloadavg()[0])
    facts["server"] = dep.admin.describe()
    return report(z, facts, budget, settings, sc, w, c, c_admin)


def _labelled(counters: dict[str, float], family: str) -> dict[str, int]:
    return {k[len(family) + 1:-1]: int(v) for k, v in counters.items()
            if k.startswith(family + "[") and v}


def print_scenario(s: Scenario, budget: int, max_connections: int) -> None:
    o, ct = s.outcome, s.counters
    ok = max(1, len(o.ok_ms))
    rest = s.busy_cpu_s - s.server_cpu_s - o.cpu_s
    busy = s.busy_cpu_s / (o.window * (os.cpu_count() or 1)) if o.window else math.nan
    print(f"  {s.name}: {o.rps:.0f} req/s, p50 {percentile(o.ok_ms, 50):.2f} ms, "
          f"p99 {percentile(o.ok_ms, 99):.2f} ms; CPU per request: server "
          f"{1000 * s.server_cpu_s / ok:.2f} ms, client {1000 * o.cpu_s / ok:.2f} ms, rest "
          f"{1000 * rest / ok:.2f} ms (machine {100 * busy:.0f}% busy)")
    codes = dict(o.codes) | {f"client {k}": v for k, v in o.exceptions.items()}
    lease_errors = _labelled(ct, "ywm_tenant_lease_errors_total")
    if s.leases or lease_errors:
        leases = max(s.leases, 1)
        wait_ms = 1000 * ct.get("ywm_tenant_lease_wait_seconds_sum", 0) / leases
        cold_n = ct.get("ywm_tenant_cold_start_seconds_count", 0)
        cold_ms = 1000 * ct.get("ywm_tenant_cold_start_seconds_sum", 0) / max(cold_n, 1)
        print(f"      h {s.hit_ratio:.3f}; cold starts {s.cold / o.window:.0f}/s (mean "
              f"{cold_ms:.1f} ms); tenant connections opened {s.sessions / o.window:.0f}/s; "
              f"tenant transactions per request {s.xacts / max(1, len(o.ok_ms)):.1f}; "
              f"mean lease wait {wait_ms:.2f} ms; evictions "
              f"{_labelled(ct, 'ywm_tenant_evictions_total') or 'none'}")
        print(f"      errors by code {codes or 'none'}; lease errors {lease_errors or 'none'}; "
              f"connect failures {dict(s.failures) or 'none'}; peak connections: "
              f"supervisor's {s.peak_tenant} (budget {budget}), whole server {s.peak_all} "
              f"(max {max_connections})")
    else:
        print(f"      tenant connections opened {s.sessions / o.window:.0f}/s, tenant transactions"
              f" per request {s.xacts / ok:.1f}" + (f"; errors by code {codes}" if codes else ""))


def report(z: Sizes, facts: dict[str, Any], budget: int, settings: Settings,
           sc: dict[str, Scenario], w: Rate, c: Rate, c_admin: Rate) -> list[str]:
    """Print the figures; the TARGET lines."""
    # pools are charged one connection each until they grow: without YWM_TENANT_POOL_CAP the
    # budget (this one process's share of it) is the cap; a cap set below it binds first
    cap = settings.tenant_pool_cap
    pools = min(cap or budget, budget)
    print(f"pool churn benchmark: N={z.n} tenants, {z.concurrency} requests in flight, "
          f"{z.rounds} round(s) of {z.seconds:g} s per scenario; {facts['version']}, server "
          f"max_connections {facts['max_connections']}, {os.cpu_count()} CPUs, load average "
          f"{facts['load'][0]:.1f} at the start, {facts['load'][1]:.1f} at the end")
    print(f"  sized for max_connections {SIZED_FOR_MAX_CONNECTIONS}: budget {budget}, "
          f"pool cap {cap or 'from the budget'}, pool max {settings.tenant_pool_max} "
          f"=> at most {pools} pools open (charged one connection each; "
          f"{max(0, budget - pools)} connections left for pools to grow)")
    role_auth = loopback_auth(facts["hba"], "tenant-role")
    admin_auth = loopback_auth(facts["hba"], "postgres")
    print(f"  server {facts['server']}{'' if z.shared_server else ' (private cluster)'}: "
          f"tenant roles log in with `{role_auth}`, the superuser with `{admin_auth}` "
          f"(pg_hba.conf, 127.0.0.1); client PBKDF2 of one SCRAM login (4096 iterations): "
          f"{scram_client_ms():.2f} ms")
    print(f"  bare W (plain pool, no HTTP): {w.per_s:.0f} req/s; {w.cpu_line()}")
    print(f"  bare C as tenant roles ({role_auth}): {c.per_s:.0f} conn/s; {c.cpu_line()}")
    print(f"  bare C as the superuser ({admin_auth}): {c_admin.per_s:.0f} conn/s; "
          f"{c_admin.cpu_line()}; tenant-role login / superuser login cost "
          f"{c_admin.per_s / c.per_s:.2f}")
    errors = w.errors + c.errors + c_admin.errors
    if errors:
        print(f"  baseline errors {dict(errors)}")
    for s in sc.values():
        print_scenario(s, budget, facts["max_connections"])
    a, b, zz = (sc[k].outcome.rps for k in "abc")
    h = sc["c"].hit_ratio
    bound = 1 / (h / w.per_s + (1 - h) / c.per_s)
    print(f"  bare:      (a)/W {a / w.per_s:.3f}; (b)/C {b / c.per_s:.3f}; (c) bound "
          f"1/(h/W + (1-h)/C) at h={h:.3f}: {bound:.0f} req/s, (c)/bound {zz / bound:.3f}")
    print(f"  ideal LRU, one request at a time: {pools} pools: h uniform "
          f"{lru_hit_ratio(z.n, 'uniform', pools):.3f}, Zipf "
          f"{lru_hit_ratio(z.n, 'zipf', pools):.3f}")
    scen = [sc[k] for k in "abc"]
    unclean = sum(s.unclean() for s in scen)
    tmc = sum(s.too_many_clients() for s in scen)
    return [
        at_least("warm_vs_W", a / w.per_s, GOALS["warm_vs_W"]),
        at_least(f"uniform{z.n}_vs_C", b / c.per_s, GOALS["uniform_vs_C"]),
        at_least(f"zipf{z.n}_vs_bound", zz / bound, GOALS["zipf_vs_bound"]),
        target_line("errors_other_than_clean_503", unclean, 0),
        target_line("too_many_clients", tmc, 0),
    ]


def main() -> None:
    """Parse arguments, run, print the TARGET lines."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="200 tenants, one short round (under a minute)")
    parser.add_argument("-n", type=int, default=None, help="tenants (1000; 200 with --quick)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (5; 1 with --quick)")
    parser.add_argument("--shared-server", action="store_true",
                        help="run on the tests' server instead of a private cluster")
    parser.add_argument("--pool-max", type=int, default=None,
                        help="experiment: YWM_TENANT_POOL_MAX instead of the default")
    parser.add_argument("--pool-cap", type=int, default=None,
                        help="experiment: YWM_TENANT_POOL_CAP instead of the default")
    parser.add_argument("--profile", metavar="DIR", default=None,
                        help="cProfile the server process in each measured window into DIR")
    args = parser.parse_args()
    if args.quick:
        z = Sizes(args.n or 200, args.concurrency, args.rounds or 1, 0.5, 2.5, 1.0)
    else:
        z = Sizes(args.n or 1000, args.concurrency, args.rounds or 5, 1.5, 6.0, 3.0)
    z.pool_max, z.pool_cap, z.shared_server = args.pool_max, args.pool_cap, args.shared_server
    for line in new_loop_run(run(z, args.profile)):
        print(line)


if __name__ == "__main__":
    main()
