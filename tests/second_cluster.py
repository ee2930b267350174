"""A second, independent PostgreSQL cluster on loopback for multi-server tests.

`second_server` (session) runs `initdb` + `pg_ctl` on a free 127.0.0.1 port with trust auth,
max_connections 30 and its socket in a temp folder; as root (CI) the cluster runs as an
unprivileged user, since PostgreSQL refuses to run as root. When no `initdb` is installed, the
pgserver wheel's own PG16 binaries are used the same way.

`two_servers` (session) is a deployment of its own (registry, prefix) with the session's server
registered as `primary` and the second cluster added through `ywm servers add`'s code, so that
tests elsewhere keep a one-server registry. Test modules load both with
`pytest_plugins = ["tests.second_cluster"]` (one instance per session, not one per module).
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.pgcluster import drop_everything
from ywmessaging.config import Settings
from ywmessaging.crypto import SecretBox
from ywmessaging.db import pg
from ywmessaging.db.dsn import PgTarget, quote_ident
from ywmessaging.ops.bootstrap import bootstrap
from ywmessaging.ops.servers import add_server
from ywmessaging.sqlq import registry as rq
from ywmessaging.tenants.provisioning import Provisioned, Provisioner

MAX_CONNECTIONS = 30
RUN_AS = ("pgserver", "postgres", "ywmtest")  # candidate unprivileged users when root
TIMEOUT = 60


def _bin_dir() -> Path:
    """Where initdb/pg_ctl live: PATH, Debian's layout, else the pgserver wheel."""
    found = shutil.which("initdb") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)), None)
    if found:
        return Path(os.path.realpath(found)).parent
    from ywmessaging.db import embedded

    return embedded.bin_dir()


def _unprivileged_user() -> pwd.struct_passwd | None:
    """None when not root; else an existing unprivileged user, created if none exists."""
    if os.geteuid() != 0:
        return None
    for name in RUN_AS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    RUN_AS[-1]], check=True, timeout=TIMEOUT)
    return pwd.getpwnam(RUN_AS[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SecondCluster:
    """A throw-away cluster: start, stop (pg_ctl -m fast) and remove it."""

    base: Path
    bindir: Path
    port: int
    user: pwd.struct_passwd | None

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def target(self) -> PgTarget:
        """Admin (superuser `postgres`, trust) on the maintenance database."""
        return PgTarget(host="127.0.0.1", port=self.port, user="postgres", database="postgres")

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        kw: dict[str, object] = {}
        if self.user is not None:
            kw = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C.UTF-8", "HOME": str(self.base)}
        out = subprocess.run([str(self.bindir / args[0]), *args[1:]], cwd=self.base, env=env,
                             capture_output=True, text=True, timeout=TIMEOUT, check=False,
                             **kw)  # type: ignore[call-overload]
        if check and out.returncode != 0:
            log = self.base / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {out.stderr.strip()}\n{tail}")
        return out

    def init(self) -> None:
        """initdb with trust auth and this cluster's settings."""
        sockets = self.base / "sockets"
        sockets.mkdir()
        if self.user is not None:
            for path in (self.base, sockets):
                os.chown(path, self.user.pw_uid, self.user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--locale=C", "-N")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{sockets}'\n"
                       f"max_connections = {MAX_CONNECTIONS}\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")

    def start(self) -> None:
        """pg_ctl start, waiting until it accepts connections."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.base / "server.log"),
                  "-w", "-t", "30", "start")

    def stop(self) -> None:
        """pg_ctl stop -m fast (ends every session at once)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")

    def running(self) -> bool:
        """Whether pg_ctl sees the server running."""
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def destroy(self) -> None:
        """Stop if running and remove every file."""
        try:
            if self.data.exists() and self.running():
                self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def second_server() -> Iterator[SecondCluster]:
    """A second PostgreSQL cluster on 127.0.0.1 (max_connections 30), removed at the end."""
    cluster = SecondCluster(base=Path(tempfile.mkdtemp(prefix="ywm-second-pg-")),
                            bindir=_bin_dir(), port=free_port(), user=_unprivileged_user())
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@dataclass
class TwoServers:
    """A deployment with two database servers, and helpers for tests that use it."""

    settings: Settings
    box: SecretBox
    primary_id: int
    second_id: int
    second: SecondCluster

    async def provision_on(self, pool: Any, server_id: int, name: str) -> Provisioned:
        """Provision a tenant on one chosen server: the other active servers drain meanwhile."""
        q = rq(self.settings.sql_dir)
        others = [r["id"] for r in await q.list_servers(pool)
                  if r["id"] != server_id and r["state"] == "active"]
        for sid in others:
            await q.set_server_state(pool, sid, "draining")
        prov = Provisioner(pool, self.settings, self.box)
        try:
            made = await prov.provision(name)
        finally:
            await prov.close()
            for sid in others:
                await q.set_server_state(pool, sid, "active")
        assert made.server_id == server_id
        return made

    async def role_target(self, pool: Any, tenant_id: uuid.UUID) -> PgTarget:
        """How the tenant's own role reaches its database, as the registry says now."""
        t = await rq(self.settings.sql_dir).get_tenant(pool, tenant_id)
        password = self.box.open(bytes(t["db_password_enc"]), f"tenant-role:{tenant_id}")
        return PgTarget(host=t["server_host"], port=t["server_port"], user=t["db_role"],
                        password=password, database=t["db_name"])

    def ywm(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `ywm ARGS` in a subprocess against this deployment, as an operator would."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("YWM_", "DATABASE_URL"))}
        env.update(DATABASE_URL=self.settings.database_url or "",
                   YWM_SECRET_KEY=self.settings.secret_key or "",
                   YWM_DB_PREFIX=self.settings.db_prefix)
        return subprocess.run([sys.executable, "-m", "ywmessaging", *args], env=env,
                              capture_output=True, text=True, timeout=TIMEOUT)

    @staticmethod
    def dead_dsn() -> str:
        """A DSN on a loopback port where nothing listens."""
        return PgTarget(host="127.0.0.1", port=free_port(), user="postgres").dsn()


@pytest.fixture(scope="session")
async def two_servers(pg_admin: PgTarget, settings: Settings, box: SecretBox,
                      second_server: SecondCluster) -> AsyncIterator[TwoServers]:
    """Its own registry and prefix: `primary` (the session's server) plus the second cluster."""
    prefix = f"{settings.db_prefix}m"
    settings = settings.with_(database_url=pg_admin.with_db(f"{prefix}_registry").dsn(),
                              db_prefix=prefix)
    try:
        await bootstrap(settings)
        conn = await pg.connect(PgTarget.parse(settings.database_url or ""))
        try:
            primary = await conn.fetchval("SELECT id FROM db_servers WHERE name = 'primary'")
            row = await add_server(conn, settings, box, name="second",
                                   dsn=second_server.target.dsn(), max_tenants=50, budget=12)
        finally:
            await conn.close()
        yield TwoServers(settings=settings, box=box, primary_id=primary, second_id=row["id"],
                         second=second_server)
    finally:
        await _drop_prefix(pg_admin, prefix)


async def _drop_prefix(admin: PgTarget, prefix: str) -> None:
    """Drop this deployment's databases on the session's server, concurrently: each DROP
    DATABASE waits for a checkpoint, and concurrent ones share it."""
    like = prefix.replace("_", r"\_") + r"\_%"
    conn = await pg.connect(admin)
    try:
        names = [r["datname"] for r in await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1", like)]
        for name in names:
            await conn.execute(f"ALTER DATABASE {quote_ident(name)} IS_TEMPLATE false")
    finally:
        await conn.close()

    async def drop(name: str) -> None:
        c = await pg.connect(admin)
        try:
            await pg.drop_database(c, name)
        finally:
            await c.close()

    await asyncio.gather(*(drop(n) for n in names))
    await drop_everything(admin, prefix)  # roles, and anything created meanwhile



@pytest.fixture
async def two_pool(two_servers: TwoServers) -> AsyncIterator[Any]:
    """A small pool on the two-server deployment's registry."""
    pool = await pg.create_pool(PgTarget.parse(two_servers.settings.database_url or ""),
                                max_size=4)
    yield pool
    await pool.close()

