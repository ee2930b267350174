"""Sign-up that provisions, password change, password reset, invitation acceptance."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog

from ..errors import TenantNotFound, TenantSuspended
from ..sqlq import registry as rq
from ..sqlq import tenant as tq
from ..tenants.provisioning import ProvisioningError
from .audit import clean_ip, record, security_log
from .emails import password_reset_email
from .errors import EmailTaken, InvalidInvitation, InvalidResetToken, InvalidToken, SignupFailed
from .passwords import check_policy
from .permissions import OWNER
from .sessions import Issued, Leaser, open_session
from .state import AuthServices, Client, Principal
from .stepup import prove_password
from .throttle import (
    INVITE_ACCEPT_LIMIT,
    RESET_CONFIRM_LIMIT,
    RESET_REQUEST_LIMIT,
    SIGNUP_LIMIT,
    email_key,
)
from .tokens import INVITE_PREFIX, RESET_PREFIX, new_opaque, parse_opaque

log = structlog.get_logger("ywm.accounts")

RESET_TTL_S = 1800
RESETS_PER_HOUR = 3
RESET_MIN_S = 0.25


@dataclass(frozen=True)
class Registration:
    """A new church, its owner, and the owner's first session."""

    tenant_id: uuid.UUID
    admin_id: uuid.UUID
    issued: Issued


async def register(svc: AuthServices, registry: Any, *, church_name: str, email: str,
                   password: str, first_name: str, last_name: str, time_zone: str,
                   client: Client) -> Registration:
    """Provision the church with its owner; the email is reserved inside the placement
    transaction, so of two concurrent sign-ups with one email exactly one makes anything."""
    assert svc.provisioner is not None, "the auth_services cleanup context makes the provisioner"
    await svc.throttle.limit(registry, SIGNUP_LIMIT, client.ip)
    pw = check_policy(password, email=email)
    if await rq(svc.settings.sql_dir).find_admin_login(registry, email) is not None:
        raise EmailTaken(field="email")
    hashed = await svc.passwords.hash(pw)
    admin_id = uuid.uuid4()
    out: dict[str, Issued] = {}

    async def placed(conn: Any, tid: uuid.UUID) -> None:
        await rq(svc.settings.sql_dir).insert_admin_login(conn, email, tid, admin_id)

    async def created(conn: Any, tid: uuid.UUID) -> None:
        await tq(svc.settings.sql_dir).insert_owner_admin(conn, admin_id, email, hashed,
                                                          first_name, last_name)
        out["issued"] = await open_session(conn, svc, tenant_id=tid, admin_id=admin_id,
                                           role=OWNER, client=client)
        await record(conn, svc.settings, "auth.register", tenant_id=tid, admin_id=admin_id,
                     client=client)

    try:
        made = await svc.provisioner.provision(church_name, time_zone=time_zone,
                                               on_placed=placed, on_created=created)
    except ProvisioningError as exc:
        if isinstance(exc.__cause__, asyncpg.UniqueViolationError):
            raise EmailTaken(field="email") from None
        log.error("signup_failed", error=str(exc))
        raise SignupFailed(headers={"Retry-After": "5"}) from exc
    return Registration(made.id, admin_id, out["issued"])


async def profile(conn: Any, svc: AuthServices, who: Principal) -> tuple[Any, Any]:
    """The admin's profile row and the church's settings row (401 if the token names an
    admin this church does not have: only a forged token can)."""
    q = tq(svc.settings.sql_dir)
    admin = await q.get_admin_profile(conn, who.admin_id)
    if admin is None:
        raise InvalidToken()
    return admin, await q.get_settings(conn)


async def change_password(conn: Any, svc: AuthServices, registry: Any, who: Principal, *,
                          current: str, new: str, client: Client) -> int:
    """Replace the password (current one required, throttled like a login); other sessions
    are revoked, and every access token issued before now is refused (the current session
    goes on through its refresh token)."""
    q = tq(svc.settings.sql_dir)
    admin = await prove_password(conn, svc, registry, who, password=current, client=client,
                                 failed_action="auth.password_change_failed",
                                 field="current_password")
    hashed = await svc.passwords.hash(check_policy(new, email=admin["email"],
                                                   field="new_password"))
    async with conn.transaction():
        await q.change_password(conn, who.admin_id, hashed)
        revoked: int = await q.revoke_admin_sessions(conn, who.admin_id, "password_changed",
                                                     who.session_id)
        await svc.revocations.admin(who.tenant_id, who.admin_id,
                                    await q.admin_valid_after(conn, who.admin_id))
        await q.void_reset_tokens(conn, who.admin_id)
        await record(conn, svc.settings, "auth.password_changed", tenant_id=who.tenant_id,
                     admin_id=who.admin_id, client=client, detail={"sessions_revoked": revoked})
    return revoked


async def request_reset(svc: AuthServices, registry: Any, lease: Leaser, *, email: str,
                        client: Client) -> None:
    """Email a single-use reset link if the email belongs to an active admin; the caller
    answers the same whatever happened here, and not sooner than RESET_MIN_S either way (so
    the time taken does not tell a known email from an unknown one)."""
    await svc.throttle.limit(registry, RESET_REQUEST_LIMIT, client.ip)
    t0 = time.monotonic()
    try:
        await _request_reset(svc, registry, lease, email=email, client=client)
    finally:
        await asyncio.sleep(max(0.0, RESET_MIN_S - (time.monotonic() - t0)))


async def _request_reset(svc: AuthServices, registry: Any, lease: Leaser, *, email: str,
                         client: Client) -> None:
    found = await rq(svc.settings.sql_dir).find_admin_login(registry, email)
    if found is None or found["tenant_status"] != "active":
        security_log("auth.password_reset_requested", tenant_id=None, admin_id=None,
                     client=client, known=False)
        return
    tid, admin_id = found["tenant_id"], found["admin_id"]
    q = tq(svc.settings.sql_dir)
    async with lease(tid) as conn:
        profile = await q.get_admin_profile(conn, admin_id)
        if profile is None or profile["status"] != "active":
            return
        if await q.count_recent_resets(conn, admin_id) >= RESETS_PER_HOUR:
            security_log("auth.password_reset_capped", tenant_id=tid, admin_id=admin_id,
                         client=client)
            return
        token, digest = new_opaque(RESET_PREFIX, tid)
        await q.insert_reset_token(conn, admin_id, digest, float(RESET_TTL_S),
                                   clean_ip(client.ip))
        await record(conn, svc.settings, "auth.password_reset_requested", tenant_id=tid,
                     admin_id=admin_id, client=client)
    link = f"{svc.settings.frontend_url.rstrip('/')}/reset-password#token={token}"
    try:
        await svc.emails.send(password_reset_email(profile["email"], link, RESET_TTL_S // 60))
    except Exception as exc:  # the answer must not differ for known emails
        log.error("email_send_failed", kind="password_reset", tenant_id=str(tid),
                  error=type(exc).__name__)


async def confirm_reset(svc: AuthServices, registry: Any, lease: Leaser, *, token: str,
                        new_password: str, client: Client) -> None:
    """Set a new password with a reset token (once); every session of the admin ends.

    The token is looked up before the new password is hashed, so made-up tokens cost one
    indexed SELECT, not an argon2id hash; consuming it is still a single-use UPDATE.
    """
    await svc.throttle.limit(registry, RESET_CONFIRM_LIMIT, client.ip)
    parsed = parse_opaque(RESET_PREFIX, token)
    if parsed is None:
        raise InvalidResetToken(field="token")
    tid, digest = parsed
    q = tq(svc.settings.sql_dir)
    try:
        async with lease(tid) as conn:
            live = await q.find_reset_token(conn, digest)
        if live is None:
            raise InvalidResetToken(field="token")
        hashed = await svc.passwords.hash(check_policy(new_password, email=live["email"],
                                                       field="new_password"))
        async with lease(tid) as conn, conn.transaction():
            row = await q.consume_reset_token(conn, digest)
            if row is None:  # spent by a concurrent request meanwhile
                raise InvalidResetToken(field="token")
            await q.reset_password(conn, row["admin_id"], hashed)
            revoked = await q.revoke_admin_sessions(conn, row["admin_id"], "password_reset",
                                                    None)
            await svc.revocations.admin(tid, row["admin_id"],
                                        await q.admin_valid_after(conn, row["admin_id"]))
            await q.void_reset_tokens(conn, row["admin_id"])
            await record(conn, svc.settings, "auth.password_reset", tenant_id=tid,
                         admin_id=row["admin_id"], client=client,
                         detail={"sessions_revoked": revoked})
    except (TenantNotFound, TenantSuspended):
        raise InvalidResetToken(field="token") from None
    # Whoever holds the mailbox proved it: lift a login lock on that email.
    await svc.throttle.clear(registry, email_key(row["email"]))


async def accept_invitation(svc: AuthServices, registry: Any, lease: Leaser, *, token: str,
                            password: str, client: Client) -> Issued:
    """Redeem an invitation (once): set the password, activate, and log in. The invitation
    is looked up before the password is hashed."""
    await svc.throttle.limit(registry, INVITE_ACCEPT_LIMIT, client.ip)
    parsed = parse_opaque(INVITE_PREFIX, token)
    if parsed is None:
        raise InvalidInvitation(field="token")
    tid, digest = parsed
    q = tq(svc.settings.sql_dir)
    try:
        async with lease(tid) as conn:
            live = await q.find_invitation(conn, digest)
        if live is None:
            raise InvalidInvitation(field="token")
        hashed = await svc.passwords.hash(check_policy(password, email=live["email"]))
        async with lease(tid) as conn, conn.transaction():
            row = await q.accept_invitation(conn, digest, hashed)
            if row is None:  # accepted by a concurrent request meanwhile
                raise InvalidInvitation(field="token")
            issued = await open_session(conn, svc, tenant_id=tid, admin_id=row["id"],
                                        role=row["role"], client=client)
            await record(conn, svc.settings, "admin.invitation_accepted", tenant_id=tid,
                         admin_id=row["id"], client=client)
    except (TenantNotFound, TenantSuspended):
        raise InvalidInvitation(field="token") from None
    return issued
