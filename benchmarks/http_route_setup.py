"""The plumbing of `benchmarks/http_route.py`: the private cluster, the two server processes,
the churches made through the real routes, and what is watched on the cluster.

Only setup touches the project's code: `bootstrap` (what the tests use) migrates the registry
and the template, the registry's `tenants` rows are read and their role passwords decrypted
with the project's SecretBox for the plain server, and the access-token key is derived with
`Keyring`. Requests go over HTTP to a `python -m ywmessaging serve` process.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from ywmessaging.auth.tokens import Keyring
from ywmessaging.config import Settings
from ywmessaging.crypto import SecretBox
from ywmessaging.db.dsn import PgTarget
from ywmessaging.ops.bootstrap import bootstrap

from .common import progress, server_version
from .http_route_load import LoadResult
from .members_import_list import as_csv, people

REPO_ROOT = Path(__file__).resolve().parents[1]
SECRET = "http-route-benchmark-secret-" + "h" * 32
PASSWORD = "benchmark passphrase 42"
MEMBERS = 200
MAX_CONNECTIONS = 100
START_TIMEOUT = 60.0
DISK_MARGIN = 15 * 2**30
TOO_MANY = re.compile(rb"too many clients|remaining connection slots are reserved")
PLAIN_LRU, PLAIN_POOL_MAX = 50, 2


# --- the cluster ------------------------------------------------------------------------------

@dataclass
class Cluster:
    """A private cluster and this run's deployment on it."""

    admin: PgTarget           # superuser on the maintenance database (trust)
    prefix: str
    base: Path
    settings: Settings

    @property
    def log(self) -> Path:
        return self.base / "server.log"


@contextlib.contextmanager
def private_cluster(prefix: str) -> Iterator[Cluster]:
    """initdb + pg_ctl on a free loopback port (tests/second_cluster.py): max_connections 100,
    SCRAM-SHA-256 for every role but `postgres` over TCP, pg_stat_statements preloaded.
    Stopped and deleted whole afterwards."""
    from tests.second_cluster import SecondCluster, _bin_dir, _unprivileged_user, free_port

    pg = SecondCluster(base=Path(tempfile.mkdtemp(prefix="ywm-http-route-pg-")),
                       bindir=_bin_dir(), port=free_port(), user=_unprivileged_user())
    try:
        pg.init()
        with (pg.data / "postgresql.conf").open("a") as conf:
            conf.write(f"max_connections = {MAX_CONNECTIONS}\n"
                       "shared_preload_libraries = 'pg_stat_statements'\n"
                       "pg_stat_statements.max = 10000\n"
                       "pg_stat_statements.track = top\n")
        (pg.data / "pg_hba.conf").write_text(
            "local all all trust\n"
            "host all postgres 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n")
        pg.start()
        admin = pg.target
        settings = Settings(database_url=admin.with_db(f"{prefix}_registry").dsn(),
                            secret_key=SECRET, db_prefix=prefix)
        yield Cluster(admin, prefix, pg.base, settings)
    finally:
        progress("stopping and removing the private cluster")
        t0 = time.perf_counter()
        if pg.data.exists():  # no shutdown checkpoint: the files go next
            pg._run("pg_ctl", "-D", str(pg.data), "-m", "immediate", "-w", "-t", "30", "stop",
                    check=False)
        t1 = time.perf_counter()
        # rm is several times faster than shutil.rmtree on hundreds of thousands of files
        subprocess.run(["rm", "-rf", "--", str(pg.base)], check=False)
        shutil.rmtree(pg.base, ignore_errors=True)
        progress(f"  stopped in {t1 - t0:.1f} s, removed in {time.perf_counter() - t1:.1f} s")


def log_events(workdir: Path, name: str) -> collections.Counter[str]:
    """Warnings and errors the `name` processes logged (structlog JSON lines), by event."""
    out: collections.Counter[str] = collections.Counter()
    for path in sorted(workdir.glob(f"*-{name}.log")):
        for line in path.read_text(errors="replace").splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                if "Traceback" in line:
                    out["traceback"] += 1
                continue
            if isinstance(doc, dict) and doc.get("level") in ("warning", "error", "critical"):
                out[f"{doc['level']} {doc.get('event')}"] += 1
    return out


# --- what is watched --------------------------------------------------------------------------

@dataclass
class StatementCounts:
    """pg_stat_statements calls by (database class, queryid), and each statement's text."""

    calls: dict[tuple[str, int], int] = field(default_factory=dict)
    text: dict[tuple[str, int], str] = field(default_factory=dict)

    def add(self, other: StatementCounts) -> None:
        for k, n in other.calls.items():
            self.calls[k] = self.calls.get(k, 0) + n
        self.text.update(other.text)


@dataclass
class Window:
    """One measured window of one server and pattern."""

    server: str
    pattern: str
    round: int
    load: LoadResult = field(default_factory=lambda: LoadResult("none", 0.0))
    statements: StatementCounts = field(default_factory=StatementCounts)
    peak_total: int = 0
    peak_tenant: int = 0
    sessions: int = 0
    cpu_s: float = 0.0
    rss_mb: float = 0.0
    too_many_clients: int = 0
    marks: dict[str, float] = field(default_factory=dict)


class Observer:
    """Two superuser sessions on the maintenance database: one for the statement and session
    counters, one sampling pg_stat_activity; both left out of the connection counts."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        p = cluster.prefix
        self.tenant_like = p + r"\_t\_%"
        self.registry_db = f"{p}_registry"
        self.conn: Any = None
        self.sampler: Any = None
        self.pids: list[int] = []

    async def open(self) -> None:
        self.conn = await asyncpg.connect(**self.cluster.admin.connect_kwargs())
        self.sampler = await asyncpg.connect(**self.cluster.admin.connect_kwargs())
        await self.conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        self.pids = [self.conn.get_server_pid(), self.sampler.get_server_pid()]

    async def close(self) -> None:
        for c in (self.conn, self.sampler):
            if c is not None:
                await c.close()

    async def describe(self) -> str:
        version = server_version(await self.conn.fetchval("SELECT version()"))
        maxc = await self.conn.fetchval("SHOW max_connections")
        return (f"{version} private cluster at {self.cluster.admin.host}:"
                f"{self.cluster.admin.port}, max_connections {maxc}, tenant roles log in with "
                "scram-sha-256")

    async def reset_statements(self) -> None:
        await self.conn.execute("SELECT pg_stat_statements_reset()")

    async def statements(self) -> StatementCounts:
        rows = await self.conn.fetch(
            "SELECT d.datname, s.queryid, s.calls, s.query FROM pg_stat_statements s "
            "JOIN pg_database d ON d.oid = s.dbid "
            "WHERE s.calls > 0 AND (d.datname LIKE $1 OR d.datname = $2)",
            self.tenant_like, self.registry_db)
        out = StatementCounts()
        for r in rows:
            key = ("registry" if r["datname"] == self.registry_db else "tenant",
                   int(r["queryid"] or 0))
            out.calls[key] = out.calls.get(key, 0) + int(r["calls"])
            out.text[key] = " ".join(str(r["query"]).split())
        return out

    async def tenant_sessions(self) -> int:
        """Sessions ever opened on the tenant databases (reported within about a second)."""
        return int(await self.conn.fetchval(
            "SELECT coalesce(sum(sessions), 0) FROM pg_stat_database WHERE datname LIKE $1",
            self.tenant_like))

    def log_offset(self) -> int:
        try:
            return self.cluster.log.stat().st_size
        except OSError:
            return 0

    def too_many_clients(self, offset: int) -> int:
        """`too many clients` (and reserved-slot) refusals logged since `offset`."""
        with self.cluster.log.open("rb") as f:
            f.seek(offset)
            return len(TOO_MANY.findall(f.read()))

    async def begin(self, w: Window, proc: Proc) -> None:
        await self.reset_statements()
        w.marks = {"offset": self.log_offset(), "sessions": await self.tenant_sessions(),
                   "cpu": proc.cpu_s()}

    async def end(self, w: Window, proc: Proc) -> None:
        w.statements = await self.statements()
        w.cpu_s = proc.cpu_s() - w.marks["cpu"]
        w.too_many_clients = self.too_many_clients(int(w.marks["offset"]))
        w.sessions = await self.tenant_sessions() - int(w.marks["sessions"])

    @contextlib.asynccontextmanager
    async def sampling(self, w: Window, every: float = 0.1) -> AsyncIterator[None]:
        """Peak client connections while the block runs."""

        async def loop() -> None:
            while True:
                row = await self.sampler.fetchrow(
                    "SELECT count(*) AS total, count(*) FILTER (WHERE datname LIKE $1) AS tenant"
                    " FROM pg_stat_activity WHERE backend_type = 'client backend' "
                    "AND pid <> ALL($2::int[])", self.tenant_like, self.pids)
                w.peak_total = max(w.peak_total, int(row["total"]))
                w.peak_tenant = max(w.peak_tenant, int(row["tenant"]))
                await asyncio.sleep(every)

        task = asyncio.get_running_loop().create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


# --- server processes -------------------------------------------------------------------------

def free_port() -> int:
    from tests.second_cluster import free_port as free

    return free()


class Proc:
    """A server process on a loopback port, its log in the work folder."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int,
                 ready_path: str, log: Path) -> None:
        self.name, self.argv, self.env, self.port = name, argv, env, port
        self.ready_path, self.log_path = ready_path, log
        self.proc: asyncio.subprocess.Process | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, env=self.env, cwd=REPO_ROOT, stdout=log, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.proc.returncode is not None:
                    break
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(self.url(self.ready_path)) as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.1)
        tail = self.log_path.read_text(errors="replace")[-3000:]
        await self.stop()
        raise RuntimeError(f"{self.name} did not become ready:\n{tail}")

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after 30 s."""
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    def _proc_file(self, name: str) -> str:
        assert self.proc is not None
        return Path(f"/proc/{self.proc.pid}/{name}").read_text()

    def rss_mb(self) -> float:
        """VmRSS in MiB (0 where /proc is missing)."""
        try:
            for line in self._proc_file("status").splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except (OSError, AssertionError):
            pass
        return 0.0

    def cpu_s(self) -> float:
        """User + system CPU seconds of the process so far."""
        try:
            fields = self._proc_file("stat").rsplit(")", 1)[1].split()
        except (OSError, AssertionError):
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the churches -----------------------------------------------------------------------------

@dataclass
class Church:
    index: int
    email: str
    tenant_id: uuid.UUID | None = None
    token: str = ""
    exp: float = 0.0

    @property
    def forwarded_for(self) -> str:
        """This church office's own address, as a trusted proxy would forward it."""
        i = self.index
        return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Fleet:
    """The churches, made and logged in through the real routes of a service process."""

    def __init__(self, cluster: Cluster, workdir: Path) -> None:
        self.cluster, self.workdir = cluster, workdir
        self.churches: list[Church] = []
        self.started = 0

    def _log(self, name: str) -> Path:
        self.started += 1
        return self.workdir / f"{self.started:03d}-{name}.log"

    def service(self) -> Proc:
        """`ywm serve` with its defaults, behind a trusted proxy on loopback."""
        s = self.cluster.settings
        port = free_port()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("YWM_", "PG", "JWT_", "DATABASE_URL"))}
        env.update(DATABASE_URL=s.database_url or "", YWM_SECRET_KEY=SECRET,
                   YWM_DB_PREFIX=s.db_prefix, YWM_HOST="127.0.0.1", YWM_PORT=str(port),
                   YWM_LOG_LEVEL="warning", YWM_TRUSTED_PROXIES="127.0.0.1",
                   YWM_DATA_DIR=str(self.workdir / "data"), YWM_SHUTDOWN_TIMEOUT="5")
        return Proc("service", [sys.executable, "-m", "ywmessaging", "serve"], env, port,
                    "/readyz", self._log("service"))

    def plain(self, churches: list[Church]) -> Proc:
        """The baseline server, told the tenants' connection details and the token key."""
        port = free_port()
        config = self.workdir / f"plain-{port}.json"
        ring = Keyring.from_settings(self.cluster.settings).for_purpose("access")
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"port": port, "key_hex": ring.keys[ring.signing_kid].hex(),
                       "issuer": self.cluster.settings.jwt_issuer,
                       "audience": self.cluster.settings.jwt_audience,
                       "lru": PLAIN_LRU, "pool_max": PLAIN_POOL_MAX,
                       "tenants": self.tenant_logins}, f)
        return Proc("plain", [sys.executable, "-m", "benchmarks.http_route_plain", str(config)],
                    dict(os.environ), port, "/healthz", self._log("plain"))

    async def _read_tenant_logins(self) -> None:
        conn = await asyncpg.connect(**self.cluster.admin.with_db(
            f"{self.cluster.prefix}_registry").connect_kwargs())
        try:
            rows = await conn.fetch(
                "SELECT t.id, t.db_name, t.db_role, t.db_password_enc, s.host, s.port "
                "FROM tenants t JOIN db_servers s ON s.id = t.server_id "
                "WHERE t.status = 'active'")
        finally:
            await conn.close()
        box = SecretBox(SECRET)
        self.tenant_logins: dict[str, dict[str, Any]] = {str(r["id"]): {
            "host": r["host"], "port": r["port"], "user": r["db_role"],
            "database": r["db_name"],
            "password": box.open(bytes(r["db_password_enc"]), f"tenant-role:{r['id']}"),
        } for r in rows}

    async def setup(self, n: int, concurrency: int, timings: dict[str, float]) -> None:
        """Registry and template, then N sign-ups, imports and logins through the API."""
        t0 = time.perf_counter()
        await bootstrap(self.cluster.settings)
        timings["bootstrap"] = time.perf_counter() - t0
        await self._sign_up(n, concurrency, timings, with_members=True)
        t0 = time.perf_counter()
        await self.fresh_tokens(self.churches, margin=float("inf"))
        timings["logins"] = time.perf_counter() - t0

    async def sign_up_more(self, count: int, concurrency: int) -> None:
        """More churches, without members (for the RSS figure)."""
        await self._sign_up(count, concurrency, {}, with_members=False)

    async def _sign_up(self, count: int, concurrency: int, timings: dict[str, float],
                       with_members: bool) -> None:
        conn = await asyncpg.connect(**self.cluster.admin.with_db(
            f"{self.cluster.prefix}_registry").connect_kwargs())
        try:  # room for every church on the one server (max_tenants defaults to 500)
            await conn.execute("UPDATE db_servers SET max_tenants = greatest(max_tenants, $1)",
                               len(self.churches) + count + 10)
        finally:
            await conn.close()
        start = len(self.churches)
        new = [Church(i, f"admin{i}@{self.cluster.prefix}.example.org")
               for i in range(start, start + count)]
        proc = self.service()
        await proc.start()
        try:
            async with aiohttp.ClientSession() as http:
                t0 = time.perf_counter()
                await _bounded(concurrency, [self._register(http, proc, c) for c in new],
                               "signed up")
                timings["sign-ups"] = time.perf_counter() - t0
                progress(f"  {count / timings['sign-ups']:.1f} sign-ups/s")
                if with_members:
                    t0 = time.perf_counter()
                    await _bounded(concurrency, [self._import(http, proc, c) for c in new],
                                   "imported")
                    timings["imports"] = time.perf_counter() - t0
        finally:
            await proc.stop()
        self.churches += new
        await self._read_tenant_logins()

    async def fresh_tokens(self, churches: list[Church], margin: float) -> None:
        """Log in again every admin whose token would expire within `margin` seconds."""
        due = [c for c in churches if c.exp - time.time() < margin]
        if not due:
            return
        progress(f"logging in {len(due)} admins")
        proc = self.service()
        await proc.start()
        try:
            async with aiohttp.ClientSession() as http:
                await _bounded(8, [self._login(http, proc, c) for c in due], "logged in")
        finally:
            await proc.stop()

    async def _register(self, http: aiohttp.ClientSession, proc: Proc, c: Church) -> None:
        body = await _post(http, proc.url("/api/v1/auth/register"), c, 201, json={
            "church_name": f"Benchmark Church {c.index}", "email": c.email,
            "password": PASSWORD, "first_name": "Office", "last_name": f"Admin {c.index}"})
        c.tenant_id = uuid.UUID(body["church_id"])
        c.token, c.exp = body["access_token"], time.time() + body["expires_in"]

    async def _login(self, http: aiohttp.ClientSession, proc: Proc, c: Church) -> None:
        body = await _post(http, proc.url("/api/v1/auth/login"), c, 200, bearer=False,
                           json={"email": c.email, "password": PASSWORD})
        c.token, c.exp = body["access_token"], time.time() + body["expires_in"]

    async def _import(self, http: aiohttp.ClientSession, proc: Proc, c: Church) -> None:
        form = aiohttp.FormData()
        form.add_field("file", as_csv(list(people(MEMBERS, c.index, set()))),
                       filename="members.csv", content_type="text/csv")
        job = await _post(http, proc.url("/api/v1/members/import"), c, (200, 202), data=form)
        while job["status"] not in ("done", "failed"):
            await asyncio.sleep(0.2)
            async with http.get(proc.url(f"/api/v1/imports/{job['id']}"),
                                headers=c.auth()) as resp:
                job = await resp.json()
        if job["status"] != "done" or job["created"] != MEMBERS:
            raise RuntimeError(f"import for church {c.index}: {job}")

    def affordable(self, m: int) -> int:
        """`m`, or fewer churches if the disk would not hold their databases."""
        extra = m - len(self.churches)
        if extra <= 0:
            return m
        per_db = sum(f.stat().st_size for f in (self.cluster.base / "data" / "base").rglob("*")
                     if f.is_file()) / max(1, len(self.churches) + 3)
        free = shutil.disk_usage(self.cluster.base).free - DISK_MARGIN
        fits = int(free / (per_db * 1.15))
        if fits < extra:
            progress(f"the disk holds about {fits} more databases of {per_db / 2**20:.1f} MiB, "
                     f"not {extra}: {len(self.churches) + max(0, fits)} churches for RSS")
            return len(self.churches) + max(0, fits)
        return m


async def _post(http: aiohttp.ClientSession, url: str, c: Church, want: int | tuple[int, ...],
                bearer: bool = True, **kw: Any) -> Any:
    """POST with the church's forwarded address (and token); 429/503 retried after
    Retry-After."""
    wanted = (want,) if isinstance(want, int) else want
    for attempt in range(8):
        headers = {"X-Forwarded-For": c.forwarded_for,
                   **(c.auth() if bearer and c.token else {})}
        if "data" in kw and attempt:
            raise RuntimeError(f"{url}: a form cannot be sent twice")
        async with http.post(url, headers=headers, **kw) as resp:
            body = await resp.json(content_type=None)
            if resp.status in wanted:
                return body
            if resp.status not in (429, 503):
                raise RuntimeError(f"{url} for church {c.index}: {resp.status} {body}")
            await asyncio.sleep(min(5.0, float(resp.headers.get("Retry-After", "1"))))
    raise RuntimeError(f"{url} for church {c.index}: still refused after 8 tries")


async def _bounded(limit: int, jobs: list[Any], verb: str) -> None:
    """Run coroutines at most `limit` at once, with progress every tenth."""
    sem = asyncio.Semaphore(limit)
    done = 0
    step = max(1, len(jobs) // 10)

    async def one(job: Any) -> None:
        nonlocal done
        async with sem:
            await job
        done += 1
        if done % step == 0 or done == len(jobs):
            progress(f"  {done}/{len(jobs)} {verb}")

    async with asyncio.TaskGroup() as tg:
        for job in jobs:
            tg.create_task(one(job))
