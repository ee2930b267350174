"""One frozen Settings object; the only reader of the environment.

Each setting is declared once, as a `Settings` field made by `setting(env var, default,
meaning)`; its annotation is its type. `ENV_VARS` is derived from those fields: `from_env` reads
it, and `ywm env` prints it as the README's table.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, get_args, get_type_hints

from .cors import origin_of, parse_origins
from .errors import ConfigError
from .forwarded import parse_trusted

REPO_ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def setting(env: str, default: T, meaning: str) -> T:
    """A `Settings` field read from the environment variable `env` (the field's annotation is
    its type: str, int, float or Path, optionally `| None`)."""
    return field(default=default, metadata={"env": env, "meaning": meaning})


class EnvVar(NamedTuple):
    """One setting as the environment sees it (derived from its `Settings` field)."""

    name: str
    attr: str
    kind: type
    default: Any
    meaning: str


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

    database_url: str | None = setting("DATABASE_URL", None,
        "Registry database DSN (postgresql://...). Required by `ywm serve`/`worker`; `ywm dev` "
        "starts an embedded PostgreSQL when unset.")
    secret_key: str | None = setting("YWM_SECRET_KEY", None,
        "Master key for secrets at rest (tenant role passwords, TOTP secrets, EIN). Required by "
        "`ywm serve`; `ywm dev` keeps one in `.data/secret_key`.")
    host: str = setting("YWM_HOST", "127.0.0.1", "Address the HTTP server binds.")
    port: int = setting("YWM_PORT", 8080, "Port the HTTP server binds.")
    trusted_proxies: str = setting("YWM_TRUSTED_PROXIES", "",
        "Comma-separated addresses or CIDR networks of the reverse proxies in front of the API; "
        "X-Forwarded-For is believed only from them (empty: never). Set it behind a load balancer, "
        "or every client shares its address for login throttling.")
    data_dir: Path = setting("YWM_DATA_DIR", REPO_ROOT / ".data",
        "Where `ywm dev` keeps the embedded PostgreSQL and its dev key.")
    db_prefix: str = setting("YWM_DB_PREFIX", "ywm",
        "Prefix of every database and role the service creates (tenant databases, roles, "
        "templates).")
    sql_dir: Path = setting("YWM_SQL_DIR", REPO_ROOT / "sql",
        "Folder holding `registry/` and `tenant/` migrations and named queries.")
    log_level: str = setting("YWM_LOG_LEVEL", "info", "debug, info, warning or error.")
    log_format: str = setting("YWM_LOG_FORMAT", "json",
        "`json` (one JSON object per line) or `console` (human-readable).")
    max_body_bytes: int = setting("YWM_MAX_BODY_BYTES", 1_048_576,
        "Largest accepted request body; larger ones get 413 `payload_too_large`.")
    shutdown_timeout: float = setting("YWM_SHUTDOWN_TIMEOUT", 30.0,
        "Seconds SIGTERM waits for in-flight requests before closing.")
    registry_pool_max: int = setting("YWM_REGISTRY_POOL_MAX", 10,
        "Largest registry connection pool per process.")
    migrate_concurrency: int = setting("YWM_MIGRATE_CONCURRENCY", 4,
        "Default tenants migrated at once per database server by `ywm migrate`.")
    operator_token: str | None = setting("YWM_OPERATOR_TOKEN", None,
        "Bearer token for `/ops/*` operator endpoints; they answer 404 when unset.")
    tenant_pool_max: int = setting("YWM_TENANT_POOL_MAX", 3,
        "Largest connection pool per open tenant database (asyncpg pools open lazily, min 0).")
    tenant_pool_cap: int | None = setting("YWM_TENANT_POOL_CAP", None,
        "Most tenant pools one process keeps open; least recently used idle ones are closed. "
        "Unset: as many as its shares of the servers' connection budgets allow (one connection per "
        "open church); set: that many at most.")
    tenant_idle_seconds: float = setting("YWM_TENANT_IDLE_SECONDS", 300.0,
        "A tenant pool unused this long is closed by the idle sweep.")
    tenant_connect_timeout: float = setting("YWM_TENANT_CONNECT_TIMEOUT", 1.0,
        "Seconds a new connection to a tenant database may take before it counts as failed.")
    lease_timeout: float = setting("YWM_LEASE_TIMEOUT", 2.0,
        "Seconds a request waits for a free connection of its tenant's pool before 503 "
        "`tenant_capacity`.")
    health_interval: float = setting("YWM_HEALTH_INTERVAL", 15.0,
        "Seconds between health probes (`SELECT 1`) of open tenant pools.")
    registry_cache_ttl: float = setting("YWM_REGISTRY_CACHE_TTL", 30.0,
        "Seconds a tenant's registry row is cached (changes also invalidate it at once via "
        "LISTEN/NOTIFY).")
    heartbeat_interval: float = setting("YWM_HEARTBEAT_INTERVAL", 5.0,
        "Seconds between a process's heartbeats in the registry; each database server's connection "
        "budget is shared among processes with a fresh heartbeat.")
    process_weight: int = setting("YWM_PROCESS_WEIGHT", 1,
        "This process's weight when servers' connection budgets are shared among processes.")
    jwt_issuer: str = setting("JWT_ISSUER", "ywmessaging", "The `iss` claim of access tokens.")
    jwt_audience: str = setting("JWT_AUDIENCE", "ywmessaging-api",
        "The `aud` claim of access tokens.")
    jwt_access_ttl: int = setting("JWT_ACCESS_TTL", 900,
        "Access-token lifetime in seconds (at most 900).")
    jwt_refresh_ttl: int = setting("JWT_REFRESH_TTL", 1_209_600,
        "Refresh-token lifetime in seconds.")
    jwt_signing_keys: str | None = setting("JWT_SIGNING_KEYS", None,
        "HS256 keyring `kid1:base64key,kid2:base64key` (keys of 32+ bytes): the first signs, the "
        "others only verify (rotation). Derived from YWM_SECRET_KEY when unset.")
    jwt_session_max_age: int = setting("JWT_SESSION_MAX_AGE", 2_592_000,
        "Absolute lifetime of a login session (refresh-token family) in seconds.")
    frontend_url: str = setting("YWM_FRONTEND_URL", "http://localhost:5173",
        "Base URL of the web frontend, used in password-reset and invitation links.")
    cors_origins: str = setting("YWM_CORS_ORIGINS", "",
        "Comma-separated browser origins (`https://app.example.org`, no path, never `*`) whose "
        "pages may call the API, with credentials (CORS); empty: none. `ywm dev` adds the origin "
        "of YWM_FRONTEND_URL.")
    hsts_seconds: int = setting("YWM_HSTS_SECONDS", 0,
        "`max-age` of the Strict-Transport-Security header on every answer (set it when the API is "
        "reached over HTTPS only); 0: no header.")
    request_timeout: float = setting("YWM_REQUEST_TIMEOUT", 30.0,
        "Seconds a request may take before it is cut off with 504 `request_timeout` (WebSockets "
        "and streamed downloads such as the member export excepted).")
    import_timeout: float = setting("YWM_IMPORT_TIMEOUT", 300.0,
        "The same limit for `POST /api/v1/members/import` (a large CSV on a slow line).")
    events_replay_seconds: float = setting("YWM_EVENTS_REPLAY_SECONDS", 600.0,
        "How long a church's live events are kept for replay: a client reconnecting to "
        "`/api/v1/events` with its last event id gets what it missed within this window.")
    events_queue_size: int = setting("YWM_EVENTS_QUEUE_SIZE", 256,
        "Events waiting to be sent per live-events socket; a client that falls this far behind "
        "is disconnected with close code 4008 (it reconnects with its last event id).")
    events_heartbeat: float = setting("YWM_EVENTS_HEARTBEAT", 20.0,
        "Seconds between WebSocket pings on `/api/v1/events`; a client that does not answer "
        "within half of it is disconnected.")
    smtp_url: str | None = setting("SMTP_URL", None,
        "Where account emails go: smtp://user:password@host:587 (STARTTLS when the server offers "
        "it; ?starttls=require to insist) or smtps://…:465 (TLS). Unset: written as .eml files "
        "under YWM_DATA_DIR/outbox (development).")
    email_from: str = setting("EMAIL_FROM", "YWMessaging <no-reply@ywmessaging.dev>",
        "The From of account emails.")
    import_max_bytes: int = setting("YWM_IMPORT_MAX_BYTES", 20 * 1_048_576,
        "Largest member CSV accepted by `POST /api/v1/members/import` (read as a stream, so "
        "YWM_MAX_BODY_BYTES does not apply to it); larger files get 413.")
    export_dir: Path | None = setting("YWM_EXPORT_DIR", None,
        "Folder the full account exports (ZIP files, one subfolder per church) are written to "
        "and downloaded from; they are deleted 24 hours after they finish. Unset: `exports` "
        "under YWM_DATA_DIR. API and worker processes on several machines must share it.")
    password_hash_concurrency: int = setting("YWM_PASSWORD_HASH_CONCURRENCY", 0,
        "Most argon2id hashes computed at once per process (0: one per CPU).")
    # messaging: the carrier adapter, its simulator, webhooks
    telnyx_api_base: str = setting("TELNYX_API_BASE", "http://127.0.0.1:8081",
        "Base URL of the Telnyx API (`https://api.telnyx.com` in production; the carrier simulator "
        "by default).")
    telnyx_api_key: str = setting("TELNYX_API_KEY", "dev-telnyx-key",
        "Telnyx API key sent as `Authorization: Bearer` (the simulator accepts the dev value).")
    telnyx_public_key: str | None = setting("TELNYX_PUBLIC_KEY", None,
        "Base64 Ed25519 public key that signs Telnyx webhooks; unset → every webhook is refused "
        "(401). `ywm dev` and the tests use the simulator's key.")
    telnyx_messaging_profile_id: str | None = setting("TELNYX_MESSAGING_PROFILE_ID", None,
        "Default Telnyx messaging profile id sent with each message.")
    telnyx_timeout: float = setting("TELNYX_TIMEOUT", 10.0,
        "Seconds a Telnyx API call may take in total before it counts as failed.")
    carrier_sim_signing_key: str | None = setting("CARRIER_SIM_SIGNING_KEY", None,
        "Base64 32-byte Ed25519 seed the carrier simulator signs webhooks with; a fresh key is "
        "made and printed when unset.")
    carrier_sim_webhook_url: str = setting(
        "CARRIER_SIM_WEBHOOK_URL", "http://127.0.0.1:8080/webhooks/telnyx",
        "Where the carrier simulator delivers its signed webhooks.")
    carrier_sim_host: str = setting("CARRIER_SIM_HOST", "127.0.0.1",
        "Address the carrier simulator binds.")
    carrier_sim_port: int = setting("CARRIER_SIM_PORT", 8081, "Port the carrier simulator binds.")
    carrier_sim_order_delay: float = setting("CARRIER_SIM_ORDER_DELAY", 1.0,
        "Seconds the carrier simulator keeps a number order `pending` (like Telnyx) before it "
        "completes and sends `number_order.complete`; 0 completes orders before answering. Tests "
        "use a few hundredths of a second.")
    webhook_sweep_interval: float = setting("YWM_WEBHOOK_SWEEP_INTERVAL", 5.0,
        "Seconds between sweeps that retry webhook-inbox events still due (tenant was down).")
    number_order_poll_interval: float = setting("YWM_NUMBER_ORDER_POLL_INTERVAL", 30.0,
        "Seconds between the worker's polls of phone-number orders still `pending` at the carrier "
        "(each order is asked about at most this often; `number_order.complete` webhooks usually "
        "settle them first).")
    number_recovery_days: float = setting("YWM_NUMBER_RECOVERY_DAYS", 30.0,
        "Days a released phone number stays `archived` (still on the carrier account and billed, "
        "routing STOP/HELP and texts to its church, nobody else's) so its church can recover it; "
        "then the worker releases it at the carrier.")
    number_release_sweep_interval: float = setting("YWM_NUMBER_RELEASE_SWEEP_INTERVAL", 300.0,
        "Seconds between the worker's sweeps that release archived numbers whose recovery window "
        "is over (a carrier fault is retried with backoff, from a minute up to an hour).")
    telnyx_webhook_url: str | None = setting("TELNYX_WEBHOOK_URL", None,
        "Public URL of this service's `POST /webhooks/telnyx`, given to Telnyx as the "
        "`webhookURL` of 10DLC brands and campaigns (their status events); unset: none is "
        "given (set it in the Telnyx portal).")
    tendlc_poll_interval: float = setting("YWM_10DLC_POLL_INTERVAL", 600.0,
        "Seconds between the worker's reads of 10DLC brands and campaigns still `pending` at "
        "the carrier and of live campaigns (a suspension whose webhook was lost); each is asked "
        "about at most this often (signed 10DLC webhooks usually come first).")
    # billing: the Stripe adapter and the Stripe simulator
    stripe_api_key: str = setting("STRIPE_API_KEY", "sk_test_ywm_dev",
        "Stripe secret key (`sk_live_…` in production); the Stripe simulator accepts any "
        "`sk_test_…` key.")
    stripe_webhook_secret: str | None = setting("STRIPE_WEBHOOK_SECRET", None,
        "Endpoint secret (`whsec_…`) that signs Stripe webhooks; several comma-separated while "
        "one is rolled (any may match). Unset: every Stripe webhook is refused. The Stripe "
        "simulator signs with the first; `ywm dev` and the tests use the simulator's.")
    stripe_api_base: str = setting("STRIPE_API_BASE", "http://127.0.0.1:8082",
        "Base URL of the Stripe API (`https://api.stripe.com` in production; the Stripe "
        "simulator by default).")
    stripe_timeout: float = setting("STRIPE_TIMEOUT", 10.0,
        "Seconds one Stripe API request may take before it counts as failed.")
    stripe_max_retries: int = setting("STRIPE_MAX_RETRIES", 2,
        "Retries of a Stripe call that could not connect or got 409, 429 or 5xx (backoff from "
        "0.5 s, same idempotency key) before it fails with 503 `billing_unavailable`.")
    stripe_sim_host: str = setting("STRIPE_SIM_HOST", "127.0.0.1",
        "Address the Stripe simulator binds.")
    stripe_sim_port: int = setting("STRIPE_SIM_PORT", 8082, "Port the Stripe simulator binds.")
    stripe_sim_webhook_url: str = setting(
        "STRIPE_SIM_WEBHOOK_URL", "http://127.0.0.1:8080/webhooks/stripe",
        "Where the Stripe simulator delivers its signed webhooks.")
    # Planning Center: the OAuth app, the People API (or its simulator), the sync
    pco_client_id: str = setting("PCO_CLIENT_ID", "dev-pco-client",
        "Client id of the Planning Center OAuth application (see "
        "ops/runbook-planning-center.md); the simulator accepts the dev value.")
    pco_client_secret: str = setting("PCO_CLIENT_SECRET", "dev-pco-secret",
        "Client secret of the Planning Center OAuth application.")
    pco_api_base: str = setting("PCO_API_BASE", "http://127.0.0.1:8083",
        "Base URL of Planning Center (`https://api.planningcenteronline.com` in production; the "
        "Planning Center simulator by default): OAuth, People v2, webhook subscriptions.")
    pco_redirect_url: str = setting(
        "PCO_REDIRECT_URL", "http://127.0.0.1:8080/api/v1/integrations/planning-center/callback",
        "The OAuth redirect URL registered with the Planning Center app: this service's "
        "public `GET /api/v1/integrations/planning-center/callback`.")
    pco_webhook_url: str | None = setting(
        "PCO_WEBHOOK_URL", "http://127.0.0.1:8080/webhooks/planning-center",
        "Public URL of this service's `POST /webhooks/planning-center`, subscribed to person "
        "events when a church connects; unset: no webhook subscriptions (scheduled syncs only).")
    pco_sync_interval: float = setting("PCO_SYNC_INTERVAL", 3600.0,
        "Seconds between a connected church's scheduled incremental Planning Center syncs.")
    pco_full_sync_interval: float = setting("PCO_FULL_SYNC_INTERVAL", 86400.0,
        "Seconds after which a scheduled sync is a full one again (it finds people removed "
        "whose webhook was lost).")
    pco_timeout: float = setting("PCO_TIMEOUT", 15.0,
        "Seconds one Planning Center request may take before it counts as failed.")
    pco_sim_host: str = setting("PCO_SIM_HOST", "127.0.0.1",
        "Address the Planning Center simulator binds.")
    pco_sim_port: int = setting("PCO_SIM_PORT", 8083,
        "Port the Planning Center simulator binds.")
    # sending: broadcasts, quota, the outbox worker and its queue
    billing_catalogue: Path | None = setting("YWM_BILLING_CATALOGUE", None,
        "A JSON or TOML file replacing the built-in plan catalogue (prices, limits, trial; see "
        "billing/catalogue.py and ops/runbook-billing.md); checked at boot. Unset: the built-in "
        "starter/growth/pro plans.")
    billing_grace_days: float = setting("YWM_BILLING_GRACE_DAYS", 7.0,
        "Days a church may stay `past_due` (a failed payment) and keep sending; after them "
        "sends get 402 `subscription_inactive` until a payment succeeds.")
    billing_suspend_after_days: float = setting("YWM_BILLING_SUSPEND_AFTER_DAYS", 30.0,
        "Days sending may stay stopped for billing reasons (trial ended, past due beyond the "
        "grace, canceled past the period end, unpaid) before the housekeeping round suspends "
        "the church (423 `tenant_suspended` except billing, export and deletion); a "
        "subscription that becomes active again resumes it. 0: never suspend automatically.")
    cost_per_segment: float = setting("YWM_COST_PER_SEGMENT", 0.004,
        "Estimated carrier cost per SMS segment in USD, shown by the broadcast preview.")
    cost_per_mms: float = setting("YWM_COST_PER_MMS", 0.015,
        "Estimated carrier cost per MMS in USD (an MMS is one message whatever its text), "
        "shown by the broadcast preview.")
    numbers_per_church: int = setting("YWM_NUMBERS_PER_CHURCH", 5,
        "Phone numbers one church may hold at once (pending and active ones; archived ones "
        "do not count). Not a plan limit: every plan may use them, each number is billed.")
    send_rate_per_number: float = setting("YWM_SEND_RATE_PER_NUMBER", 1.0,
        "Messages per second one sender number may send (token bucket). 0: unpaced.")
    send_rate_per_church: float = setting("YWM_SEND_RATE_PER_CHURCH", 10.0,
        "Messages per second one church may send over all its numbers. 0: unpaced.")
    send_max_attempts: int = setting("YWM_SEND_MAX_ATTEMPTS", 5,
        "Tries per message on 429/5xx/timeouts before it is marked failed.")
    send_backoff_base: float = setting("YWM_SEND_BACKOFF_BASE", 2.0,
        "Seconds of the first retry's backoff ceiling (doubles per attempt, full jitter, capped at "
        "300 s, never sooner than the carrier's Retry-After).")
    send_lease_seconds: float = setting("YWM_SEND_LEASE_SECONDS", 60.0,
        "How long a claimed message may stay `sending`; a worker that dies leaves it to turn "
        "`unknown` after this (never resent).")
    send_batch_size: int = setting("YWM_SEND_BATCH_SIZE", 100,
        "Outbox rows a worker claims per batch.")
    send_concurrency: int = setting("YWM_SEND_CONCURRENCY", 8,
        "Carrier requests in flight at once per church being drained.")
    worker_concurrency: int = setting("YWM_WORKER_CONCURRENCY", 4,
        "Churches one `ywm worker` process drains at once.")
    worker_metrics_port: int = setting("YWM_WORKER_METRICS_PORT", 9101,
        "Port on YWM_HOST where `ywm worker` serves /metrics and /healthz (0: none; a second "
        "worker on the same machine logs that the port is taken and runs without).")
    worker_poll_interval: float = setting("YWM_WORKER_POLL_INTERVAL", 1.0,
        "Seconds an idle worker waits before asking the queue again.")
    worker_claim_ttl: float = setting("YWM_WORKER_CLAIM_TTL", 30.0,
        "Seconds a worker's claim on a church lasts without renewal (a dead worker's churches are "
        "picked up after this).")
    worker_reconcile_interval: float = setting("YWM_WORKER_RECONCILE_INTERVAL", 120.0,
        "Seconds between sweeps that re-derive every active church's next due time from its "
        "database (catches a lost enqueue); one worker runs each round.")
    housekeeping_interval: float = setting("YWM_HOUSEKEEPING_INTERVAL", 3600.0,
        "Seconds between housekeeping rounds over every church database (expired sessions, reset "
        "tokens, denylisted token ids, old carrier event ids); one worker runs each.")
    recurring_grace_seconds: float = setting("YWM_RECURRING_GRACE_SECONDS", 900.0,
        "A recurring occurrence later than this is missed: sent late once or skipped, by the "
        "rule's `missed_policy`.")
    receipt_check_after: float = setting("YWM_RECEIPT_CHECK_AFTER", 900.0,
        "Seconds after a send with no final delivery receipt before the worker looks the message "
        "up at the carrier (then twice more at doubling intervals); 0 never looks up.")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every setting from `env` (default: the process environment)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for var in ENV_VARS:
            raw = env.get(var.name)
            if raw is not None and raw != "":
                values[var.attr] = _parse(var.name, var.kind, raw)
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
        self._validate_billing()
        self._validate_stripe()
        self._validate_pco()
        if self.secret_key is not None and len(self.secret_key) < 32:
            raise ConfigError("YWM_SECRET_KEY must be at least 32 characters")

    def _validate_billing(self) -> None:
        from .billing.catalogue import load  # the check lives with the catalogue

        if not 0 <= self.billing_grace_days <= 365:
            raise ConfigError("YWM_BILLING_GRACE_DAYS must be between 0 and 365")
        if not 0 <= self.billing_suspend_after_days <= 3650:
            raise ConfigError("YWM_BILLING_SUSPEND_AFTER_DAYS must be between 0 and 3650")
        load(self.billing_catalogue)

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
        if not 0 <= self.number_recovery_days <= 365:
            raise ConfigError("YWM_NUMBER_RECOVERY_DAYS must be between 0 and 365 days")
        if not 0 < self.number_release_sweep_interval <= 86_400:
            raise ConfigError("YWM_NUMBER_RELEASE_SWEEP_INTERVAL must be between 0 and 86400 "
                              "seconds")
        if not 0 <= self.carrier_sim_port <= 65535:
            raise ConfigError("CARRIER_SIM_PORT must be between 0 and 65535")
        if not 0 <= self.carrier_sim_order_delay <= 3600:
            raise ConfigError("CARRIER_SIM_ORDER_DELAY must be between 0 and 3600 seconds")
        for name, value in (("TELNYX_PUBLIC_KEY", self.telnyx_public_key),
                            ("CARRIER_SIM_SIGNING_KEY", self.carrier_sim_signing_key)):
            if value is not None and not _is_b64_32(value):
                raise ConfigError(f"{name} must be the base64 of exactly 32 bytes")

    def _validate_pco(self) -> None:
        for name, url in (("PCO_API_BASE", self.pco_api_base),
                          ("PCO_REDIRECT_URL", self.pco_redirect_url),
                          ("PCO_WEBHOOK_URL", self.pco_webhook_url or "http://unset")):
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"{name} must be an http(s) URL")
        if not 0 < self.pco_timeout <= 120:
            raise ConfigError("PCO_TIMEOUT must be between 0 and 120 seconds")
        if self.pco_sync_interval < 10 or self.pco_full_sync_interval < self.pco_sync_interval:
            raise ConfigError("PCO_SYNC_INTERVAL must be at least 10 seconds and "
                              "PCO_FULL_SYNC_INTERVAL at least as long")
        if not 0 <= self.pco_sim_port <= 65535:
            raise ConfigError("PCO_SIM_PORT must be between 0 and 65535")

    def _validate_stripe(self) -> None:
        for name, url in (("STRIPE_API_BASE", self.stripe_api_base),
                          ("STRIPE_SIM_WEBHOOK_URL", self.stripe_sim_webhook_url)):
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"{name} must be an http(s) URL")
        if not self.stripe_api_key:
            raise ConfigError("STRIPE_API_KEY must not be empty")
        if not 0 < self.stripe_timeout <= 120:
            raise ConfigError("STRIPE_TIMEOUT must be between 0 and 120 seconds")
        if not 0 <= self.stripe_max_retries <= 10:
            raise ConfigError("STRIPE_MAX_RETRIES must be between 0 and 10")
        if not 0 <= self.stripe_sim_port <= 65535:
            raise ConfigError("STRIPE_SIM_PORT must be between 0 and 65535")
        if self.stripe_webhook_secret is not None and not self.stripe_webhook_secrets():
            raise ConfigError("STRIPE_WEBHOOK_SECRET must hold at least one secret")

    def stripe_webhook_secrets(self) -> tuple[str, ...]:
        """The Stripe endpoint secrets any of which may sign a webhook (none: refuse all)."""
        raw = self.stripe_webhook_secret or ""
        return tuple(part.strip() for part in raw.split(",") if part.strip())

    def _validate_sending(self) -> None:
        for name, value, low, high in (
                ("YWM_SEND_MAX_ATTEMPTS", self.send_max_attempts, 1, 20),
                ("YWM_SEND_BATCH_SIZE", self.send_batch_size, 1, 1000),
                ("YWM_SEND_CONCURRENCY", self.send_concurrency, 1, 64),
                ("YWM_WORKER_CONCURRENCY", self.worker_concurrency, 1, 64),
                ("YWM_NUMBERS_PER_CHURCH", self.numbers_per_church, 1, 100),
                ("YWM_WORKER_METRICS_PORT", self.worker_metrics_port, 0, 65535)):
            if not low <= value <= high:
                raise ConfigError(f"{name} must be between {low} and {high}")
        for name, fvalue in (("YWM_COST_PER_SEGMENT", self.cost_per_segment),
                             ("YWM_COST_PER_MMS", self.cost_per_mms),
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

    def export_folder(self) -> Path:
        """Where full account exports are written (YWM_EXPORT_DIR, else under YWM_DATA_DIR)."""
        return self.export_dir if self.export_dir is not None else self.data_dir / "exports"

    def require_database_url(self) -> str:
        """The registry DSN, or a ConfigError that says how to provide it."""
        if not self.database_url:
            raise ConfigError(
                "DATABASE_URL is not set: point it at the registry database "
                "(postgresql://user:pass@host:5432/ywm_registry); with neither it nor "
                "YWM_SECRET_KEY set, operator commands use the deployment `ywm dev` made under "
                f"YWM_DATA_DIR (run it once; looked in {self.data_dir}: export YWM_DATA_DIR "
                "if `ywm dev` runs with another)"
            )
        return self.database_url

    def require_secret_key(self) -> str:
        """The master key, or a ConfigError that says how to provide it."""
        if not self.secret_key:
            raise ConfigError("YWM_SECRET_KEY is not set: give it 32 or more random characters "
                              "(the `ywm dev` deployment's is in YWM_DATA_DIR/secret_key)")
        return self.secret_key


def _kind(attr: str, hint: Any) -> type:
    """The type a setting's raw string is parsed to: its annotation without `| None`."""
    kinds = [a for a in get_args(hint) if a is not type(None)] or [hint]
    for kind in (str, int, float, Path):
        if kinds == [kind]:
            return kind
    raise TypeError(f"Settings.{attr}: no parser for {hint!r}")


def _env_vars() -> tuple[EnvVar, ...]:
    """Every setting, in declaration order; refuses a field not declared with `setting`."""
    hints = get_type_hints(Settings)
    found = []
    for f in fields(Settings):
        if "env" not in f.metadata:
            raise TypeError(f"Settings.{f.name} is not declared with setting()")
        found.append(EnvVar(f.metadata["env"], f.name, _kind(f.name, hints[f.name]), f.default,
                            f.metadata["meaning"]))
    return tuple(found)


ENV_VARS = _env_vars()


def _is_b64_32(value: str) -> bool:
    import base64
    import binascii

    try:
        return len(base64.b64decode(value, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False
