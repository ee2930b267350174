"""Connection targets: parse a PostgreSQL DSN once, derive asyncpg, yoyo and libpq forms."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from ..errors import ConfigError


@dataclass(frozen=True)
class PgTarget:
    """Where and as whom to connect. `host` may be a Unix-socket directory."""

    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    password: str | None = None
    database: str = "postgres"

    @classmethod
    def parse(cls, dsn: str) -> PgTarget:
        """Parse `postgresql://user:pass@host:port/db?host=/socket/dir`."""
        parts = urlsplit(dsn)
        if parts.scheme not in ("postgres", "postgresql"):
            raise ConfigError(f"not a PostgreSQL URL (want postgresql://...): {redact(dsn)}")
        query = dict(parse_qsl(parts.query))
        host = query.pop("host", None) or parts.hostname or "127.0.0.1"
        try:
            port = int(query.pop("port", None) or parts.port or 5432)
        except ValueError:
            raise ConfigError(f"bad port in {redact(dsn)}") from None
        database = unquote(parts.path.lstrip("/")) or "postgres"
        return cls(
            host=host,
            port=port,
            user=unquote(parts.username) if parts.username else query.pop("user", "postgres"),
            password=unquote(parts.password) if parts.password else query.pop("password", None),
            database=database,
        )

    def with_db(self, database: str) -> PgTarget:
        """The same server and user, another database."""
        return replace(self, database=database)

    def as_user(self, user: str, password: str | None) -> PgTarget:
        """The same server and database, another role."""
        return replace(self, user=user, password=password)

    @property
    def is_socket(self) -> bool:
        return self.host.startswith("/")

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for asyncpg.connect / create_pool."""
        kw: dict[str, Any] = {
            "host": self.host, "port": self.port, "user": self.user, "database": self.database,
        }
        if self.password is not None:
            kw["password"] = self.password
        return kw

    def dsn(self) -> str:
        """A libpq URL (psql, pg_dump, asyncpg)."""
        auth = quote(self.user, safe="")
        if self.password is not None:
            auth += ":" + quote(self.password, safe="")
        if self.is_socket:
            q = urlencode({"host": self.host, "port": self.port})
            return f"postgresql://{auth}@/{quote(self.database, safe='')}?{q}"
        return f"postgresql://{auth}@{self.host}:{self.port}/{quote(self.database, safe='')}"

    def yoyo_uri(self) -> str:
        """A yoyo backend URI using psycopg 3."""
        auth = quote(self.user, safe="")
        if self.password is not None:
            auth += ":" + quote(self.password, safe="")
        if self.is_socket:
            q = urlencode({"host": self.host, "port": self.port})
            return f"postgresql+psycopg://{auth}@/{quote(self.database, safe='')}?{q}"
        return (
            f"postgresql+psycopg://{auth}@{self.host}:{self.port}/{quote(self.database, safe='')}"
        )

    def describe(self) -> str:
        """Host, port and database without credentials (logs, CLI output)."""
        return f"{self.host}:{self.port}/{self.database}"


def redact(dsn: str) -> str:
    """A DSN with its password replaced by ***."""
    parts = urlsplit(dsn)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return dsn


def quote_ident(name: str) -> str:
    """Quote an identifier that the service itself generated (never user input)."""
    if not name.replace("_", "").isalnum() or not name.isascii():
        raise ValueError(f"refusing unsafe identifier {name!r}")
    return '"' + name + '"'
