"""One frozen Settings object; the only reader of the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]

# (env var, attribute, type, default, meaning) — the README's table is generated from this list
# by `ywm env` and a test keeps the two in step.
ENV_VARS: list[tuple[str, str, type, Any, str]] = [
    ("DATABASE_URL", "database_url", str, None,
     "Registry database DSN (postgresql://...). Required by `ywm serve`/`worker`; "
     "`ywm dev` starts an embedded PostgreSQL when unset."),
    ("YWM_SECRET_KEY", "secret_key", str, None,
     "Master key for secrets at rest (tenant role passwords, TOTP secrets, EIN). "
     "Required by `ywm serve`; `ywm dev` keeps one in `.data/secret_key`."),
    ("YWM_HOST", "host", str, "127.0.0.1", "Address the HTTP server binds."),
    ("YWM_PORT", "port", int, 8080, "Port the HTTP server binds."),
    ("YWM_DATA_DIR", "data_dir", Path, REPO_ROOT / ".data",
     "Where `ywm dev` keeps the embedded PostgreSQL and its dev key."),
    ("YWM_DB_PREFIX", "db_prefix", str, "ywm",
     "Prefix of every database and role the service creates (tenant databases, roles, "
     "templates)."),
    ("YWM_SQL_DIR", "sql_dir", Path, REPO_ROOT / "sql",
     "Folder holding `registry/` and `tenant/` migrations and named queries."),
    ("YWM_LOG_LEVEL", "log_level", str, "info", "debug, info, warning or error."),
    ("YWM_LOG_FORMAT", "log_format", str, "json",
     "`json` (one JSON object per line) or `console` (human-readable)."),
    ("YWM_MAX_BODY_BYTES", "max_body_bytes", int, 1_048_576,
     "Largest accepted request body; larger ones get 413 `payload_too_large`."),
    ("YWM_SHUTDOWN_TIMEOUT", "shutdown_timeout", float, 30.0,
     "Seconds SIGTERM waits for in-flight requests before closing."),
    ("YWM_REGISTRY_POOL_MAX", "registry_pool_max", int, 10,
     "Largest registry connection pool per process."),
    ("YWM_MIGRATE_CONCURRENCY", "migrate_concurrency", int, 4,
     "Default tenants migrated at once per database server by `ywm migrate`."),
    ("YWM_OPERATOR_TOKEN", "operator_token", str, None,
     "Bearer token for `/ops/*` operator endpoints; they answer 404 when unset."),
    ("YWM_TENANT_POOL_MAX", "tenant_pool_max", int, 3,
     "Largest connection pool per open tenant database (asyncpg pools open lazily, min 0)."),
    ("YWM_TENANT_POOL_CAP", "tenant_pool_cap", int, 50,
     "Most tenant pools one process keeps open; least recently used idle ones are closed."),
    ("YWM_TENANT_IDLE_SECONDS", "tenant_idle_seconds", float, 300.0,
     "A tenant pool unused this long is closed by the idle sweep."),
    ("YWM_TENANT_CONNECT_TIMEOUT", "tenant_connect_timeout", float, 1.0,
     "Seconds a new connection to a tenant database may take before it counts as failed."),
    ("YWM_LEASE_TIMEOUT", "lease_timeout", float, 2.0,
     "Seconds a request waits for a free connection of its tenant's pool before 503 "
     "`tenant_capacity`."),
    ("YWM_HEALTH_INTERVAL", "health_interval", float, 15.0,
     "Seconds between health probes (`SELECT 1`) of open tenant pools."),
    ("YWM_REGISTRY_CACHE_TTL", "registry_cache_ttl", float, 30.0,
     "Seconds a tenant's registry row is cached (changes also invalidate it at once via "
     "LISTEN/NOTIFY)."),
    ("YWM_HEARTBEAT_INTERVAL", "heartbeat_interval", float, 5.0,
     "Seconds between a process's heartbeats in the registry; each database server's "
     "connection budget is shared among processes with a fresh heartbeat."),
    ("YWM_PROCESS_WEIGHT", "process_weight", int, 1,
     "This process's weight when servers' connection budgets are shared among processes."),
    ("JWT_ISSUER", "jwt_issuer", str, "ywmessaging", "The `iss` claim of access tokens."),
    ("JWT_AUDIENCE", "jwt_audience", str, "ywmessaging-api",
     "The `aud` claim of access tokens."),
    ("JWT_ACCESS_TTL", "jwt_access_ttl", int, 900,
     "Access-token lifetime in seconds (at most 900)."),
    ("JWT_REFRESH_TTL", "jwt_refresh_ttl", int, 1_209_600, "Refresh-token lifetime in seconds."),
    ("JWT_SIGNING_KEYS", "jwt_signing_keys", str, None,
     "HS256 keyring `kid1:base64key,kid2:base64key` (keys of 32+ bytes): the first signs, the "
     "others only verify (rotation). Derived from YWM_SECRET_KEY when unset."),
    ("JWT_SESSION_MAX_AGE", "jwt_session_max_age", int, 2_592_000,
     "Absolute lifetime of a login session (refresh-token family) in seconds."),
    ("YWM_FRONTEND_URL", "frontend_url", str, "http://localhost:5173",
     "Base URL of the web frontend, used in password-reset and invitation links."),
    ("YWM_PASSWORD_HASH_CONCURRENCY", "password_hash_concurrency", int, 0,
     "Most argon2id hashes computed at once per process (0: one per CPU)."),
]


def _parse(name: str, kind: type, raw: str) -> Any:
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if kind is Path:
        return Path(raw).expanduser()
    return raw


@dataclass(frozen=True)
class Settings:
    """Every setting of the service; built once by `Settings.from_env` and passed explicitly."""

    database_url: str | None = None
    secret_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = field(default=REPO_ROOT / ".data")
    db_prefix: str = "ywm"
    sql_dir: Path = field(default=REPO_ROOT / "sql")
    log_level: str = "info"
    log_format: str = "json"
    max_body_bytes: int = 1_048_576
    shutdown_timeout: float = 30.0
    registry_pool_max: int = 10
    migrate_concurrency: int = 4
    operator_token: str | None = None
    tenant_pool_max: int = 3
    tenant_pool_cap: int = 50
    tenant_idle_seconds: float = 300.0
    tenant_connect_timeout: float = 1.0
    lease_timeout: float = 2.0
    health_interval: float = 15.0
    registry_cache_ttl: float = 30.0
    heartbeat_interval: float = 5.0
    process_weight: int = 1
    jwt_issuer: str = "ywmessaging"
    jwt_audience: str = "ywmessaging-api"
    jwt_access_ttl: int = 900
    jwt_refresh_ttl: int = 1_209_600
    jwt_signing_keys: str | None = None
    jwt_session_max_age: int = 2_592_000
    frontend_url: str = "http://localhost:5173"
    password_hash_concurrency: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every `ENV_VARS` entry from `env` (default: the process environment)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, attr, kind, _default, _meaning in ENV_VARS:
            raw = env.get(name)
            if raw is not None and raw != "":
                values[attr] = _parse(name, kind, raw)
        values.update(overrides)
        settings = cls(**values)
        settings.validate()
        return settings

    def with_(self, **changes: Any) -> Settings:
        """A copy with some settings changed."""
        return replace(self, **changes)

    def validate(self) -> None:
        """Refuse settings that cannot work, with one clear sentence."""
        if not self.db_prefix.isidentifier() or self.db_prefix != self.db_prefix.lower():
            raise ConfigError("YWM_DB_PREFIX must be lower-case letters, digits and underscores")
        if len(self.db_prefix) > 20:
            raise ConfigError("YWM_DB_PREFIX must be at most 20 characters")
        if self.log_format not in ("json", "console"):
            raise ConfigError("YWM_LOG_FORMAT must be `json` or `console`")
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise ConfigError("YWM_LOG_LEVEL must be debug, info, warning or error")
        if not 0 < self.jwt_access_ttl <= 900:
            raise ConfigError("JWT_ACCESS_TTL must be between 1 and 900 seconds")
        if self.jwt_refresh_ttl < 60 or self.jwt_session_max_age < self.jwt_refresh_ttl:
            raise ConfigError("JWT_SESSION_MAX_AGE must be at least JWT_REFRESH_TTL (60 s or more)")
        if not 0 <= self.password_hash_concurrency <= 64:
            raise ConfigError("YWM_PASSWORD_HASH_CONCURRENCY must be between 0 and 64")
        if self.max_body_bytes < 1024:
            raise ConfigError("YWM_MAX_BODY_BYTES must be at least 1024")
        if not 1 <= self.migrate_concurrency <= 64:
            raise ConfigError("YWM_MIGRATE_CONCURRENCY must be between 1 and 64")
        self._validate_pools()
        if self.secret_key is not None and len(self.secret_key) < 32:
            raise ConfigError("YWM_SECRET_KEY must be at least 32 characters")

    def _validate_pools(self) -> None:
        if not 1 <= self.tenant_pool_max <= 50:
            raise ConfigError("YWM_TENANT_POOL_MAX must be between 1 and 50")
        if self.tenant_pool_cap < 1:
            raise ConfigError("YWM_TENANT_POOL_CAP must be at least 1")
        if self.process_weight < 1:
            raise ConfigError("YWM_PROCESS_WEIGHT must be at least 1")
        for name, value in (("YWM_TENANT_IDLE_SECONDS", self.tenant_idle_seconds),
                            ("YWM_TENANT_CONNECT_TIMEOUT", self.tenant_connect_timeout),
                            ("YWM_LEASE_TIMEOUT", self.lease_timeout),
                            ("YWM_HEALTH_INTERVAL", self.health_interval),
                            ("YWM_REGISTRY_CACHE_TTL", self.registry_cache_ttl),
                            ("YWM_HEARTBEAT_INTERVAL", self.heartbeat_interval)):
            if not 0 < value <= 86_400:
                raise ConfigError(f"{name} must be a positive number of seconds")

    def require_database_url(self) -> str:
        """The registry DSN, or a ConfigError that says how to provide it."""
        if not self.database_url:
            raise ConfigError(
                "DATABASE_URL is not set: point it at the registry database "
                "(postgresql://user:pass@host:5432/ywm_registry), or use `ywm dev` for the "
                "embedded defaults"
            )
        return self.database_url

    def require_secret_key(self) -> str:
        """The master key, or a ConfigError that says how to provide it."""
        if not self.secret_key:
            raise ConfigError("YWM_SECRET_KEY is not set: give it 32 or more random characters")
        return self.secret_key


def attribute_names() -> list[str]:
    """Names of the Settings fields (for the env-table test)."""
    return [f.name for f in fields(Settings)]
