"""One frozen Settings object; the only reader of the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .cors import origin_of, parse_origins
from .errors import ConfigError
from .forwarded import parse_trusted

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
    ("YWM_TRUSTED_PROXIES", "trusted_proxies", str, "",
     "Comma-separated addresses or CIDR networks of the reverse proxies in front of the API; "
     "X-Forwarded-For is believed only from them (empty: never). Set it behind a load "
     "balancer, or every client shares its address for login throttling."),
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
    ("YWM_TENANT_POOL_CAP", "tenant_pool_cap", int, None,
     "Most tenant pools one process keeps open; least recently used idle ones are closed. "
     "Unset: as many as its shares of the servers' connection budgets allow (one connection "
     "per open church); set: that many at most."),
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
    ("YWM_CORS_ORIGINS", "cors_origins", str, "",
     "Comma-separated browser origins (`https://app.example.org`, no path, never `*`) whose "
     "pages may call the API, with credentials (CORS); empty: none. `ywm dev` adds the origin "
     "of YWM_FRONTEND_URL."),
    ("YWM_HSTS_SECONDS", "hsts_seconds", int, 0,
     "`max-age` of the Strict-Transport-Security header on every answer (set it when the API "
     "is reached over HTTPS only); 0: no header."),
    ("YWM_REQUEST_TIMEOUT", "request_timeout", float, 30.0,
     "Seconds a request may take before it is cut off with 504 `request_timeout` (WebSockets "
     "and streamed downloads such as the member export excepted)."),
    ("YWM_IMPORT_TIMEOUT", "import_timeout", float, 300.0,
     "The same limit for `POST /api/v1/members/import` (a large CSV on a slow line)."),
    ("SMTP_URL", "smtp_url", str, None,
     "Where account emails go: smtp://user:password@host:587 (STARTTLS when the server offers "
     "it; ?starttls=require to insist) or smtps://…:465 (TLS). Unset: written as .eml files "
     "under YWM_DATA_DIR/outbox (development)."),
    ("EMAIL_FROM", "email_from", str, "YWMessaging <no-reply@ywmessaging.dev>",
     "The From of account emails."),
    ("YWM_IMPORT_MAX_BYTES", "import_max_bytes", int, 20 * 1_048_576,
     "Largest member CSV accepted by `POST /api/v1/members/import` (read as a stream, so "
     "YWM_MAX_BODY_BYTES does not apply to it); larger files get 413."),
    ("YWM_PASSWORD_HASH_CONCURRENCY", "password_hash_concurrency", int, 0,
     "Most argon2id hashes computed at once per process (0: one per CPU)."),
    # messaging part A (issue 6): carrier adapter, simulator, webhooks
    ("TELNYX_API_BASE", "telnyx_api_base", str, "http://127.0.0.1:8081",
     "Base URL of the Telnyx API (`https://api.telnyx.com` in production; the carrier "
     "simulator by default)."),
    ("TELNYX_API_KEY", "telnyx_api_key", str, "dev-telnyx-key",
     "Telnyx API key sent as `Authorization: Bearer` (the simulator accepts the dev value)."),
    ("TELNYX_PUBLIC_KEY", "telnyx_public_key", str, None,
     "Base64 Ed25519 public key that signs Telnyx webhooks; unset → every webhook is refused "
     "(401). `ywm dev` and the tests use the simulator's key."),
    ("TELNYX_MESSAGING_PROFILE_ID", "telnyx_messaging_profile_id", str, None,
     "Default Telnyx messaging profile id sent with each message."),
    ("TELNYX_TIMEOUT", "telnyx_timeout", float, 10.0,
     "Seconds a Telnyx API call may take in total before it counts as failed."),
    ("CARRIER_SIM_SIGNING_KEY", "carrier_sim_signing_key", str, None,
     "Base64 32-byte Ed25519 seed the carrier simulator signs webhooks with; a fresh key is "
     "made and printed when unset."),
    ("CARRIER_SIM_WEBHOOK_URL", "carrier_sim_webhook_url", str,
     "http://127.0.0.1:8080/webhooks/telnyx",
     "Where the carrier simulator delivers its signed webhooks."),
    ("CARRIER_SIM_HOST", "carrier_sim_host", str, "127.0.0.1",
     "Address the carrier simulator binds."),
    ("CARRIER_SIM_PORT", "carrier_sim_port", int, 8081, "Port the carrier simulator binds."),
    ("CARRIER_SIM_ORDER_DELAY", "carrier_sim_order_delay", float, 1.0,
     "Seconds the carrier simulator keeps a number order `pending` (like Telnyx) before it "
     "completes and sends `number_order.complete`; 0 completes orders before answering. Tests "
     "use a few hundredths of a second."),
    ("YWM_WEBHOOK_SWEEP_INTERVAL", "webhook_sweep_interval", float, 5.0,
     "Seconds between sweeps that retry webhook-inbox events still due (tenant was down)."),
    ("YWM_NUMBER_ORDER_POLL_INTERVAL", "number_order_poll_interval", float, 30.0,
     "Seconds between the worker's polls of phone-number orders still `pending` at the carrier "
     "(each order is asked about at most this often; `number_order.complete` webhooks usually "
     "settle them first)."),
    # messaging part B (issue 6): broadcasts, quota, the outbox worker and its queue
    ("YWM_MONTHLY_MESSAGE_QUOTA", "monthly_message_quota", int, 1000,
     "Messages (outbox rows) a church may queue per calendar month in its time zone, until "
     "billing sets plan limits; over it → 402 `quota_exceeded`. 0: unlimited."),
    ("YWM_COST_PER_SEGMENT", "cost_per_segment", float, 0.004,
     "Estimated carrier cost per SMS segment in USD, shown by the broadcast preview."),
    ("YWM_SEND_RATE_PER_NUMBER", "send_rate_per_number", float, 1.0,
     "Messages per second one sender number may send (token bucket). 0: unpaced."),
    ("YWM_SEND_RATE_PER_CHURCH", "send_rate_per_church", float, 10.0,
     "Messages per second one church may send over all its numbers. 0: unpaced."),
    ("YWM_SEND_MAX_ATTEMPTS", "send_max_attempts", int, 5,
     "Tries per message on 429/5xx/timeouts before it is marked failed."),
    ("YWM_SEND_BACKOFF_BASE", "send_backoff_base", float, 2.0,
     "Seconds of the first retry's backoff ceiling (doubles per attempt, full jitter, capped "
     "at 300 s, never sooner than the carrier's Retry-After)."),
    ("YWM_SEND_LEASE_SECONDS", "send_lease_seconds", float, 60.0,
     "How long a claimed message may stay `sending`; a worker that dies leaves it to turn "
     "`unknown` after this (never resent)."),
    ("YWM_SEND_BATCH_SIZE", "send_batch_size", int, 100,
     "Outbox rows a worker claims per batch."),
    ("YWM_SEND_CONCURRENCY", "send_concurrency", int, 8,
     "Carrier requests in flight at once per church being drained."),
    ("YWM_WORKER_CONCURRENCY", "worker_concurrency", int, 4,
     "Churches one `ywm worker` process drains at once."),
    ("YWM_WORKER_METRICS_PORT", "worker_metrics_port", int, 9101,
     "Port on YWM_HOST where `ywm worker` serves /metrics and /healthz (0: none; a second "
     "worker on the same machine logs that the port is taken and runs without)."),
    ("YWM_WORKER_POLL_INTERVAL", "worker_poll_interval", float, 1.0,
     "Seconds an idle worker waits before asking the queue again."),
    ("YWM_WORKER_CLAIM_TTL", "worker_claim_ttl", float, 30.0,
     "Seconds a worker's claim on a church lasts without renewal (a dead worker's churches "
     "are picked up after this)."),
    ("YWM_WORKER_RECONCILE_INTERVAL", "worker_reconcile_interval", float, 120.0,
     "Seconds between sweeps that re-derive every active church's next due time from its "
     "database (catches a lost enqueue); one worker runs each round."),
    ("YWM_HOUSEKEEPING_INTERVAL", "housekeeping_interval", float, 3600.0,
     "Seconds between housekeeping rounds over every church database (expired sessions, "
     "reset tokens, denylisted token ids, old carrier event ids); one worker runs each."),
    ("YWM_RECURRING_GRACE_SECONDS", "recurring_grace_seconds", float, 900.0,
     "A recurring occurrence later than this is missed: sent late once or skipped, by the "
     "rule's `missed_policy`."),
    ("YWM_RECEIPT_CHECK_AFTER", "receipt_check_after", float, 900.0,
     "Seconds after a send with no final delivery receipt before the worker looks the message "
     "up at the carrier (then twice more at doubling intervals); 0 never looks up."),
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
    trusted_proxies: str = ""
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
    tenant_pool_cap: int | None = None
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
    cors_origins: str = ""
    hsts_seconds: int = 0
    request_timeout: float = 30.0
    import_timeout: float = 300.0
    smtp_url: str | None = None
    email_from: str = "YWMessaging <no-reply@ywmessaging.dev>"
    import_max_bytes: int = 20 * 1_048_576
    password_hash_concurrency: int = 0
    telnyx_api_base: str = "http://127.0.0.1:8081"
    telnyx_api_key: str = "dev-telnyx-key"
    telnyx_public_key: str | None = None
    telnyx_messaging_profile_id: str | None = None
    telnyx_timeout: float = 10.0
    carrier_sim_signing_key: str | None = None
    carrier_sim_webhook_url: str = "http://127.0.0.1:8080/webhooks/telnyx"
    carrier_sim_host: str = "127.0.0.1"
    carrier_sim_port: int = 8081
    carrier_sim_order_delay: float = 1.0
    webhook_sweep_interval: float = 5.0
    number_order_poll_interval: float = 30.0

    monthly_message_quota: int = 1000
    cost_per_segment: float = 0.004
    send_rate_per_number: float = 1.0
    send_rate_per_church: float = 10.0
    send_max_attempts: int = 5
    send_backoff_base: float = 2.0
    send_lease_seconds: float = 60.0
    send_batch_size: int = 100
    send_concurrency: int = 8
    worker_concurrency: int = 4
    worker_metrics_port: int = 9101
    worker_poll_interval: float = 1.0
    worker_claim_ttl: float = 30.0
    worker_reconcile_interval: float = 120.0
    housekeeping_interval: float = 3600.0
    recurring_grace_seconds: float = 900.0
    receipt_check_after: float = 900.0

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
        if self.smtp_url is not None:
            from .auth.smtp import parse_smtp_url  # the check lives with the sender

            try:
                parse_smtp_url(self.smtp_url)
            except ValueError as exc:
                raise ConfigError(f"SMTP_URL: {exc}") from None
        try:
            parse_trusted(self.trusted_proxies)
        except ValueError as exc:
            raise ConfigError(f"YWM_TRUSTED_PROXIES: {exc}") from None
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
        if not 1024 <= self.import_max_bytes <= 100 * 1_048_576:
            raise ConfigError("YWM_IMPORT_MAX_BYTES must be between 1024 and 104857600")
        if self.max_body_bytes < 1024:
            raise ConfigError("YWM_MAX_BODY_BYTES must be at least 1024")
        if not 1 <= self.migrate_concurrency <= 64:
            raise ConfigError("YWM_MIGRATE_CONCURRENCY must be between 1 and 64")
        self._validate_pools()
        self._validate_browser()
        self._validate_sending()
        self._validate_messaging()
        if self.secret_key is not None and len(self.secret_key) < 32:
            raise ConfigError("YWM_SECRET_KEY must be at least 32 characters")

    def _validate_browser(self) -> None:
        try:
            parse_origins(self.cors_origins)
        except ValueError as exc:
            raise ConfigError(f"YWM_CORS_ORIGINS: {exc}") from None
        try:
            origin_of(self.frontend_url)
        except ValueError:
            raise ConfigError("YWM_FRONTEND_URL must be an http(s) URL") from None
        if not 0 <= self.hsts_seconds <= 63_072_000:
            raise ConfigError("YWM_HSTS_SECONDS must be between 0 and 63072000 (two years)")
        for name, limit in (("YWM_REQUEST_TIMEOUT", self.request_timeout),
                            ("YWM_IMPORT_TIMEOUT", self.import_timeout)):
            if not 0 < limit <= 3600:
                raise ConfigError(f"{name} must be between 0 and 3600 seconds")

    def _validate_pools(self) -> None:
        if not 1 <= self.tenant_pool_max <= 50:
            raise ConfigError("YWM_TENANT_POOL_MAX must be between 1 and 50")
        if self.tenant_pool_cap is not None and self.tenant_pool_cap < 1:
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

    def _validate_messaging(self) -> None:
        if not self.telnyx_api_base.startswith(("http://", "https://")):
            raise ConfigError("TELNYX_API_BASE must be an http(s) URL")
        if not 0 < self.telnyx_timeout <= 120:
            raise ConfigError("TELNYX_TIMEOUT must be between 0 and 120 seconds")
        if not 0 < self.webhook_sweep_interval <= 3600:
            raise ConfigError("YWM_WEBHOOK_SWEEP_INTERVAL must be between 0 and 3600 seconds")
        if not 0 < self.number_order_poll_interval <= 86_400:
            raise ConfigError("YWM_NUMBER_ORDER_POLL_INTERVAL must be between 0 and 86400 "
                              "seconds")
        if not 0 <= self.carrier_sim_port <= 65535:
            raise ConfigError("CARRIER_SIM_PORT must be between 0 and 65535")
        if not 0 <= self.carrier_sim_order_delay <= 3600:
            raise ConfigError("CARRIER_SIM_ORDER_DELAY must be between 0 and 3600 seconds")
        for name, value in (("TELNYX_PUBLIC_KEY", self.telnyx_public_key),
                            ("CARRIER_SIM_SIGNING_KEY", self.carrier_sim_signing_key)):
            if value is not None and not _is_b64_32(value):
                raise ConfigError(f"{name} must be the base64 of exactly 32 bytes")

    def _validate_sending(self) -> None:
        for name, value, low, high in (
                ("YWM_MONTHLY_MESSAGE_QUOTA", self.monthly_message_quota, 0, 100_000_000),
                ("YWM_SEND_MAX_ATTEMPTS", self.send_max_attempts, 1, 20),
                ("YWM_SEND_BATCH_SIZE", self.send_batch_size, 1, 1000),
                ("YWM_SEND_CONCURRENCY", self.send_concurrency, 1, 64),
                ("YWM_WORKER_CONCURRENCY", self.worker_concurrency, 1, 64),
                ("YWM_WORKER_METRICS_PORT", self.worker_metrics_port, 0, 65535)):
            if not low <= value <= high:
                raise ConfigError(f"{name} must be between {low} and {high}")
        for name, fvalue in (("YWM_COST_PER_SEGMENT", self.cost_per_segment),
                             ("YWM_SEND_RATE_PER_NUMBER", self.send_rate_per_number),
                             ("YWM_SEND_RATE_PER_CHURCH", self.send_rate_per_church),
                             ("YWM_RECURRING_GRACE_SECONDS", self.recurring_grace_seconds),
                             ("YWM_RECEIPT_CHECK_AFTER", self.receipt_check_after)):
            if not 0 <= fvalue <= 1_000_000:
                raise ConfigError(f"{name} must be a number from 0 to 1000000")
        for name, fvalue in (("YWM_SEND_BACKOFF_BASE", self.send_backoff_base),
                             ("YWM_SEND_LEASE_SECONDS", self.send_lease_seconds),
                             ("YWM_WORKER_POLL_INTERVAL", self.worker_poll_interval),
                             ("YWM_WORKER_CLAIM_TTL", self.worker_claim_ttl),
                             ("YWM_WORKER_RECONCILE_INTERVAL", self.worker_reconcile_interval),
                             ("YWM_HOUSEKEEPING_INTERVAL", self.housekeeping_interval)):
            if not 0 < fvalue <= 86_400:
                raise ConfigError(f"{name} must be a positive number of seconds")

    def require_database_url(self) -> str:
        """The registry DSN, or a ConfigError that says how to provide it."""
        if not self.database_url:
            raise ConfigError(
                "DATABASE_URL is not set: point it at the registry database "
                "(postgresql://user:pass@host:5432/ywm_registry); with neither it nor "
                "YWM_SECRET_KEY set, operator commands use the deployment `ywm dev` made under "
                "YWM_DATA_DIR (run it once)"
            )
        return self.database_url

    def require_secret_key(self) -> str:
        """The master key, or a ConfigError that says how to provide it."""
        if not self.secret_key:
            raise ConfigError("YWM_SECRET_KEY is not set: give it 32 or more random characters "
                              "(the `ywm dev` deployment's is in YWM_DATA_DIR/secret_key)")
        return self.secret_key


def attribute_names() -> list[str]:
    """Names of the Settings fields (for the env-table test)."""
    return [f.name for f in fields(Settings)]


def _is_b64_32(value: str) -> bool:
    import base64
    import binascii

    try:
        return len(base64.b64decode(value, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False
