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
from ..tenants.keys import SUPERVISOR
from ..tenants.provisioning import Provisioner
from .emails import EmailSender, OutboxEmailSender
from .middleware import authenticate_middleware
from .revocations import CHANNEL as REVOKED_CHANNEL
from .smtp import SmtpEmailSender
from .state import AUTH, AuthServices
from .throttle import IN_FLIGHT_TTL_S, IP_RULE

log = structlog.get_logger("ywm.auth")

CleanupCtx = Callable[[web.Application], AsyncIterator[None]]
SWEEP_INTERVAL_S = 600.0
SWEEP_TIMEOUT_S = 10.0
LEASE_MIDDLEWARE = "tenant_lease"


def setup_auth(app: web.Application, settings: Settings, *,
               emails: EmailSender | None = None) -> None:
    """Add the auth cleanup context, the auth middleware before the tenant lease, and the
    `/auth/*` and `/admins` routes of `/api/v1`.

    Call it from create_app after `setup_supervisor` (the token check must come before its
    lease middleware, which reads the tenant the token names) and before the sub-application
    is mounted. `emails` defaults to
    SMTP (SMTP_URL) or the development outbox folder under YWM_DATA_DIR.
    """
    from ..api import admins, auth  # the handlers import auth's modules, not the reverse

    api = app[API_V1]
    names = [getattr(m, "__name__", "") for m in api.middlewares]
    if LEASE_MIDDLEWARE not in names:
        raise RuntimeError("setup_auth must run after setup_supervisor (no lease middleware)")
    api.middlewares.insert(0, authenticate_middleware())
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
    """A cleanup context holding the auth services, the sign-up provisioner, the deny-list of
    revoked tokens (loaded before the first request, then kept current through the supervisor's
    listener connection and catch-up reads) and the sweep of stale login-throttle counters and
    expired revocations (closed before the registry pool they use)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        svc = await asyncio.to_thread(AuthServices.build, settings, emails,  # one argon2 hash
                                      app[REGISTRY_POOL])
        svc.provisioner = Provisioner(app[REGISTRY_POOL], settings, svc.box)
        try:  # every live revocation, before serving (until then, 503: see middleware.py)
            async with asyncio.timeout(SWEEP_TIMEOUT_S):
                await svc.revocations.catch_up()
        except Exception as exc:  # the registry is down: the catch-up loop keeps trying
            log.warning("revocations_load_failed", error=type(exc).__name__)
        wake = asyncio.Event()
        listener = app[SUPERVISOR].listener if SUPERVISOR in app else None
        if listener is not None:
            svc.revocations.listening = lambda: listener.connected
            await listener.subscribe(REVOKED_CHANNEL, svc.revocations.on_notify, wake.set)
        app[AUTH] = svc
        tasks = [asyncio.create_task(_sweep_loop(app, settings), name="auth_throttle_sweep"),
                 asyncio.create_task(svc.revocations.run(wake), name="auth_revocations")]
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
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
                gone += await q.sweep_login_attempts_in_flight(app[REGISTRY_POOL],
                                                               IN_FLIGHT_TTL_S)
                revocations = await q.sweep_revocations(app[REGISTRY_POOL])
            if gone or revocations:
                log.info("login_throttle_swept", removed=gone, revocations_removed=revocations)
        except Exception as exc:  # the next round tries again
            log.warning("login_throttle_sweep_failed", error=type(exc).__name__)
