"""Auth's AppKeys and RequestKeys, the services bundle, and the per-request principal."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..config import Settings
from ..crypto import SecretBox
from ..keys import REGISTRY_POOL, REQUEST_ID
from ..tenants.keys import SUPERVISOR
from ..tenants.provisioning import Provisioner
from .emails import EmailSender
from .errors import NotAuthenticated
from .passwords import Passwords
from .revocations import Revocations
from .throttle import Throttle
from .tokens import Keyring, Tokens, derive_key


@dataclass
class AuthServices:
    """Everything the auth flows need, built once per process at start-up."""

    settings: Settings
    tokens: Tokens
    passwords: Passwords
    throttle: Throttle
    emails: EmailSender
    box: SecretBox
    csrf_key: bytes
    recovery_key: bytes
    revocations: Revocations
    provisioner: Provisioner | None = None

    @classmethod
    def build(cls, settings: Settings, emails: EmailSender, registry_pool: Any) -> AuthServices:
        """Keys derived from the settings (a bad keyring stops the boot here)."""
        secret = settings.require_secret_key()
        return cls(
            settings=settings,
            revocations=Revocations(registry_pool, settings),
            tokens=Tokens(settings, Keyring.from_settings(settings)),
            passwords=Passwords(settings.password_hash_concurrency),
            throttle=Throttle(settings),
            emails=emails,
            box=SecretBox(secret),
            csrf_key=derive_key(secret, "csrf-v1"),
            recovery_key=derive_key(secret, "mfa-recovery-codes-v1"),
        )


@dataclass(frozen=True)
class Principal:
    """The authenticated admin of a request."""

    admin_id: uuid.UUID
    tenant_id: uuid.UUID
    role: str
    session_id: uuid.UUID
    jti: str
    iat: int
    exp: int
    via_cookie: bool
    valid_after_us: int = 0


@dataclass(frozen=True)
class Client:
    """Where a request came from, for throttling, sessions and the audit log."""

    ip: str | None
    user_agent: str | None
    request_id: str | None


AUTH = web.AppKey("auth_services", AuthServices)
PRINCIPAL = web.RequestKey("auth_principal", Principal)


def services(request: web.Request) -> AuthServices:
    """The auth services of the running application."""
    return request.config_dict[AUTH]


def principal(request: web.Request) -> Principal:
    """The authenticated admin (401 if the route let an anonymous request through)."""
    who: Principal | None = request.get(PRINCIPAL)
    if who is None:
        raise NotAuthenticated()
    return who


def client(request: web.Request) -> Client:
    """The request's client address, user agent (trimmed) and request id."""
    ua = request.headers.get("User-Agent")
    return Client(request.remote, ua[:512] if ua else None, request.get(REQUEST_ID))


def registry_pool(request: web.Request) -> Any:
    """The registry connection pool."""
    return request.config_dict[REGISTRY_POOL]


@asynccontextmanager
async def lease(request: web.Request, tenant_id: uuid.UUID, *,
                suspended_ok: bool = False) -> AsyncIterator[Any]:
    """A tenant connection for public routes, which pick the tenant from a registry look-up
    or a token rather than from an access token (`suspended_ok`: a suspended church too)."""
    supervisor = request.config_dict[SUPERVISOR].supervisor
    async with supervisor.lease(tenant_id, suspended_ok=suspended_ok) as conn:
        yield conn
