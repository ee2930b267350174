"""Plug authentication into the application: services, middlewares and the auth routes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import structlog
from aiohttp import web

from ..config import Settings
from ..keys import API_V1, REGISTRY_POOL
from ..sqlq import registry as rq
from ..tenants.provisioning import Provisioner
from .emails import EmailSender, OutboxEmailSender
from .middleware import authenticate_middleware, session_middleware
from .smtp import SmtpEmailSender
from .state import AUTH, AuthServices
from .throttle import IP_RULE

log = structlog.get_logger("ywm.auth")

CleanupCtx = Callable[[web.Application], AsyncIterator[None]]
SWEEP_INTERVAL_S = 600.0
SWEEP_TIMEOUT_S = 10.0
LEASE_MIDDLEWARE = "tenant_lease"


def setup_auth(app: web.Application, settings: Settings, *,
               emails: EmailSender | None = None) -> None:
    """Add the auth cleanup context, the two auth middlewares around the tenant lease, and the
    `/auth/*` and `/admins` routes of `/api/v1`.

    Call it from create_app after `setup_supervisor` (whose lease middleware must sit between
    the two auth middlewares) and before the sub-application is mounted. `emails` defaults to
    SMTP (SMTP_URL) or the development outbox folder under YWM_DATA_DIR.
    """
    from ..api import admins, auth  # the handlers import auth's modules, not the reverse

    api = app[API_V1]
    names = [getattr(m, "__name__", "") for m in api.middlewares]
    if LEASE_MIDDLEWARE not in names:
        raise RuntimeError("setup_auth must run after setup_supervisor (no lease middleware)")
    api.middlewares.insert(0, authenticate_middleware())
    api.middlewares.append(session_middleware())
    api.router.add_routes(auth.routes)
    api.router.add_routes(admins.routes)
    sender = emails or email_sender(settings)
    app.cleanup_ctx.append(auth_ctx(settings, sender))


def email_sender(settings: Settings) -> EmailSender:
    """SMTP when SMTP_URL is set, else the development outbox folder under YWM_DATA_DIR."""
    if settings.smtp_url:
        return SmtpEmailSender(settings.smtp_url, settings.email_from)
    return OutboxEmailSender(settings.data_dir / "outbox")


def auth_ctx(settings: Settings, emails: EmailSender) -> CleanupCtx:
    """A cleanup context holding the auth services, the sign-up provisioner and the sweep of
    stale login-throttle counters (closed before the registry pool they use)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        svc = await asyncio.to_thread(AuthServices.build, settings, emails)  # one argon2 hash
        svc.provisioner = Provisioner(app[REGISTRY_POOL], settings, svc.box)
        app[AUTH] = svc
        sweeper = asyncio.create_task(_sweep_loop(app, settings), name="auth_throttle_sweep")
        yield
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await svc.provisioner.close()
        closer = getattr(emails, "close", None)
        if closer is not None:   # a background sender delivers what it still holds
            await closer()

    return ctx


async def _sweep_loop(app: web.Application, settings: Settings) -> None:
    """Every few minutes, drop throttle counters that no longer matter."""
    q = rq(settings.sql_dir)
    while True:
        await asyncio.sleep(SWEEP_INTERVAL_S)
        try:
            async with asyncio.timeout(SWEEP_TIMEOUT_S):
                gone = await q.sweep_login_throttle(app[REGISTRY_POOL], float(IP_RULE.window_s))
            if gone:
                log.info("login_throttle_swept", removed=gone)
        except Exception as exc:  # the next round tries again
            log.warning("login_throttle_sweep_failed", error=type(exc).__name__)
