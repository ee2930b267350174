"""Step-up: a signed-in admin proves the current password again before a sensitive change
(password change, MFA setup, enable and disable).

The check is throttled on the admin's email exactly like a login (the attempt is reserved in
the registry before the hash is computed, so a burst cannot get past the lock), and a wrong
password is written to the audit log.
"""

from __future__ import annotations

from typing import Any

from ..errors import AppError
from ..sqlq import tenant as tq
from .audit import record
from .errors import InvalidCurrentPassword
from .state import AuthServices, Client, Principal
from .throttle import email_key


async def prove_password(conn: Any, svc: AuthServices, registry: Any, who: Principal, *,
                         password: str, client: Client, failed_action: str,
                         field: str = "password", error: AppError | None = None) -> Any:
    """The admin's login row if `password` is theirs; else audit `failed_action` and raise
    the lock's 429 or `error` (403 `invalid_current_password` naming `field` by default)."""
    admin = await tq(svc.settings.sql_dir).get_admin_for_login(conn, who.admin_id)
    if admin is None:
        raise InvalidCurrentPassword(field=field)
    attempt = await svc.throttle.reserve(registry, [email_key(admin["email"])])
    try:
        stored = admin["password_hash"] if admin["status"] == "active" else None
        ok = await svc.passwords.verify(stored, password)
    except BaseException:
        await svc.throttle.release(registry, attempt)  # the password was never checked
        raise
    if ok:
        await svc.throttle.release(registry, attempt)
        return admin
    await svc.throttle.failed(registry, attempt)
    await record(conn, svc.settings, failed_action, tenant_id=who.tenant_id,
                 admin_id=who.admin_id, client=client, detail={"reason": "password"})
    if attempt.lock is not None:
        raise attempt.lock.error()
    raise error if error is not None else InvalidCurrentPassword(field=field)
